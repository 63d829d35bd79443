/**
 * Updates → the gateway's normalized InboundEvent (contract.ts): message, edited_message
 * (marked as an edit), channel_post and callback_query; captions as text, media as
 * attachments by file id, the bot's own messages ignored.
 */
import type { Attachment, ChatType, InboundEvent } from '../../adapters/contract.js';
import {
  isMessage,
  isObject,
  type TgCallbackQuery,
  type TgChat,
  type TgMessage,
  type TgUpdate,
  type TgUser,
} from './protocol.js';

/**
 * The reply context in `InboundEvent.reply`, read back by send.ts. A type alias so it is
 * assignable to `Record<string, unknown>`.
 */
export type ReplyContext = {
  chat_id: number;
  chat_type: TgChat['type'];
  /** The message to reply to; absent for a callback without an accessible message. */
  message_id?: number;
  /** The forum topic, only when the message was a topic message (fact sheet §5.4). */
  message_thread_id?: number;
  /** The update kind this came from; `edited_message` marks an edit. */
  kind: 'message' | 'edited_message' | 'channel_post' | 'callback_query';
  edit?: true;
  callback_query_id?: string;
};

export type Normalized =
  | { kind: 'event'; event: InboundEvent; callbackQueryId: string | null }
  | { kind: 'ignored'; reason: string }
  | { kind: 'malformed'; reason: string };

/** The attachment URL scheme for a Telegram file: resolve it with getFile (no token in it). */
export const FILE_URL_PREFIX = 'telegram-file:';

/**
 * Turns one update into an event. `instance` prefixes event ids; `botId` drops the bot's own
 * messages (bots never see other bots' messages, but a channel post by the bot comes back).
 */
export function normalizeUpdate(
  update: TgUpdate,
  instance: string,
  botId: number | null,
): Normalized {
  for (const kind of ['message', 'edited_message', 'channel_post'] as const) {
    const payload = update[kind];
    if (payload === undefined) continue;
    if (!isMessage(payload))
      return { kind: 'malformed', reason: `${kind} without message_id or chat` };
    return fromMessage(payload, kind, instance, botId);
  }
  const query = update.callback_query;
  if (query !== undefined) {
    if (!isObject(query) || typeof query.id !== 'string' || !isObject(query.from)) {
      return { kind: 'malformed', reason: 'callback_query without id or from' };
    }
    return fromCallback(query as unknown as TgCallbackQuery, instance);
  }
  const kind = Object.keys(update).find((k) => k !== 'update_id') ?? 'empty';
  return { kind: 'ignored', reason: `update kind ${kind}` };
}

function fromMessage(
  m: TgMessage,
  kind: 'message' | 'edited_message' | 'channel_post',
  instance: string,
  botId: number | null,
): Normalized {
  if (botId !== null && m.from?.id === botId) return { kind: 'ignored', reason: 'own message' };
  if (m.migrate_to_chat_id !== undefined) return { kind: 'ignored', reason: 'chat migrated' };
  const reply: ReplyContext = {
    chat_id: m.chat.id,
    chat_type: m.chat.type,
    message_id: m.message_id,
    kind,
  };
  if (m.is_topic_message === true && typeof m.message_thread_id === 'number') {
    reply.message_thread_id = m.message_thread_id;
  }
  const edit = kind === 'edited_message';
  if (edit) reply.edit = true;
  // An edit keeps its message id: the edit date makes it a new event, not a duplicate.
  const suffix = edit ? `:edit:${m.edit_date ?? m.date}` : '';
  return {
    kind: 'event',
    callbackQueryId: null,
    event: {
      id: `${instance}:${m.chat.id}:${m.message_id}${suffix}`,
      platform: instance,
      type: 'telegram',
      chat: { type: chatType(m.chat.type), id: String(m.chat.id) },
      sender: senderOf(m.from, m.sender_chat ?? (m.from === undefined ? m.chat : undefined)),
      text: m.text ?? m.caption ?? '',
      attachments: attachmentsOf(m),
      timestamp: new Date((m.edit_date ?? m.date) * 1000).toISOString(),
      reply,
    },
  };
}

function fromCallback(q: TgCallbackQuery, instance: string): Normalized {
  const message = isMessage(q.message) ? q.message : null;
  // A button under an inline message has no chat: the reply goes to the user who pressed it.
  const chat: TgChat = message?.chat ?? { id: q.from.id, type: 'private' };
  const reply: ReplyContext = {
    chat_id: chat.id,
    chat_type: chat.type,
    kind: 'callback_query',
    callback_query_id: q.id,
  };
  // An inaccessible message has date 0: replying to it would fail.
  if (message !== null && message.date !== 0) reply.message_id = message.message_id;
  if (message?.is_topic_message === true && typeof message.message_thread_id === 'number') {
    reply.message_thread_id = message.message_thread_id;
  }
  return {
    kind: 'event',
    callbackQueryId: q.id,
    event: {
      id: `${instance}:cb:${q.id}`,
      platform: instance,
      type: 'telegram',
      chat: { type: chatType(chat.type), id: String(chat.id) },
      sender: senderOf(q.from, undefined),
      text: q.data ?? '',
      attachments: [],
      timestamp: new Date().toISOString(),
      reply,
    },
  };
}

/** Telegram chat types onto the gateway's: private → c2c, (super)group → group. */
export function chatType(type: TgChat['type']): ChatType {
  switch (type) {
    case 'private':
      return 'c2c';
    case 'group':
    case 'supergroup':
      return 'group';
    case 'channel':
      return 'channel';
  }
}

function senderOf(from: TgUser | undefined, chat: TgChat | undefined): InboundEvent['sender'] {
  if (chat !== undefined) {
    const name = chat.title ?? chat.username;
    return name === undefined ? { id: String(chat.id) } : { id: String(chat.id), name };
  }
  if (from === undefined) return { id: 'unknown' };
  const name =
    [from.first_name, from.last_name].filter((p) => typeof p === 'string' && p !== '').join(' ') ||
    from.username;
  return name === undefined || name === ''
    ? { id: String(from.id) }
    : { id: String(from.id), name };
}

function attachmentsOf(m: TgMessage): Attachment[] {
  const out: Attachment[] = [];
  // Photo sizes come smallest first; the last one is the original.
  const photo = Array.isArray(m.photo) ? m.photo.at(-1) : undefined;
  if (photo !== undefined && typeof photo.file_id === 'string') {
    out.push({ url: FILE_URL_PREFIX + photo.file_id, content_type: 'image/jpeg', filename: null });
  }
  for (const key of [
    'document',
    'video',
    'audio',
    'voice',
    'animation',
    'sticker',
    'video_note',
  ] as const) {
    const file = m[key];
    if (!isObject(file) || typeof file.file_id !== 'string') continue;
    out.push({
      url: FILE_URL_PREFIX + file.file_id,
      content_type: typeof file.mime_type === 'string' ? file.mime_type : null,
      filename: typeof file.file_name === 'string' ? file.file_name : null,
    });
  }
  return out;
}

/** Reads a reply context back from an OutboundMessage; null when it is not one of ours. */
export function readReplyContext(reply: Record<string, unknown> | undefined): ReplyContext | null {
  if (reply === undefined || typeof reply.chat_id !== 'number') return null;
  return reply as ReplyContext;
}
