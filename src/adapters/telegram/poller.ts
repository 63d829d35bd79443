/**
 * Long polling, one exchange at a time (fact sheet §3): the offset that confirms updates, the
 * getUpdates parameters and deadline, and the reading of a failed call into one failure with
 * its action. The loop that acts on it is adapter.ts.
 */
import { GatewayError } from '../../errors.js';
import { pollActionFor, type PollAction, type UpdateKind } from './protocol.js';
import type { CallOutcome } from './rest.js';

/**
 * Which updates are confirmed (docs/delivery.md). Telegram confirms every update below the
 * offset of a getUpdates call, so a crash after confirming and before handling loses updates:
 * the offset never passes the handled watermark (`handled`, from the core) while an update
 * handed to the pipeline is unanswered. Updates the adapter skipped (unknown kinds, malformed)
 * take no part in the watermark and are confirmed as soon as everything before them is.
 * Updates above the offset come back with every poll until confirmed: `seen` skips them.
 */
export class OffsetTracker {
  /** The highest update taken (emitted or skipped) in this stream; seeded by a resume point. */
  private lastTaken: number | null;
  /** The first and last update handed to the pipeline in this stream. */
  private firstEmitted: number | null = null;
  private lastEmitted: number | null = null;

  /** `resumeAt`: the handled position a previous process persisted, if it is still valid. */
  constructor(resumeAt: number | null = null) {
    this.lastTaken = resumeAt;
  }

  /** Whether update `updateId` was taken already (it comes again until confirmed). */
  seen(updateId: number): boolean {
    return this.lastTaken !== null && updateId <= this.lastTaken;
  }

  /** Records that update `updateId` was taken; `emitted` when it went to the pipeline. */
  taken(updateId: number, emitted: boolean): void {
    this.lastTaken = updateId;
    if (!emitted) return;
    this.firstEmitted ??= updateId;
    this.lastEmitted = updateId;
  }

  /** The last update handed to the pipeline while it is not handled yet; else null. */
  unhandled(handled: number | null): number | null {
    if (this.lastEmitted === null || (handled !== null && handled >= this.lastEmitted)) return null;
    return this.lastEmitted;
  }

  /**
   * The offset for the next getUpdates, given the handled watermark: one past the last update
   * taken when everything handed on is handled, else one past the watermark (never past an
   * unanswered update). One past the last update taken even when that is below an earlier
   * offset (fact sheet §3.3 rule 1: the server may restart its ids, and keeping a higher
   * offset then polls in a hot loop). Undefined before the first update of a fresh start: the
   * server starts at its oldest unconfirmed one, so a restart never skips an update.
   */
  next(handled: number | null): number | undefined {
    if (this.lastTaken === null) return undefined;
    if (this.unhandled(handled) === null) return this.lastTaken + 1;
    // Nothing handled yet in this stream: nothing below the first update handed on is owed.
    return handled === null ? (this.firstEmitted ?? undefined) : handled + 1;
  }
}

export interface PollSettings {
  timeoutS: number;
  limit: number;
  allowedUpdates: readonly UpdateKind[];
  pollSlackMs: number;
}

/**
 * getUpdates parameters and the client deadline; `short` asks for an immediate answer
 * (timeout 0), used to confirm the link at start and after a failure.
 */
export function pollRequest(
  settings: PollSettings,
  offset: number | undefined,
  short: boolean,
): { params: Record<string, unknown>; deadlineMs: number } {
  const timeoutS = short ? 0 : settings.timeoutS;
  const params: Record<string, unknown> = {
    timeout: timeoutS,
    limit: settings.limit,
    allowed_updates: settings.allowedUpdates,
  };
  if (offset !== undefined) params.offset = offset;
  // The server answers an idle long poll after timeoutS: a poll still open after the slack
  // is a dead link (a half-open TCP connection never errors by itself).
  return { params, deadlineMs: timeoutS * 1000 + settings.pollSlackMs };
}

/** One failed call, read into the action the loop takes. */
export interface CallError {
  method: string;
  action: PollAction;
  error: GatewayError;
  /** For `rate_limited`: exactly parameters.retry_after, in ms. */
  retryAfterMs: number | null;
}

/**
 * Reads a call's outcome: null when it succeeded (its `result` is the caller's to parse), else
 * the failure with its code and action (protocol.ts pollActionFor for platform answers).
 */
export function callError(method: string, outcome: CallOutcome): CallError | null {
  if (outcome.kind === 'failure') {
    const { failure, status } = outcome;
    let code: string;
    if (failure === 'timeout') {
      code = method === 'getUpdates' ? 'GW_ERR_TELEGRAM_POLL_TIMEOUT' : 'GW_ERR_TELEGRAM_NETWORK';
    } else if (failure === 'network') code = 'GW_ERR_TELEGRAM_NETWORK';
    else
      code = (status ?? 0) >= 500 ? 'GW_ERR_TELEGRAM_SERVER_ERROR' : 'GW_ERR_TELEGRAM_BAD_RESPONSE';
    return {
      method,
      action: 'backoff',
      retryAfterMs: null,
      error: new GatewayError(code, outcome.message, { details: { method, failure, status } }),
    };
  }
  const { reply, status } = outcome;
  if (reply.ok) return null;
  const action = pollActionFor(reply.errorCode, reply.description);
  const details = { method, status, error_code: reply.errorCode };
  const text = `${method}: ${reply.description} (${reply.errorCode})`;
  switch (action) {
    case 'unauthorized':
      return {
        method,
        action,
        retryAfterMs: null,
        error: new GatewayError(
          'GW_ERR_TELEGRAM_UNAUTHORIZED',
          `${text}: the token was rejected or api_base is wrong`,
          { details },
        ),
      };
    case 'conflict':
      return {
        method,
        action,
        retryAfterMs: null,
        error: new GatewayError('GW_ERR_TELEGRAM_CONFLICT', text, { details }),
      };
    case 'webhook_active':
      return {
        method,
        action,
        retryAfterMs: null,
        error: new GatewayError(
          'GW_ERR_TELEGRAM_WEBHOOK_ACTIVE',
          `${text}: a webhook is set for this bot; remove it (deleteWebhook) or set delete_webhook_on_start: true`,
          { details },
        ),
      };
    case 'rate_limited': {
      const retryAfterMs = (reply.retryAfterS ?? 1) * 1000;
      return {
        method,
        action,
        retryAfterMs,
        error: new GatewayError('GW_ERR_TELEGRAM_RATE_LIMITED', text, {
          details: { ...details, retry_after_ms: retryAfterMs },
        }),
      };
    }
    case 'backoff':
      return {
        method,
        action,
        retryAfterMs: null,
        error: new GatewayError(
          reply.errorCode >= 500 ? 'GW_ERR_TELEGRAM_SERVER_ERROR' : 'GW_ERR_TELEGRAM_BAD_RESPONSE',
          text,
          { details },
        ),
      };
  }
}

/** A call whose envelope said ok but whose result is not what the method returns. */
export function badResult(method: string): CallError {
  return {
    method,
    action: 'backoff',
    retryAfterMs: null,
    error: new GatewayError('GW_ERR_TELEGRAM_BAD_RESPONSE', `${method}: unexpected result`, {
      details: { method },
    }),
  };
}
