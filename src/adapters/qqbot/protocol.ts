/**
 * The QQ Bot wire protocol: opcodes, intents, the close-code table, and every parser and
 * builder of wire payloads. Wire names (`session_id`, `msg_seq`, `expires_in`...) live in this
 * file only; the rest of the adapter sees camelCase types.
 *
 * Source: the project's fact sheet /work/shared/spec/qq-bot-protocol.md, itself from
 * tencent-connect/bot-docs (docs/develop/api-v2) and the official SDKs.
 */

import { helloInterval, parseGatewayInfo, type GatewayInfo } from '../../net/gateway-wire.js';
import { encodePathSegment } from '../../util/path-segment.js';

export { helloInterval, parseGatewayInfo, type GatewayInfo };

// ---- gateway opcodes (fact sheet §3.2) ---------------------------------------------------

export const Op = {
  Dispatch: 0,
  Heartbeat: 1,
  Identify: 2,
  Resume: 6,
  Reconnect: 7,
  InvalidSession: 9,
  Hello: 10,
  HeartbeatAck: 11,
  /** Webhook: the bot's acknowledgement of a callback (fact sheet §8.5). */
  CallbackAck: 12,
  /** Webhook: callback address validation (fact sheet §8.3). */
  CallbackValidation: 13,
} as const;

// ---- webhook headers and answers (fact sheet §8) -----------------------------------------

/** Request headers of a callback, lower-cased as Node gives them. */
export const WEBHOOK_HEADERS = {
  signature: 'x-signature-ed25519',
  timestamp: 'x-signature-timestamp',
  appId: 'x-bot-appid',
} as const;

/** The acknowledgement of a callback: op 12, `d: 0` = received (BOTGO's shape). */
export const CALLBACK_ACK = { op: 12, d: 0 } as const;

/** `d` of an op 13 callback validation; null when a field is missing. */
export function parseValidation(d: unknown): { plainToken: string; eventTs: string } | null {
  if (!isObject(d)) return null;
  const { plain_token: plainToken, event_ts: eventTs } = d;
  if (typeof plainToken !== 'string' || typeof eventTs !== 'string') return null;
  return { plainToken, eventTs };
}

// ---- intents (fact sheet §4) -----------------------------------------------------------------

/**
 * Intent bits by the names operators put in the config. Only bits documented by DOC or an
 * official SDK; 1<<23 (ENTER_AIO) and 1<<24 (GROUP_MEMBER) are unconfirmed and left out.
 */
export const INTENTS = {
  GUILDS: 1 << 0,
  GUILD_MEMBERS: 1 << 1,
  /** Every channel message (MESSAGE_CREATE); private-domain bots only. */
  GUILD_MESSAGES: 1 << 9,
  GUILD_MESSAGE_REACTIONS: 1 << 10,
  DIRECT_MESSAGE: 1 << 12,
  OPEN_FORUMS_EVENT: 1 << 18,
  AUDIO_OR_LIVE_CHANNEL_MEMBER: 1 << 19,
  /** C2C_MESSAGE_CREATE, GROUP_AT_MESSAGE_CREATE and the friend/group lifecycle events. */
  GROUP_AND_C2C_EVENT: 1 << 25,
  INTERACTION: 1 << 26,
  MESSAGE_AUDIT: 1 << 27,
  FORUMS_EVENT: 1 << 28,
  AUDIO_ACTION: 1 << 29,
  /** AT_MESSAGE_CREATE (messages that @-mention the bot in a guild channel). */
  PUBLIC_GUILD_MESSAGES: 1 << 30,
} as const;

export type IntentName = keyof typeof INTENTS;
export const INTENT_NAMES = Object.keys(INTENTS) as [IntentName, ...IntentName[]];

export function intentsMask(names: readonly IntentName[]): number {
  // `|` on 1 << 30 stays a positive int32; no bit above 30 is used.
  return names.reduce((mask, name) => mask | INTENTS[name], 0);
}

// ---- close codes and opcodes → action (fact sheet §5 and §10) -----------------------------

/**
 * What the reconnect loop does after a connection ends:
 * - `resume`: reconnect and Resume when a session is held (else Identify);
 * - `identify`: forget the session, reconnect and Identify;
 * - `refresh_token`: drop the cached access token, forget the session, Identify;
 * - `wait`: rate limited: wait `reconnect.rate_limited_wait_ms`, then Resume;
 * - `fatal`: stop for good; `run()` throws a non-retryable error (exit 78).
 */
export type ReconnectAction = 'resume' | 'identify' | 'refresh_token' | 'wait' | 'fatal';

export interface CloseCodeRow {
  readonly code: number;
  readonly meaning: string;
  readonly action: ReconnectAction;
}

/**
 * Every documented gateway close code with exactly one action. Where the fact sheet says
 * "unconfirmed", the row takes the safe side: keep reconnecting (counted against the budget,
 * so a loop still ends in GW_ERR_QQ_RECONNECT_EXHAUSTED) rather than die for good.
 */
export const CLOSE_CODE_TABLE: readonly CloseCodeRow[] = [
  // BOTGO only; unconfirmed. Safe: reconnect and keep the session.
  { code: 4000, meaning: 'unknown error', action: 'resume' },
  // DOC: may neither Resume nor Identify (a client bug). Our frames are well-formed by
  // construction, so this can only be a one-off (a proxy, a corrupt frame): a fresh session
  // recovers; a deterministic bug still ends in an exhausted budget.
  { code: 4001, meaning: 'invalid opcode', action: 'identify' },
  { code: 4002, meaning: 'invalid payload', action: 'identify' },
  // BOTGO only; unconfirmed. Authenticate again.
  { code: 4003, meaning: 'not authenticated yet', action: 'identify' },
  // Every SDK refreshes the token; Identify with the new one (fact sheet §10 pitfall 6).
  {
    code: 4004,
    meaning: 'authentication failed (invalid or expired token)',
    action: 'refresh_token',
  },
  // BOTGO only; unconfirmed. We sent a second Identify/Resume: start clean.
  { code: 4005, meaning: 'already authenticated', action: 'identify' },
  { code: 4006, meaning: 'session invalid, cannot resume', action: 'identify' },
  { code: 4007, meaning: 'invalid seq', action: 'identify' },
  // DOC: may resume; SDKs wait about 60 s first.
  { code: 4008, meaning: 'payloads sent too fast (rate limited)', action: 'wait' },
  // The periodic (~30 min) kick. DOC: "4009 can resume". NODESDK-NEW re-identifies instead;
  // we follow DOC and fall back to Identify when the Resume is refused.
  { code: 4009, meaning: 'session timed out', action: 'resume' },
  { code: 4010, meaning: 'invalid shard', action: 'fatal' },
  { code: 4011, meaning: 'too many guilds, sharding required', action: 'fatal' },
  { code: 4012, meaning: 'invalid API version', action: 'fatal' },
  { code: 4013, meaning: 'invalid intents', action: 'fatal' },
  { code: 4014, meaning: 'intents not authorized for this bot', action: 'fatal' },
  // 4900-4913: internal server errors. DOC: may Identify, not Resume (4902 "reset by
  // resume" and 4903 "create session error" are observed).
  ...Array.from({ length: 14 }, (_, i) => ({
    code: 4900 + i,
    meaning:
      i === 2
        ? 'internal error (reset by resume)'
        : i === 3
          ? 'internal error (create session error)'
          : 'internal error',
    action: 'identify' as const,
  })),
  {
    code: 4914,
    meaning: 'bot offline or delisted (only the sandbox may connect)',
    action: 'fatal',
  },
  { code: 4915, meaning: 'bot banned', action: 'fatal' },
];

const CLOSE_ROWS = new Map(CLOSE_CODE_TABLE.map((row) => [row.code, row]));

/** `GW_ERR_QQ_CLOSE_<code>` for a row of the table. */
export function closeErrorCode(code: number): string {
  return `GW_ERR_QQ_CLOSE_${code}`;
}

export interface CloseDecision {
  action: ReconnectAction;
  /** The registered error code to report (`GW_ERR_QQ_CLOSE_4009`, ...). */
  errorCode: string;
  meaning: string;
  /** False when the code is in no table (logged with the code, treated as retryable). */
  known: boolean;
}

/** What to do after the server closed the socket with `code`. */
export function decideClose(code: number): CloseDecision {
  const row = CLOSE_ROWS.get(code);
  if (row !== undefined) {
    return {
      action: row.action,
      errorCode: closeErrorCode(code),
      meaning: row.meaning,
      known: true,
    };
  }
  if (code >= 1000 && code < 4000) {
    // Transport-level close (1000 normal, 1001 going away, 1006 dropped, 1011 server error...):
    // the session is still the server's to keep, so resume.
    return {
      action: 'resume',
      errorCode: 'GW_ERR_QQ_CONNECTION_CLOSED',
      meaning: 'connection closed',
      known: true,
    };
  }
  return {
    action: 'resume',
    errorCode: 'GW_ERR_QQ_CLOSE_UNKNOWN',
    meaning: 'undocumented close code',
    known: false,
  };
}

/**
 * Opcodes that end a connection, with their action. op 7: the server wants a new
 * connection and keeps the session. op 9 carries a boolean "may resume" (NODESDK-NEW,
 * HERMES, OPENCLAW; DOC leaves `d` undefined, so anything but `true` means no).
 */
export const OPCODE_ACTIONS = {
  reconnect: 'resume',
  invalidSessionResumable: 'resume',
  invalidSession: 'identify',
} as const satisfies Record<string, ReconnectAction>;

// ---- gateway frames ----------------------------------------------------------------------

/** A parsed gateway frame. */
export interface GatewayFrame {
  op: number;
  d: unknown;
  /** Sequence number on dispatches; null when absent. */
  s: number | null;
  /** Event type of a dispatch; null when absent. */
  t: string | null;
  /** Event id of a dispatch (`<EVENT_TYPE>:<opaque>`); null when absent. */
  id: string | null;
}

/** Parses a text frame; null when it is not a JSON object with an integer `op`. */
export function parseFrame(text: string): GatewayFrame | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isObject(value) || !Number.isInteger(value.op)) return null;
  return {
    op: value.op as number,
    d: value.d,
    s: typeof value.s === 'number' && Number.isSafeInteger(value.s) && value.s > 0 ? value.s : null,
    t: typeof value.t === 'string' ? value.t : null,
    id: typeof value.id === 'string' ? value.id : null,
  };
}

export interface ReadyInfo {
  sessionId: string;
  botId: string | null;
  botName: string | null;
}

/** The session of a READY dispatch, or null when it has no `session_id`. */
export function parseReady(d: unknown): ReadyInfo | null {
  if (!isObject(d) || typeof d.session_id !== 'string' || d.session_id === '') return null;
  const user = isObject(d.user) ? d.user : {};
  return {
    sessionId: d.session_id,
    botId: typeof user.id === 'string' ? user.id : null,
    botName: typeof user.username === 'string' ? user.username : null,
  };
}

const AUTH_SCHEME = 'QQBot ';

/** The `Authorization` header value (and Identify/Resume token) for an access token. */
export function authorization(accessToken: string): string {
  return `${AUTH_SCHEME}${accessToken}`;
}

export function heartbeatFrame(seq: number | null): string {
  return JSON.stringify({ op: Op.Heartbeat, d: seq });
}

export function identifyFrame(
  accessToken: string,
  intents: number,
  shard: readonly [number, number],
): string {
  return JSON.stringify({
    op: Op.Identify,
    d: {
      token: authorization(accessToken),
      intents,
      shard: [shard[0], shard[1]],
      // "Currently has no effect" (DOC); sent for operators reading server-side logs.
      properties: { $os: process.platform, $browser: 'hermes-gateway', $device: 'hermes-gateway' },
    },
  });
}

/** Resume with the `QQBot ` prefix, as every SDK but BOTGO does (fact sheet §3.3). */
export function resumeFrame(accessToken: string, sessionId: string, seq: number): string {
  return JSON.stringify({
    op: Op.Resume,
    d: { token: authorization(accessToken), session_id: sessionId, seq },
  });
}

// ---- token endpoint (fact sheet §1.1) ----------------------------------------------------

export function tokenRequestBody(appId: string, clientSecret: string): string {
  return JSON.stringify({ appId, clientSecret });
}

/**
 * Token endpoint codes that mean the credentials themselves are refused: 100016 invalid
 * appid or secret, 100007 appid invalid / bot banned or deleted, 10004 bot does not exist.
 * Any other failure (100001 too many requests, 100002 internal error, unknown codes) is
 * retried: giving up for good on an unknown code would be the unsafe choice.
 */
export const TOKEN_REJECTION_CODES: ReadonlySet<number> = new Set([100016, 100007, 10004]);

export type TokenAnswer =
  | { kind: 'token'; accessToken: string; expiresInMs: number }
  | { kind: 'error'; code: number | null; message: string }
  | { kind: 'malformed' };

/**
 * Reads a token endpoint body. The platform keeps HTTP 200 on failure, so the body decides:
 * no `access_token` means failure. `expires_in` arrives as a string in DOC's example and as
 * a number per DOC's table: both are accepted.
 */
export function parseTokenAnswer(body: unknown): TokenAnswer {
  if (!isObject(body)) return { kind: 'malformed' };
  const token = body.access_token;
  if (typeof token === 'string' && token !== '') {
    const raw = body.expires_in;
    const seconds = typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : raw;
    if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0) {
      return { kind: 'malformed' };
    }
    return { kind: 'token', accessToken: token, expiresInMs: seconds * 1000 };
  }
  const error = apiErrorOf(body);
  if (error.code === null && error.message === '') return { kind: 'malformed' };
  return { kind: 'error', ...error };
}

// ---- REST errors and sends (fact sheet §7) -------------------------------------------------

/** Business codes the adapter acts on. */
export const ApiCode = {
  /** 11244 "token not exist or expire": refresh and retry once. */
  TokenExpired: 11244,
  /** 22009 "msg limit exceed": a quota is used up (replies per msg_id, active pushes). */
  MsgLimitExceeded: 22009,
  /** 20028 channel write rate limit. */
  ChannelRateLimit: 20028,
  /** 40054005 the (msg_id, msg_seq) pair was already used. */
  Deduplicated: 40054005,
  /** 304082 / 304083 rich-media fetch or convert failed: "retry" (DOC send.md). */
  MediaFetchFailed: 304082,
  MediaConvertFailed: 304083,
} as const;

/**
 * What a send does with a business code (fact sheet §7.4), whatever the HTTP status beside it
 * (a 429 is always a rate limit): `refresh` the token once, `dedup` (the msg_seq was used),
 * `rate` (wait the hint or back off, then retry), `retry` (like a 5xx), `give_up` (the
 * message fails at once with the platform's code). A code not listed goes by its status.
 */
export type SendCodeAction = 'refresh' | 'dedup' | 'rate' | 'retry' | 'give_up';

export const SEND_CODE_ACTIONS: ReadonlyMap<number, SendCodeAction> = new Map<
  number,
  SendCodeAction
>([
  [ApiCode.TokenExpired, 'refresh'],
  [ApiCode.Deduplicated, 'dedup'],
  [ApiCode.ChannelRateLimit, 'rate'],
  // A quota, not a rate: the 6th reply to a msg_id, or an active push, gets the same answer
  // for minutes or until next month. Retrying held a conversation for minutes per reply.
  [ApiCode.MsgLimitExceeded, 'give_up'],
  [ApiCode.MediaFetchFailed, 'retry'],
  [ApiCode.MediaConvertFailed, 'retry'],
]);

/** `code` (else `err_code`) and `message` of an error body; code null when absent. */
export function apiErrorOf(body: unknown): { code: number | null; message: string } {
  if (!isObject(body)) return { code: null, message: '' };
  const code =
    typeof body.code === 'number'
      ? body.code
      : typeof body.err_code === 'number'
        ? body.err_code
        : null;
  const message = typeof body.message === 'string' ? body.message : '';
  return { code, message };
}

/** `retry_after` in a 429 body (seconds, as the fake and some gateways send it), in ms. */
export function retryAfterBodyMs(body: unknown): number | null {
  if (!isObject(body)) return null;
  const value = body.retry_after;
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value * 1000 : null;
}

/** The platform's id of a sent message: `id`, else the audit id of a 202 (304023/304024). */
export function sentMessageId(body: unknown): string | null {
  if (!isObject(body)) return null;
  if (typeof body.id === 'string' && body.id !== '') return body.id;
  const data = isObject(body.data) ? body.data : null;
  const audit = data !== null && isObject(data.message_audit) ? data.message_audit : null;
  if (audit !== null && typeof audit.audit_id === 'string') return `audit:${audit.audit_id}`;
  return null;
}

export type SendScene = 'c2c' | 'group' | 'channel' | 'dm';

/**
 * The send endpoint of a scene (fact sheet §7.1), the id as one encoded path segment. The
 * caller has refused ids that cannot be one (`pathSegmentProblem`: `..`, `/`, empty...).
 */
export function sendPath(scene: SendScene, targetId: string): string {
  const id = encodePathSegment(targetId);
  switch (scene) {
    case 'c2c':
      return `/v2/users/${id}/messages`;
    case 'group':
      return `/v2/groups/${id}/messages`;
    case 'channel':
      return `/channels/${id}/messages`;
    case 'dm':
      return `/dms/${id}/messages`;
  }
}

/**
 * The body of a text message. C2C and group (v2) need `msg_type` 0 and take `msg_seq`, which
 * must be unique per `msg_id`; guild channels and DMs take `content` and `msg_id` only.
 */
export function textMessageBody(
  scene: SendScene,
  content: string,
  reply: { msgId: string; msgSeq: number } | null,
): string {
  if (scene === 'c2c' || scene === 'group') {
    return JSON.stringify({
      msg_type: 0,
      content,
      ...(reply !== null && { msg_id: reply.msgId, msg_seq: reply.msgSeq }),
    });
  }
  return JSON.stringify({ content, ...(reply !== null && { msg_id: reply.msgId }) });
}

// ---- message dispatches (fact sheet §6) ---------------------------------------------------

/** Dispatch types that carry a user's message, and the scene each one replies to. */
export const MESSAGE_EVENTS = {
  C2C_MESSAGE_CREATE: 'c2c',
  GROUP_AT_MESSAGE_CREATE: 'group',
  AT_MESSAGE_CREATE: 'channel',
  MESSAGE_CREATE: 'channel',
  DIRECT_MESSAGE_CREATE: 'dm',
} as const satisfies Record<string, SendScene>;

export type MessageEventType = keyof typeof MESSAGE_EVENTS;

export function isMessageEvent(t: string): t is MessageEventType {
  // A switch over the keys, not Object.hasOwn(MESSAGE_EVENTS, t): this runs on every
  // dispatch, and the builtin call costs several times the compares (bench section 1).
  switch (t) {
    case 'C2C_MESSAGE_CREATE':
    case 'GROUP_AT_MESSAGE_CREATE':
    case 'AT_MESSAGE_CREATE':
    case 'MESSAGE_CREATE':
    case 'DIRECT_MESSAGE_CREATE':
      return true;
    default:
      return false;
  }
}

export interface WireAttachment {
  url: string;
  contentType: string | null;
  filename: string | null;
}

/** A message dispatch read into adapter terms. */
export interface MessagePayload {
  scene: SendScene;
  messageId: string;
  /** The id a reply is sent to: user openid, group openid, channel id or DM guild id. */
  targetId: string;
  senderId: string;
  senderName: string | null;
  content: string;
  timestamp: string | null;
  attachments: WireAttachment[];
  /** Guild messages: the guild and channel; null for C2C and group. */
  guildId: string | null;
  channelId: string | null;
}

/** Reads a message dispatch; a string says which required field is missing or wrong. */
export function parseMessage(t: MessageEventType, d: unknown): MessagePayload | string {
  if (!isObject(d)) return 'd is not an object';
  const scene = MESSAGE_EVENTS[t];
  const id = str(d.id);
  if (id === null) return 'no message id';
  const author = isObject(d.author) ? d.author : null;
  if (author === null) return 'no author';
  const content = typeof d.content === 'string' ? d.content : '';
  const attachments = Array.isArray(d.attachments)
    ? d.attachments.flatMap((a): WireAttachment[] => {
        if (!isObject(a) || str(a.url) === null) return [];
        return [
          { url: a.url as string, contentType: str(a.content_type), filename: str(a.filename) },
        ];
      })
    : [];
  const timestamp = str(d.timestamp);
  // Each object is written out in full (same keys, same order), not `{ ...common, ... }`:
  // on Node 20 an object spread on this per-message path costs tens of times a literal.
  switch (scene) {
    case 'c2c': {
      const user = str(author.user_openid) ?? str(author.id);
      if (user === null) return 'no author.user_openid';
      return {
        scene,
        messageId: id,
        content,
        timestamp,
        attachments,
        targetId: user,
        senderId: user,
        senderName: null,
        guildId: null,
        channelId: null,
      };
    }
    case 'group': {
      const group = str(d.group_openid) ?? str(d.group_id);
      if (group === null) return 'no group_openid';
      const member = str(author.member_openid) ?? str(author.id);
      if (member === null) return 'no author.member_openid';
      return {
        scene,
        messageId: id,
        content,
        timestamp,
        attachments,
        targetId: group,
        senderId: member,
        senderName: str(author.username),
        guildId: null,
        channelId: null,
      };
    }
    case 'channel':
    case 'dm': {
      const channel = str(d.channel_id);
      const guild = str(d.guild_id);
      const sender = str(author.id);
      if (sender === null) return 'no author.id';
      const target = scene === 'channel' ? channel : guild;
      if (target === null) return scene === 'channel' ? 'no channel_id' : 'no guild_id';
      return {
        scene,
        messageId: id,
        content,
        timestamp,
        attachments,
        targetId: target,
        senderId: sender,
        senderName: str(author.username),
        guildId: guild,
        channelId: channel,
      };
    }
  }
}

// ---- helpers ----------------------------------------------------------------------------

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}
