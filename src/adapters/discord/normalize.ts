/**
 * MESSAGE_CREATE / MESSAGE_UPDATE → the normalized InboundEvent (contract.ts), with the
 * decisions of what the bot answers: its own and other bots' messages never, system and
 * webhook messages never, DMs always, guild channels and threads only when mentioned or
 * replied to (respond_to: mentions) or always (respond_to: all).
 */
import type { InboundEvent } from '../../adapters/contract.js';
import { parseMessage, type MessagePayload } from './protocol.js';

export const TYPE = 'discord';

/** The reply context in `InboundEvent.reply`; read back by send(). */
export type ReplyContext = {
  message_id: string;
  channel_id: string;
  guild_id?: string;
  /** Set on MESSAGE_UPDATE: the event is an edit of an earlier message. */
  edit?: true;
};

export interface Audience {
  botId: string | null;
  respondTo: 'mentions' | 'all';
  ignoreBots: boolean;
}

export type Normalized =
  | { kind: 'message'; event: InboundEvent }
  | { kind: 'ignored'; reason: 'own' | 'bot' | 'system' | 'not_addressed' | 'not_edited' }
  | { kind: 'malformed'; reason: string };

/** Turns a message dispatch into the event of `instance`, or says why it is not answered. */
export function normalizeMessage(
  t: 'MESSAGE_CREATE' | 'MESSAGE_UPDATE',
  d: unknown,
  audience: Audience,
  instance: string,
): Normalized {
  const m = parseMessage(d);
  if (typeof m === 'string') return { kind: 'malformed', reason: `${t}: ${m}` };
  if (audience.botId !== null && m.authorId === audience.botId) {
    return { kind: 'ignored', reason: 'own' };
  }
  if (m.system) return { kind: 'ignored', reason: 'system' };
  if (m.authorIsBot && audience.ignoreBots) return { kind: 'ignored', reason: 'bot' };
  const edit = t === 'MESSAGE_UPDATE';
  // An update without an edit time is an embed unfurl or a pin, not a new text.
  if (edit && m.editedTimestamp === null) return { kind: 'ignored', reason: 'not_edited' };
  const dm = m.guildId === null;
  const mentioned = isMentioned(m, audience.botId);
  if (!dm && audience.respondTo === 'mentions' && !mentioned) {
    return { kind: 'ignored', reason: 'not_addressed' };
  }
  const reply: ReplyContext = { message_id: m.id, channel_id: m.channelId };
  if (m.guildId !== null) reply.guild_id = m.guildId;
  if (edit) reply.edit = true;
  return {
    kind: 'message',
    event: {
      // An edit is a new thing to answer: its id carries the edit time, so the dedupe window
      // does not take it for a redelivery of the original (and a replayed edit still is one).
      id: edit ? `${instance}:${m.id}:edit:${m.editedTimestamp ?? ''}` : `${instance}:${m.id}`,
      platform: instance,
      type: TYPE,
      chat: { type: dm ? 'dm' : 'channel', id: m.channelId },
      sender: m.authorName === null ? { id: m.authorId } : { id: m.authorId, name: m.authorName },
      text: cleanText(m.content, audience.botId),
      attachments: m.attachments.map((a) => ({
        url: a.url,
        content_type: a.contentType,
        filename: a.filename,
      })),
      timestamp: (edit ? m.editedTimestamp : m.timestamp) ?? new Date().toISOString(),
      reply,
    },
  };
}

/** Mentioned by id, by `<@id>` / `<@!id>` in the text, or replied to. */
export function isMentioned(m: MessagePayload, botId: string | null): boolean {
  if (botId === null) return false;
  if (m.mentionIds.includes(botId)) return true;
  if (m.content.includes(`<@${botId}>`) || m.content.includes(`<@!${botId}>`)) return true;
  return m.repliedToAuthorId === botId;
}

/** Trims, and cuts leading mentions of the bot itself. */
export function cleanText(content: string, botId: string | null): string {
  let text = content.trim();
  if (botId !== null) {
    const mention = new RegExp(`^<@!?${botId.replace(/[^0-9A-Za-z]/g, '\\$&')}>\\s*`);
    while (mention.test(text)) text = text.replace(mention, '');
  }
  return text.trim();
}

/** Reads the reply context back from an OutboundMessage; null without a message id. */
export function readReplyContext(
  reply: Record<string, unknown> | undefined,
): { messageId: string } | null {
  const id = reply?.message_id;
  return typeof id === 'string' && /^\d{1,20}$/.test(id) ? { messageId: id } : null;
}
