import { registerErrorCodes } from '../errors.js';

/** Codes of the local control API and of `hermes-gateway send`. */
export const CONTROL_ERROR_CODES = {
  /** A request without the bearer token, or with a wrong one (401). */
  GW_ERR_CONTROL_UNAUTHORIZED: { kind: 'transient', retryable: true },
  /** A request body that is not JSON or lacks a field (400). */
  GW_ERR_CONTROL_BAD_REQUEST: { kind: 'transient', retryable: true },
  /** No such endpoint (404). */
  GW_ERR_CONTROL_NOT_FOUND: { kind: 'transient', retryable: true },
  /** The endpoint exists but not with this method (405). */
  GW_ERR_CONTROL_METHOD_NOT_ALLOWED: { kind: 'transient', retryable: true },
  /** `POST /send` names a platform this gateway does not run (404). */
  GW_ERR_CONTROL_UNKNOWN_PLATFORM: { kind: 'transient', retryable: true },
  /** `POST /send` names a chat the platform does not know (404). */
  GW_ERR_CONTROL_UNKNOWN_CHAT: { kind: 'transient', retryable: true },
  /** A request body larger than `control.max_body_bytes` (413). */
  GW_ERR_CONTROL_BODY_TOO_LARGE: { kind: 'transient', retryable: true },
  /** The control API cannot listen on `control.listen` (address in use, socket path). */
  GW_ERR_CONTROL_LISTEN: { kind: 'transient', retryable: true },
  /** `hermes-gateway send` cannot reach the control API (gateway not running?). */
  GW_ERR_CONTROL_UNREACHABLE: { kind: 'transient', retryable: true },
  /** `hermes-gateway send` needs `control.listen` and `control.token` in the config. */
  GW_ERR_CONTROL_DISABLED: { kind: 'config', retryable: false },
} as const;

registerErrorCodes(CONTROL_ERROR_CODES);

export type ControlErrorCode = keyof typeof CONTROL_ERROR_CODES;
