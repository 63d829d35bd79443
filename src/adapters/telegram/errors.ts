/**
 * Error codes of the Telegram adapter. Append-only like the core registry: a code is never
 * renamed or reused.
 */
import { registerErrorCodes } from '../../errors.js';

export const TELEGRAM_ERROR_CODES = {
  /** 401 from any call, or 404 from getMe / getUpdates (bad token or api_base): exit 78. */
  GW_ERR_TELEGRAM_UNAUTHORIZED: { kind: 'config', retryable: false },
  /** 409 "terminated by other getUpdates request": another poller on this token; backoff. */
  GW_ERR_TELEGRAM_CONFLICT: { kind: 'transient', retryable: true },
  /** 409 because a webhook is set and delete_webhook_on_start is false: exit 78. */
  GW_ERR_TELEGRAM_WEBHOOK_ACTIVE: { kind: 'platform', retryable: false },
  /** 429 on a poll: waited exactly parameters.retry_after. */
  GW_ERR_TELEGRAM_RATE_LIMITED: { kind: 'transient', retryable: true },
  /** 5xx (JSON or an edge proxy's HTML page): backoff. */
  GW_ERR_TELEGRAM_SERVER_ERROR: { kind: 'transient', retryable: true },
  /** Connection refused or reset, DNS failure: backoff. */
  GW_ERR_TELEGRAM_NETWORK: { kind: 'transient', retryable: true },
  /** A getUpdates not answered within timeout_s + poll_slack_ms (half-open link): backoff. */
  GW_ERR_TELEGRAM_POLL_TIMEOUT: { kind: 'transient', retryable: true },
  /** An answer that is not the Bot API envelope (not JSON, no `ok`), or another 4xx: backoff. */
  GW_ERR_TELEGRAM_BAD_RESPONSE: { kind: 'transient', retryable: true },
  /** reconnect.max_attempts failed polls in a row without a healthy period: exit 1. */
  GW_ERR_TELEGRAM_RECONNECT_EXHAUSTED: { kind: 'transient', retryable: true },
  /** An update whose message lacks required fields: logged, skipped, still confirmed. */
  GW_ERR_TELEGRAM_BAD_UPDATE: { kind: 'transient', retryable: true },
  /** The platform refused a message for good (400, 403): never retried. */
  GW_ERR_TELEGRAM_SEND_REJECTED: { kind: 'platform', retryable: false },
  /** A message could not be delivered (5xx, refused connection) within send.max_attempts. */
  GW_ERR_TELEGRAM_SEND_FAILED: { kind: 'transient', retryable: true },
  /** A message stayed rate limited (429) within the budget, or retry_after was above the cap. */
  GW_ERR_TELEGRAM_SEND_RATE_LIMITED: { kind: 'transient', retryable: true },
  /** The request may have reached the platform (timeout or reset after sending): not resent. */
  GW_ERR_TELEGRAM_SEND_UNCERTAIN: { kind: 'transient', retryable: true },
  // Webhook mode (issue 18, item 4)
  /** A webhook request without the right X-Telegram-Bot-Api-Secret-Token: 401, counted. */
  GW_ERR_TELEGRAM_WEBHOOK_SECRET: { kind: 'transient', retryable: true },
  /** setWebhook refused our URL or parameters (400 "bad webhook: ..."): exit 78. */
  GW_ERR_TELEGRAM_WEBHOOK_REJECTED: { kind: 'config', retryable: false },
} as const;

registerErrorCodes(TELEGRAM_ERROR_CODES);

export type TelegramErrorCode = keyof typeof TELEGRAM_ERROR_CODES;
