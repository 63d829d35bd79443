/**
 * The Discord gateway (v10, JSON, no compression) and REST wire protocol: opcodes, intents,
 * the close-code table as data, and every parser and builder of wire payloads. Wire names
 * (`session_id`, `resume_gateway_url`, `enforce_nonce`...) live in this file only.
 *
 * Source: /work/shared/spec/discord-gateway.md, itself from discord/discord-api-docs
 * (https://discord.com/developers/docs/events/gateway, .../topics/opcodes-and-status-codes,
 * .../topics/rate-limits, .../resources/message); deviations are noted where they are made.
 */

import { helloInterval, parseGatewayInfo, type GatewayInfo } from '../../net/gateway-wire.js';

export { helloInterval, parseGatewayInfo, type GatewayInfo };

// ---- opcodes (fact sheet §2) -------------------------------------------------------------

export const Op = {
  Dispatch: 0,
  Heartbeat: 1,
  Identify: 2,
  Resume: 6,
  Reconnect: 7,
  InvalidSession: 9,
  Hello: 10,
  HeartbeatAck: 11,
} as const;

export const API_VERSION = 10;

// ---- intents (fact sheet §7) ---------------------------------------------------------------

export const INTENTS = {
  GUILDS: 1 << 0,
  GUILD_MEMBERS: 1 << 1,
  GUILD_MODERATION: 1 << 2,
  GUILD_PRESENCES: 1 << 8,
  GUILD_MESSAGES: 1 << 9,
  GUILD_MESSAGE_REACTIONS: 1 << 10,
  GUILD_MESSAGE_TYPING: 1 << 11,
  DIRECT_MESSAGES: 1 << 12,
  DIRECT_MESSAGE_REACTIONS: 1 << 13,
  DIRECT_MESSAGE_TYPING: 1 << 14,
  /** Privileged: without it, guild messages arrive with an empty `content`. */
  MESSAGE_CONTENT: 1 << 15,
} as const;

export type IntentName = keyof typeof INTENTS;
export const INTENT_NAMES = Object.keys(INTENTS) as [IntentName, ...IntentName[]];

/** Intents that need a toggle in the Developer Portal (close 4014 without it). */
export const PRIVILEGED_INTENTS: readonly IntentName[] = [
  'GUILD_MEMBERS',
  'GUILD_PRESENCES',
  'MESSAGE_CONTENT',
];

export function intentsMask(names: readonly IntentName[]): number {
  return names.reduce((mask, name) => mask | INTENTS[name], 0);
}

// ---- close codes → action (fact sheet §5; issue 17 where it differs) ----------------------

/**
 * What the reconnect loop does after a connection ends:
 * - `resume`: reconnect at the resume URL and Resume when a session is held (else Identify);
 * - `identify`: forget the session, wait 1-5 s (reconnect.invalid_session_wait_ms), Identify;
 * - `wait`: rate limited (4008): wait reconnect.rate_limited_wait_ms, then Resume;
 * - `fatal`: stop for good; `run()` throws a non-retryable error (exit 78).
 */
export type ReconnectAction = 'resume' | 'identify' | 'wait' | 'fatal';

export interface CloseCodeRow {
  readonly code: number;
  readonly meaning: string;
  readonly action: ReconnectAction;
  /** What the operator must do, for fatal rows. */
  readonly fix?: string;
}

/**
 * Every documented gateway close code with exactly one action. The docs mark 4004 and
 * 4010-4014 "do not reconnect"; everything else may reconnect. Issue 17 picks Resume for
 * 4000-4003 and 4005 (the server answers op 9 when the session is gone, and two refused
 * Resumes in a row fall back to Identify), a new session for 4007 / 4009.
 */
export const CLOSE_CODE_TABLE: readonly CloseCodeRow[] = [
  { code: 4000, meaning: 'unknown error', action: 'resume' },
  { code: 4001, meaning: 'unknown opcode (our bug)', action: 'resume' },
  { code: 4002, meaning: 'decode error (our bug)', action: 'resume' },
  { code: 4003, meaning: 'not authenticated', action: 'resume' },
  {
    code: 4004,
    meaning: 'authentication failed',
    action: 'fatal',
    fix: 'the bot token is wrong or was reset: copy a new one from the Developer Portal (Bot page)',
  },
  { code: 4005, meaning: 'already authenticated', action: 'resume' },
  { code: 4007, meaning: 'invalid seq', action: 'identify' },
  { code: 4008, meaning: 'rate limited (more than 120 commands a minute)', action: 'wait' },
  { code: 4009, meaning: 'session timed out', action: 'identify' },
  {
    code: 4010,
    meaning: 'invalid shard',
    action: 'fatal',
    fix: 'check `shard: [id, count]` (id below count, count as GET /gateway/bot suggests)',
  },
  {
    code: 4011,
    meaning: 'sharding required',
    action: 'fatal',
    fix: 'the bot is in too many guilds for one session: run one instance per shard (`shard`)',
  },
  {
    code: 4012,
    meaning: 'invalid API version',
    action: 'fatal',
    fix: 'the gateway URL must not carry its own `v=`: remove the query from gateway_url',
  },
  {
    code: 4013,
    meaning: 'invalid intents',
    action: 'fatal',
    fix: 'an intent bit is not defined: check `intents`',
  },
  {
    code: 4014,
    meaning: 'disallowed intents',
    action: 'fatal',
    fix: 'a privileged intent (MESSAGE_CONTENT, GUILD_MEMBERS, GUILD_PRESENCES) is not enabled: turn it on under "Privileged Gateway Intents" on the Bot page of the Developer Portal, or remove it from `intents`',
  },
];

const CLOSE_ROWS = new Map(CLOSE_CODE_TABLE.map((row) => [row.code, row]));

/** `GW_ERR_DISCORD_CLOSE_<code>` for a row of the table. */
export function closeErrorCode(code: number): string {
  return `GW_ERR_DISCORD_CLOSE_${code}`;
}

export interface CloseDecision {
  action: ReconnectAction;
  errorCode: string;
  meaning: string;
  fix: string | null;
  /** False when the code is in no table (logged with the code, resumed). */
  known: boolean;
}

/** What to do after the server (or the network) closed the socket with `code`. */
export function decideClose(code: number): CloseDecision {
  const row = CLOSE_ROWS.get(code);
  if (row !== undefined) {
    return {
      action: row.action,
      errorCode: closeErrorCode(code),
      meaning: row.meaning,
      fix: row.fix ?? null,
      known: true,
    };
  }
  if (code >= 1000 && code < 4000) {
    // Transport closes (1006 dropped, 1011, a server 1000...): Resume; a session that is
    // gone answers op 9, which leads to Identify.
    return {
      action: 'resume',
      errorCode: 'GW_ERR_DISCORD_CONNECTION_CLOSED',
      meaning: 'connection closed',
      fix: null,
      known: true,
    };
  }
  return {
    action: 'resume',
    errorCode: 'GW_ERR_DISCORD_CLOSE_UNKNOWN',
    meaning: 'undocumented close code',
    fix: null,
    known: false,
  };
}

/** op 7 and op 9 with their action (fact sheet §3). */
export const OPCODE_ACTIONS = {
  reconnect: 'resume',
  invalidSessionResumable: 'resume',
  invalidSession: 'identify',
} as const satisfies Record<string, ReconnectAction>;

// ---- gateway frames ----------------------------------------------------------------------

export interface GatewayFrame {
  op: number;
  d: unknown;
  s: number | null;
  t: string | null;
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
  };
}

export interface ReadyInfo {
  sessionId: string;
  resumeUrl: string;
  botId: string;
  botName: string | null;
}

/** READY's session, resume URL and bot user; null when one of them is missing. */
export function parseReady(d: unknown): ReadyInfo | null {
  if (!isObject(d)) return null;
  const user = isObject(d.user) ? d.user : null;
  if (typeof d.session_id !== 'string' || d.session_id === '') return null;
  if (typeof d.resume_gateway_url !== 'string' || !/^wss?:\/\//i.test(d.resume_gateway_url)) {
    return null;
  }
  if (user === null || typeof user.id !== 'string') return null;
  return {
    sessionId: d.session_id,
    resumeUrl: d.resume_gateway_url,
    botId: user.id,
    botName: typeof user.username === 'string' ? user.username : null,
  };
}

/**
 * `<url>?v=10&encoding=json`, whatever `url` brings (a trailing slash or none; the resume
 * URL comes without a query). No `compress`: every frame is then a text frame of JSON.
 */
export function connectUrl(url: string): string {
  const target = new URL(url);
  target.searchParams.set('v', String(API_VERSION));
  target.searchParams.set('encoding', 'json');
  return target.toString();
}

export function heartbeatFrame(seq: number | null): string {
  return JSON.stringify({ op: Op.Heartbeat, d: seq });
}

/** Identify: the bare token (no `Bot ` prefix on the gateway), intents, shard, properties. */
export function identifyFrame(
  token: string,
  intents: number,
  shard: readonly [number, number],
): string {
  return JSON.stringify({
    op: Op.Identify,
    d: {
      token,
      intents,
      shard: [shard[0], shard[1]],
      properties: { os: process.platform, browser: 'hermes-gateway', device: 'hermes-gateway' },
    },
  });
}

export function resumeFrame(token: string, sessionId: string, seq: number): string {
  return JSON.stringify({ op: Op.Resume, d: { token, session_id: sessionId, seq } });
}

// ---- messages (fact sheet §8) --------------------------------------------------------------

/** Message types a person writes: 0 DEFAULT, 19 REPLY; the rest are system messages. */
const USER_MESSAGE_TYPES: ReadonlySet<number> = new Set([0, 19]);

export interface MessagePayload {
  id: string;
  channelId: string;
  guildId: string | null;
  authorId: string;
  authorName: string | null;
  authorIsBot: boolean;
  /** System author, webhook or a system message type: never answered. */
  system: boolean;
  content: string;
  timestamp: string | null;
  editedTimestamp: string | null;
  mentionIds: string[];
  /** Author of the message this one replies to, when Discord included it. */
  repliedToAuthorId: string | null;
  attachments: Array<{ url: string; contentType: string | null; filename: string | null }>;
}

/** A MESSAGE_CREATE / MESSAGE_UPDATE payload, or a reason when it lacks a required field. */
export function parseMessage(d: unknown): MessagePayload | string {
  if (!isObject(d)) return 'payload is not an object';
  if (typeof d.id !== 'string' || d.id === '') return 'no message id';
  if (typeof d.channel_id !== 'string' || d.channel_id === '') return 'no channel_id';
  const author = isObject(d.author) ? d.author : null;
  if (author === null || typeof author.id !== 'string') return 'no author';
  const type = typeof d.type === 'number' ? d.type : 0;
  const referenced = isObject(d.referenced_message) ? d.referenced_message : null;
  const refAuthor = referenced !== null && isObject(referenced.author) ? referenced.author : null;
  return {
    id: d.id,
    channelId: d.channel_id,
    guildId: typeof d.guild_id === 'string' ? d.guild_id : null,
    authorId: author.id,
    authorName:
      typeof author.global_name === 'string'
        ? author.global_name
        : typeof author.username === 'string'
          ? author.username
          : null,
    authorIsBot: author.bot === true,
    system:
      author.system === true || typeof d.webhook_id === 'string' || !USER_MESSAGE_TYPES.has(type),
    content: typeof d.content === 'string' ? d.content : '',
    timestamp: typeof d.timestamp === 'string' ? d.timestamp : null,
    editedTimestamp: typeof d.edited_timestamp === 'string' ? d.edited_timestamp : null,
    mentionIds: Array.isArray(d.mentions)
      ? d.mentions.flatMap((m) => (isObject(m) && typeof m.id === 'string' ? [m.id] : []))
      : [],
    repliedToAuthorId: refAuthor !== null && typeof refAuthor.id === 'string' ? refAuthor.id : null,
    attachments: Array.isArray(d.attachments)
      ? d.attachments.flatMap((a) =>
          isObject(a) && typeof a.url === 'string'
            ? [
                {
                  url: a.url,
                  contentType: typeof a.content_type === 'string' ? a.content_type : null,
                  filename: typeof a.filename === 'string' ? a.filename : null,
                },
              ]
            : [],
        )
      : [],
  };
}

// ---- REST sends (fact sheet §9-§11) ----------------------------------------------------------

export interface CreateMessage {
  content: string;
  nonce: string;
  replyTo: string | null;
  /** `allowed_mentions.parse`; empty by default so an echoed "@everyone" pings nobody. */
  allowedMentions: readonly ('users' | 'roles' | 'everyone')[];
}

export function createMessageBody(m: CreateMessage): string {
  const body: Record<string, unknown> = {
    content: m.content,
    nonce: m.nonce,
    enforce_nonce: true,
    allowed_mentions: { parse: [...m.allowedMentions], replied_user: false },
  };
  // Without `fail_if_not_exists: false`, a deleted target turns the reply into a 400.
  if (m.replyTo !== null) {
    body.message_reference = { message_id: m.replyTo, fail_if_not_exists: false };
  }
  return JSON.stringify(body);
}

/** Largest `nonce` Discord accepts. */
export const MAX_NONCE_LENGTH = 25;

/**
 * JSON error codes after which a message is never retried (fact sheet §11): the channel is
 * gone or closed to the bot, or the body is wrong. Any other 4xx is permanent too.
 */
export const PERMANENT_CODES: ReadonlyMap<number, string> = new Map([
  [10003, 'Unknown Channel'],
  [50001, 'Missing Access'],
  [50013, 'Missing Permissions'],
  [50007, 'Cannot send messages to this user'],
  [50006, 'Cannot send an empty message'],
  [50035, 'Invalid Form Body'],
]);

/** 10008 on a retried nonce: the original was posted and later deleted. */
export const UNKNOWN_MESSAGE = 10008;

export function apiErrorOf(body: unknown): { code: number | null; message: string } {
  if (!isObject(body)) return { code: null, message: '' };
  return {
    code: typeof body.code === 'number' ? body.code : null,
    message: typeof body.message === 'string' ? body.message : '',
  };
}

export function sentMessageId(body: unknown): string | null {
  return isObject(body) && typeof body.id === 'string' ? body.id : null;
}

/** A 429 body's `retry_after` (float seconds) and `global` flag. */
export function rateLimitBody(body: unknown): { retryAfterMs: number | null; global: boolean } {
  if (!isObject(body)) return { retryAfterMs: null, global: false };
  const ra = body.retry_after;
  return {
    retryAfterMs: typeof ra === 'number' && Number.isFinite(ra) && ra >= 0 ? ra * 1000 : null,
    global: body.global === true,
  };
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
