import { registerErrorCodes } from '../errors.js';

/**
 * Codes of the message flow (handlers, queues, delivery). None of them is ever fatal: the
 * pipeline logs them with the event id and counts them, and the gateway carries on.
 */
export const HANDLER_ERROR_CODES = {
  /** The handler (HTTP request or command) did not answer within its `timeout_ms`. */
  GW_ERR_HANDLER_TIMEOUT: { kind: 'transient', retryable: true },
  /** The handler's HTTP endpoint could not be reached (refused, reset, DNS), retries spent. */
  GW_ERR_HANDLER_NETWORK: { kind: 'transient', retryable: true },
  /** The handler's HTTP endpoint answered with a non-2xx status (5xx after the retries). */
  GW_ERR_HANDLER_HTTP_STATUS: { kind: 'transient', retryable: true },
  /** The handler's answer is not the expected JSON shape. */
  GW_ERR_HANDLER_MALFORMED_RESPONSE: { kind: 'transient', retryable: true },
  /** The handler's answer (HTTP body or command stdout) is larger than its cap. */
  GW_ERR_HANDLER_RESPONSE_TOO_LARGE: { kind: 'transient', retryable: true },
  /** The handler command exited non-zero or was killed by a signal. */
  GW_ERR_HANDLER_COMMAND_EXIT: { kind: 'transient', retryable: true },
  /** The handler command ran past `timeout_ms`; its process group was killed. */
  GW_ERR_HANDLER_COMMAND_TIMEOUT: { kind: 'transient', retryable: true },
  /** The handler command could not be started (not found, not executable). */
  GW_ERR_HANDLER_COMMAND_SPAWN: { kind: 'transient', retryable: true },
  /** The handler was cancelled because the gateway is stopping. */
  GW_ERR_HANDLER_CANCELLED: { kind: 'transient', retryable: true },
  /** A handler failed with an error that carried no code of its own. */
  GW_ERR_HANDLER_FAILED: { kind: 'transient', retryable: true },
  /** A conversation's queue (or the pipeline's total) was full; the event was dropped. */
  GW_ERR_HANDLER_QUEUE_OVERFLOW: { kind: 'transient', retryable: true },
  /** `adapter.send` did not settle within `send_timeout_ms`. */
  GW_ERR_DELIVERY_TIMEOUT: { kind: 'transient', retryable: true },
  /** `adapter.send` rejected with an error that carried no code of its own. */
  GW_ERR_DELIVERY_FAILED: { kind: 'transient', retryable: true },
} as const;

registerErrorCodes(HANDLER_ERROR_CODES);

export type HandlerErrorCode = keyof typeof HANDLER_ERROR_CODES;
