/**
 * Error codes of the QQ Bot adapter. Append-only like the core registry: a code is never
 * renamed or reused. Close codes get one code each (`GW_ERR_QQ_CLOSE_<n>`), derived from the
 * close-code table in protocol.ts so the table and the registry cannot drift apart.
 */
import { registerErrorCodes } from '../../errors.js';
import { CLOSE_CODE_TABLE, closeErrorCode } from './protocol.js';

export const QQ_ERROR_CODES = {
  /** The token endpoint rejected app_id / client_secret (or the bot does not exist): exit 78. */
  GW_ERR_QQ_CREDENTIALS_REJECTED: { kind: 'config', retryable: false },
  /** The token endpoint failed (5xx, timeout, malformed answer, network): retried. */
  GW_ERR_QQ_TOKEN_FAILED: { kind: 'transient', retryable: true },
  /** `GET /gateway/bot` failed (5xx, timeout, malformed answer, network): retried. */
  GW_ERR_QQ_GATEWAY_FAILED: { kind: 'transient', retryable: true },
  /** The WebSocket could not be opened (refused, upgrade answered non-101, handshake timeout). */
  GW_ERR_QQ_CONNECT_FAILED: { kind: 'transient', retryable: true },
  /** The WebSocket closed with a transport code (1000-1015, e.g. 1006 abnormal): resumed. */
  GW_ERR_QQ_CONNECTION_CLOSED: { kind: 'transient', retryable: true },
  /** The server closed with a code not in the close-code table: resumed, the code is logged. */
  GW_ERR_QQ_CLOSE_UNKNOWN: { kind: 'transient', retryable: true },
  /** No Hello (op 10) within timeouts.hello_ms after the socket opened. */
  GW_ERR_QQ_HELLO_TIMEOUT: { kind: 'transient', retryable: true },
  /** No READY / RESUMED within timeouts.ready_ms after Identify / Resume. */
  GW_ERR_QQ_READY_TIMEOUT: { kind: 'transient', retryable: true },
  /** A heartbeat got no ACK in time: zombie connection, terminated and resumed. */
  GW_ERR_QQ_HEARTBEAT_TIMEOUT: { kind: 'transient', retryable: true },
  /** The server sent Reconnect (op 7): resumed on a new connection. */
  GW_ERR_QQ_RECONNECT_REQUESTED: { kind: 'transient', retryable: true },
  /** The server sent Invalid Session (op 9): resumed if it allowed it, else identified. */
  GW_ERR_QQ_INVALID_SESSION: { kind: 'transient', retryable: true },
  /** The server broke the protocol (Hello without an interval, READY without a session). */
  GW_ERR_QQ_PROTOCOL_ERROR: { kind: 'transient', retryable: true },
  /** A frame that is not JSON or has no opcode: logged and dropped. */
  GW_ERR_QQ_MALFORMED_FRAME: { kind: 'transient', retryable: true },
  /** A frame above max_payload_bytes: dropped (or, above the hard cap, the socket is cut). */
  GW_ERR_QQ_FRAME_TOO_LARGE: { kind: 'transient', retryable: true },
  /** A message dispatch whose payload lacks required fields: logged and dropped. */
  GW_ERR_QQ_BAD_EVENT: { kind: 'transient', retryable: true },
  /** reconnect.max_attempts reconnects in a row failed without a healthy connection: exit 1. */
  GW_ERR_QQ_RECONNECT_EXHAUSTED: { kind: 'transient', retryable: true },
  /** A message could not be delivered (5xx, timeout, network) within send.max_attempts. */
  GW_ERR_QQ_SEND_FAILED: { kind: 'transient', retryable: true },
  /** A message stayed rate limited (429, 20028) within the send budget. */
  GW_ERR_QQ_SEND_RATE_LIMITED: { kind: 'transient', retryable: true },
  /** The platform refused a message (4xx business error, e.g. msg_id expired, 22009 quota). */
  GW_ERR_QQ_SEND_REJECTED: { kind: 'platform', retryable: false },
  /** A send was refused as unauthorized again after one token refresh. */
  GW_ERR_QQ_SEND_UNAUTHORIZED: { kind: 'transient', retryable: true },
  /** A chat id no QQ chat can have (empty, `..`, `/`, `?`, `#`, control chars): not sent. */
  GW_ERR_QQ_CHAT_ID_INVALID: { kind: 'platform', retryable: false },
  // Webhook transport (issue 11)
  /** A callback without a valid Ed25519 signature over timestamp + body (401, nothing dispatched). */
  GW_ERR_QQ_WEBHOOK_SIGNATURE: { kind: 'transient', retryable: true },
  /** A callback whose X-Signature-Timestamp is missing, malformed or outside the tolerance (401). */
  GW_ERR_QQ_WEBHOOK_TIMESTAMP: { kind: 'transient', retryable: true },
  /** A callback whose X-Bot-Appid names another bot (403). */
  GW_ERR_QQ_WEBHOOK_APPID: { kind: 'transient', retryable: true },
  /** A signed callback whose body is not a JSON envelope, or an op 13 without its fields (400). */
  GW_ERR_QQ_WEBHOOK_BAD_BODY: { kind: 'transient', retryable: true },
} as const;

registerErrorCodes(QQ_ERROR_CODES);

// One code per row of the close-code table: fatal rows are `platform` (exit 78), the rest
// are retryable. Meanings are in CLOSE_CODE_TABLE.
registerErrorCodes(
  Object.fromEntries(
    CLOSE_CODE_TABLE.map((row) => [
      closeErrorCode(row.code),
      row.action === 'fatal'
        ? { kind: 'platform', retryable: false }
        : { kind: 'transient', retryable: true },
    ]),
  ),
);

export type QQErrorCode = keyof typeof QQ_ERROR_CODES;
