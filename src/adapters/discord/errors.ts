/**
 * Error codes of the Discord adapter. Append-only: a code is never renamed or reused. Close
 * codes get one code each (`GW_ERR_DISCORD_CLOSE_<n>`), derived from the close-code table in
 * protocol.ts so the table and the registry cannot drift apart.
 */
import { registerErrorCodes } from '../../errors.js';
import { CLOSE_CODE_TABLE, closeErrorCode } from './protocol.js';

export const DISCORD_ERROR_CODES = {
  /** `GET /gateway/bot` answered 401: the token is wrong (exit 78). */
  GW_ERR_DISCORD_UNAUTHORIZED: { kind: 'config', retryable: false },
  /** `GET /gateway/bot` failed (5xx, 429, timeout, malformed answer, network): retried. */
  GW_ERR_DISCORD_GATEWAY_FAILED: { kind: 'transient', retryable: true },
  /** The WebSocket could not be opened (refused, upgrade refused, handshake timeout). */
  GW_ERR_DISCORD_CONNECT_FAILED: { kind: 'transient', retryable: true },
  /** A transport close (1000-3999, e.g. 1006 dropped): resumed. */
  GW_ERR_DISCORD_CONNECTION_CLOSED: { kind: 'transient', retryable: true },
  /** A close code in no table: resumed, the code logged. */
  GW_ERR_DISCORD_CLOSE_UNKNOWN: { kind: 'transient', retryable: true },
  /** No Hello within timeouts.hello_ms. */
  GW_ERR_DISCORD_HELLO_TIMEOUT: { kind: 'transient', retryable: true },
  /** No READY / RESUMED within timeouts.ready_ms. */
  GW_ERR_DISCORD_READY_TIMEOUT: { kind: 'transient', retryable: true },
  /** A heartbeat got no ACK in time: zombie connection, terminated and resumed. */
  GW_ERR_DISCORD_HEARTBEAT_TIMEOUT: { kind: 'transient', retryable: true },
  /** The server sent Reconnect (op 7). */
  GW_ERR_DISCORD_RECONNECT_REQUESTED: { kind: 'transient', retryable: true },
  /** The server sent Invalid Session (op 9). */
  GW_ERR_DISCORD_INVALID_SESSION: { kind: 'transient', retryable: true },
  /** The server broke the protocol (Hello without interval, READY without session). */
  GW_ERR_DISCORD_PROTOCOL_ERROR: { kind: 'transient', retryable: true },
  /** A frame that is not JSON or has no opcode: dropped. */
  GW_ERR_DISCORD_MALFORMED_FRAME: { kind: 'transient', retryable: true },
  /** A frame above max_payload_bytes: dropped (above 4 ×, the socket is cut). */
  GW_ERR_DISCORD_FRAME_TOO_LARGE: { kind: 'transient', retryable: true },
  /** A message dispatch without the fields an event needs: dropped. */
  GW_ERR_DISCORD_BAD_EVENT: { kind: 'transient', retryable: true },
  /** reconnect.max_attempts reconnects in a row without a healthy connection: exit 1. */
  GW_ERR_DISCORD_RECONNECT_EXHAUSTED: { kind: 'transient', retryable: true },
  /** A message could not be delivered (5xx, timeout, network) within send.max_attempts. */
  GW_ERR_DISCORD_SEND_FAILED: { kind: 'transient', retryable: true },
  /** A message stayed rate limited (429) within the send budget. */
  GW_ERR_DISCORD_SEND_RATE_LIMITED: { kind: 'transient', retryable: true },
  /** Discord refused the message for good (Missing Access, Unknown Channel...): not retried. */
  GW_ERR_DISCORD_SEND_REJECTED: { kind: 'platform', retryable: false },
  /** A send answered 401: the token is no longer valid; nothing more is sent. */
  GW_ERR_DISCORD_SEND_UNAUTHORIZED: { kind: 'platform', retryable: false },
  /** 401/403/429 answers came close to the 10,000 / 10 min IP ban: sends paused. */
  GW_ERR_DISCORD_INVALID_REQUEST_LIMIT: { kind: 'transient', retryable: true },
  /** A channel id that cannot be a snowflake: not sent. */
  GW_ERR_DISCORD_CHAT_ID_INVALID: { kind: 'platform', retryable: false },
} as const;

registerErrorCodes(DISCORD_ERROR_CODES);

// One code per row of the close-code table: fatal rows exit 78 (4004 is a credential, the
// rest need the operator), the rest are retryable. Meanings are in CLOSE_CODE_TABLE.
registerErrorCodes(
  Object.fromEntries(
    CLOSE_CODE_TABLE.map((row) => [
      closeErrorCode(row.code),
      row.action === 'fatal'
        ? { kind: row.code === 4004 ? 'config' : 'platform', retryable: false }
        : { kind: 'transient', retryable: true },
    ]),
  ),
);

export type DiscordErrorCode = keyof typeof DISCORD_ERROR_CODES;
