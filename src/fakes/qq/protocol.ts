/**
 * Wire constants of the QQ Bot protocol, written from the fact sheet
 * (/work/shared/spec/qq-bot-protocol.md) independently of `src/`, so the fake catches
 * adapter bugs instead of sharing them.
 */
import { randomBytes } from 'node:crypto';

/** Gateway opcodes (fact sheet §3.2). */
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

/** Close codes the fake sends (fact sheet §5). */
export const CloseCode = {
  InvalidOpcode: 4001,
  InvalidPayload: 4002,
  AuthFailed: 4004,
  AlreadyAuthenticated: 4005,
  InvalidSession: 4006,
  InvalidSeq: 4007,
  SessionTimedOut: 4009,
  InvalidShard: 4010,
  IntentsNotAuthorized: 4014,
  CreateSessionError: 4903,
} as const;

/** REST business codes the fake answers with (fact sheet §7.4, §1.1). */
export const ApiCode = {
  /** "token not exist or expire". */
  TokenExpired: 11244,
  /** "invalid appid or secret" (token endpoint, HTTP 200). */
  BadCredentials: 100016,
  /** Token endpoint internal error (BOTPY issue #197). */
  TokenInternal: 100002,
  /** Message empty. */
  EmptyMessage: 50006,
  /** Send frequency / quota exceeded. */
  MsgLimitExceeded: 22009,
  /** msg_id invalid or not ours. */
  BadMsgId: 40034024,
  /** event_id invalid (third-party source, unconfirmed). */
  BadEventId: 40034025,
  /** Guild reply msg_id wrong. */
  BadGuildMsgId: 304026,
  /** Active push without permission. */
  NoPermission: 40034102,
  /** (msg_id, msg_seq) already used. */
  Deduplicated: 40054005,
  /**
   * Invalid request parameter. No code for a missing `msg_type` is documented; this one is
   * the fake's own choice.
   */
  InvalidParam: 40034001,
} as const;

/** Prefix of the `Authorization` header and of the Identify/Resume token. */
export const AUTH_PREFIX = 'QQBot ';

/** A trace id like the platform's `X-Tps-trace-ID` / `trace_id` (32 hex chars). */
export function traceId(): string {
  return randomBytes(16).toString('hex');
}

/** The body of a REST error (fact sheet §7.4). */
export function apiError(
  code: number,
  message: string,
): { code: number; message: string; err_code: number; trace_id: string } {
  return { code, message, err_code: code, trace_id: traceId() };
}

/** The platform's answer body to a missing, wrong or expired token (with HTTP 401). */
export function tokenExpiredError(): ReturnType<typeof apiError> {
  return apiError(ApiCode.TokenExpired, 'token not exist or expire');
}

/** True when `value` is a non-negative safe integer. */
export function isUint(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** True when `value` is a plain JSON object. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
