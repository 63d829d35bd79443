import { registerErrorCodes } from '../../errors.js';

/** Codes of the broker hop (docs/scale-out.md). */
export const NATS_ERROR_CODES = {
  /** The broker refused our credentials (token, user/password, creds): exit 78. */
  GW_ERR_NATS_AUTH: { kind: 'config', retryable: false },
  /** The broker was out of reach (or refused events) for `unreachable_budget_ms`: exit 1. */
  GW_ERR_NATS_UNREACHABLE: { kind: 'transient', retryable: true },
  /** The stream or a consumer exists with settings that contradict the config: exit 78. */
  GW_ERR_NATS_SETUP: { kind: 'config', retryable: false },
  /** A publish was not acknowledged (timeout, broker down); it is tried again. */
  GW_ERR_NATS_PUBLISH: { kind: 'transient', retryable: true },
  /** The stream is at a limit (max_msgs, max_bytes): the event waits, the gateway is degraded. */
  GW_ERR_NATS_STREAM_FULL: { kind: 'transient', retryable: true },
  /** A reply could not be delivered (unknown instance, late, failing): sent to the dead letters. */
  GW_ERR_NATS_DEAD_LETTER: { kind: 'transient', retryable: true },
  /** A message on a broker subject is not what this version writes (bad JSON, missing fields). */
  GW_ERR_NATS_MALFORMED: { kind: 'transient', retryable: true },
} as const;

registerErrorCodes(NATS_ERROR_CODES);
