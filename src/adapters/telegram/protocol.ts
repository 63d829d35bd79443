/**
 * The Bot API on the wire (fact sheet §1, §3, §5, §7): update kinds, the response envelope and
 * its parser, the table that maps a failed call to one action, and the update shapes the
 * adapter reads. Wire names (`update_id`, `retry_after`) stay in this file.
 */

/** Every update kind the Bot API documents (10.1); unknown kinds are skipped, still confirmed. */
export const UPDATE_KINDS = [
  'message',
  'edited_message',
  'channel_post',
  'edited_channel_post',
  'business_connection',
  'business_message',
  'edited_business_message',
  'deleted_business_messages',
  'message_reaction',
  'message_reaction_count',
  'inline_query',
  'chosen_inline_result',
  'callback_query',
  'shipping_query',
  'pre_checkout_query',
  'purchased_paid_media',
  'poll',
  'poll_answer',
  'my_chat_member',
  'chat_member',
  'chat_join_request',
  'chat_boost',
  'removed_chat_boost',
] as const;
export type UpdateKind = (typeof UPDATE_KINDS)[number];

/** `<api_base>/bot<token>/<method>`: the token is in the path, so a URL is never logged as is. */
/**
 * Unconfirmed updates are kept this long (fact sheet §3.2); a resume point older than this may
 * name ids the server no longer has, so the next process starts at the server's queue head.
 */
export const UPDATE_RETENTION_MS = 86_400_000;

export function methodUrl(apiBase: string, token: string, method: string): string {
  return `${apiBase}/bot${token}/${method}`;
}

/**
 * Methods whose second arrival has an effect a user sees (a second message in the chat): the
 * Bot API has no idempotency key, so a request of these that may have reached the server is
 * never sent again blindly (net/http.ts `idempotent`). Every other method the adapter calls
 * reads, confirms or answers once (a repeated answerCallbackQuery is refused, harmlessly).
 */
export const NOT_IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['sendMessage']);

/** A call's answer read from the envelope `{ok, result}` / `{ok:false, error_code, description}`. */
export type ApiReply =
  | { ok: true; result: unknown }
  | {
      ok: false;
      errorCode: number;
      description: string;
      /** parameters.retry_after in seconds, when given. */
      retryAfterS: number | null;
      /** parameters.migrate_to_chat_id, when given (a group became a supergroup). */
      migrateToChatId: number | null;
    };

/**
 * Reads the envelope whatever the HTTP status (fact sheet §1: parse JSON first). Null when the
 * body is not the envelope (an edge proxy's HTML page, a truncated body): a transport failure.
 */
export function parseEnvelope(body: unknown): ApiReply | null {
  if (!isObject(body) || typeof body.ok !== 'boolean') return null;
  if (body.ok) return { ok: true, result: body.result };
  if (typeof body.error_code !== 'number') return null;
  const parameters = isObject(body.parameters) ? body.parameters : {};
  return {
    ok: false,
    errorCode: body.error_code,
    description: typeof body.description === 'string' ? body.description : '',
    retryAfterS: nonNegativeInt(parameters.retry_after),
    migrateToChatId:
      typeof parameters.migrate_to_chat_id === 'number' ? parameters.migrate_to_chat_id : null,
  };
}

/** What the polling loop does about one failed call. */
export type PollAction =
  /** Token rejected (401) or wrong base URL / token (404): exit 78. */
  | 'unauthorized'
  /** 409 from another getUpdates: back off, logged once per burst. */
  | 'conflict'
  /** 409 because a webhook is set: deleteWebhook if allowed, else exit 78. */
  | 'webhook_active'
  /** 429: wait exactly retry_after. */
  | 'rate_limited'
  /** 5xx, other 4xx, transport: back off with jitter. */
  | 'backoff';

/**
 * The failure table for platform answers (fact sheet §7, §3.3): one action per error. Both 409
 * texts that name a webhook ("can't use getUpdates method while webhook is active", and
 * "terminated by setWebhook request") mean a webhook owns the bot.
 */
export function pollActionFor(errorCode: number, description: string): PollAction {
  if (errorCode === 401 || errorCode === 404) return 'unauthorized';
  if (errorCode === 409) return /webhook/i.test(description) ? 'webhook_active' : 'conflict';
  if (errorCode === 429) return 'rate_limited';
  return 'backoff';
}

/** How a failed send is treated (fact sheet §7). */
export type SendVerdict = 'migrated' | 'rate_limited' | 'server' | 'unauthorized' | 'rejected';

export function sendVerdictFor(reply: Extract<ApiReply, { ok: false }>): SendVerdict {
  if (reply.migrateToChatId !== null) return 'migrated';
  if (reply.errorCode === 429) return 'rate_limited';
  if (reply.errorCode >= 500) return 'server';
  if (reply.errorCode === 401) return 'unauthorized';
  return 'rejected';
}

export interface TgUser {
  id: number;
  is_bot?: boolean;
  first_name?: string;
  last_name?: string;
  username?: string;
  can_read_all_group_messages?: boolean;
}

export type TgChatType = 'private' | 'group' | 'supergroup' | 'channel';

export interface TgChat {
  id: number;
  type: TgChatType;
  title?: string;
  username?: string;
  first_name?: string;
  last_name?: string;
}

export interface TgPhotoSize {
  file_id: string;
  file_unique_id?: string;
  width?: number;
  height?: number;
  file_size?: number;
}

export interface TgFile {
  file_id: string;
  file_name?: string;
  mime_type?: string;
}

export interface TgMessage {
  message_id: number;
  date: number;
  edit_date?: number;
  chat: TgChat;
  from?: TgUser;
  sender_chat?: TgChat;
  text?: string;
  caption?: string;
  message_thread_id?: number;
  is_topic_message?: boolean;
  photo?: TgPhotoSize[];
  document?: TgFile;
  video?: TgFile;
  audio?: TgFile;
  voice?: TgFile;
  animation?: TgFile;
  sticker?: TgFile;
  video_note?: TgFile;
  migrate_to_chat_id?: number;
}

export interface TgCallbackQuery {
  id: string;
  from: TgUser;
  message?: TgMessage;
  data?: string;
}

/** One update: its id, and the raw object (read by normalize.ts). */
export interface TgUpdate {
  update_id: number;
  [kind: string]: unknown;
}

/** The result of getUpdates: null when it is not an array of objects with an integer update_id. */
export function parseUpdates(result: unknown): TgUpdate[] | null {
  if (!Array.isArray(result)) return null;
  for (const item of result) {
    if (!isObject(item) || !Number.isSafeInteger(item.update_id)) return null;
  }
  return result as TgUpdate[];
}

/** The result of getMe: null when it has no numeric id. */
export function parseUser(result: unknown): TgUser | null {
  return isObject(result) && typeof result.id === 'number' ? (result as unknown as TgUser) : null;
}

/** The message a sendMessage returned: its id, or null. */
export function sentMessageId(result: unknown): number | null {
  return isObject(result) && typeof result.message_id === 'number' ? result.message_id : null;
}

/** A message object with the fields every message has (id, date, chat with id and type). */
export function isMessage(value: unknown): value is TgMessage {
  if (!isObject(value) || typeof value.message_id !== 'number') return false;
  const chat = value.chat;
  return (
    isObject(chat) &&
    typeof chat.id === 'number' &&
    (chat.type === 'private' ||
      chat.type === 'group' ||
      chat.type === 'supergroup' ||
      chat.type === 'channel')
  );
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonNegativeInt(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : null;
}
