/**
 * Message dispatches → the gateway's normalized InboundEvent (contract.ts).
 */
import type { Attachment, InboundEvent } from '../../adapters/contract.js';
import { parseMessage, type MessageEventType, type MessagePayload } from './protocol.js';

/** `InboundEvent.type` of every QQ event; `platform` is the instance that received it. */
export const TYPE = 'qqbot';

/**
 * The reply context the adapter puts in `InboundEvent.reply` and reads back in `send()`. A type
 * alias, not an interface, so that it is assignable to `Record<string, unknown>` as it is.
 */
export type ReplyContext = {
  msg_id: string;
  event_type: MessageEventType;
  guild_id?: string;
  channel_id?: string;
};

export type Normalized =
  { kind: 'message'; event: InboundEvent } | { kind: 'malformed'; reason: string };

/**
 * Turns a message dispatch into an InboundEvent of `instance`. `botId` (from READY) lets a
 * leading `<@!bot>` mention be cut from guild messages; the text is trimmed either way.
 */
export function normalizeMessage(
  t: MessageEventType,
  d: unknown,
  botId: string | null,
  instance: string = TYPE,
): Normalized {
  const parsed = parseMessage(t, d);
  if (typeof parsed === 'string') return { kind: 'malformed', reason: `${t}: ${parsed}` };
  return { kind: 'message', event: toEvent(t, parsed, botId, instance) };
}

function toEvent(
  t: MessageEventType,
  m: MessagePayload,
  botId: string | null,
  instance: string,
): InboundEvent {
  const reply: ReplyContext = { msg_id: m.messageId, event_type: t };
  if (m.guildId !== null) reply.guild_id = m.guildId;
  if (m.channelId !== null) reply.channel_id = m.channelId;
  return {
    id: `${instance}:${m.messageId}`,
    platform: instance,
    type: TYPE,
    chat: { type: m.scene, id: m.targetId },
    sender: m.senderName === null ? { id: m.senderId } : { id: m.senderId, name: m.senderName },
    text: cleanText(m.content, m.scene === 'channel' || m.scene === 'dm' ? botId : null),
    attachments: m.attachments.map((a): Attachment => ({
      url: withScheme(a.url),
      content_type: a.contentType,
      filename: a.filename,
    })),
    timestamp: m.timestamp ?? new Date().toISOString(),
    reply,
  };
}

/** Trims, and cuts leading mentions of the bot itself (`<@!id>` or `<@id>`). */
export function cleanText(content: string, botId: string | null): string {
  let text = content.trim();
  if (botId !== null) {
    const mention = new RegExp(`^<@!?${escapeRegExp(botId)}>\\s*`);
    while (mention.test(text)) text = text.replace(mention, '');
  }
  return text.trim();
}

/** Attachment URLs may come without a scheme (NONEBOT prepends https://). */
export function withScheme(url: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return url;
  return `https://${url.replace(/^\/\//, '')}`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Reads a reply context back from an OutboundMessage; null when it has no `msg_id`. */
export function readReplyContext(
  reply: Record<string, unknown> | undefined,
): { msgId: string } | null {
  const msgId = reply?.msg_id;
  return typeof msgId === 'string' && msgId !== '' ? { msgId } : null;
}
