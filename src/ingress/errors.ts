/** Error codes of the inbound HTTP server (src/ingress/). Append-only. */
import { registerErrorCodes } from '../errors.js';

export const INGRESS_ERROR_CODES = {
  /**
   * The inbound listener cannot bind its address (in use, permission, bad socket path): exit
   * 78, since a restart would meet the same address taken.
   */
  GW_ERR_INGRESS_LISTEN: { kind: 'config', retryable: false },
  /** Two instances claim the same path on one listen address: exit 78. */
  GW_ERR_INGRESS_ROUTE_TAKEN: { kind: 'config', retryable: false },
  /** The inbound listener closed or failed while the gateway was running: exit 1. */
  GW_ERR_INGRESS_LISTENER_DIED: { kind: 'transient', retryable: true },
  /** A request to no registered path (404). */
  GW_ERR_INGRESS_NOT_FOUND: { kind: 'transient', retryable: true },
  /** A request with another method than POST (405). */
  GW_ERR_INGRESS_METHOD_NOT_ALLOWED: { kind: 'transient', retryable: true },
  /** A request body larger than the route's max_body_bytes (413). */
  GW_ERR_INGRESS_BODY_TOO_LARGE: { kind: 'transient', retryable: true },
  /** A request whose body did not arrive within the route's request_timeout_ms (408). */
  GW_ERR_INGRESS_REQUEST_TIMEOUT: { kind: 'transient', retryable: true },
  /** A request to a route whose instance is stopping (503: the platform retries later). */
  GW_ERR_INGRESS_UNAVAILABLE: { kind: 'transient', retryable: true },
} as const;

registerErrorCodes(INGRESS_ERROR_CODES);
