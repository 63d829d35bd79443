/**
 * What every reconnecting adapter (QQ, Discord) does the same way around its platform
 * protocol: the top-level state and its sub-steps (`detail`), the timer that resets the
 * reconnect budget after a healthy connection, and the resume point a previous process left
 * (taken at start, settled by the first READY / RESUMED). Only the contract is imported.
 */
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import { reconnectsTotal } from '../metrics.js';
import type { AdapterContext, AdapterStatusPatch } from './contract.js';

type OwnState = 'connecting' | 'reconnecting' | 'connected';

export class AdapterLifecycle {
  /** Reconnect attempts since the last healthy connection. */
  attempt = 0;
  /** `connecting` until the first attempt has ended, then `reconnecting`. */
  phase: 'connecting' | 'reconnecting' = 'connecting';
  private ctx: AdapterContext | null = null;
  private detail: string | null = null;
  /** The state of the last transition; null before the first. */
  private state: OwnState | null = null;
  private healthyTimer: NodeJS.Timeout | null = null;
  private restartResume: { ageMs: number; seq: number } | null = null;
  /** Resumes in a row that did not reach READY / RESUMED. */
  private resumeFailures = 0;

  constructor(
    private readonly type: string,
    private readonly log: () => Logger,
  ) {}

  bind(ctx: AdapterContext): void {
    this.ctx = ctx;
  }

  /**
   * A step inside `connecting` / `reconnecting` (skipped if unchanged). The top-level state
   * stays, so this is no transition: the detail is noted and written with the next state
   * write instead of an fsync of its own on every reconnect.
   */
  setDetail(detail: string): void {
    if (this.detail === detail) return;
    const ctx = this.ctx;
    if (ctx === null) return;
    if (this.state !== this.phase) {
      // A step belongs to the state last written; anything else is a bug in the adapter.
      throw new GatewayError(
        'GW_ERR_INTERNAL',
        `${this.type} step ${detail} while ${this.state ?? 'not started'}, not ${this.phase}`,
      );
    }
    ctx.note({ detail });
    this.detail = detail;
    this.log().debug({ detail }, `${this.phase}: ${detail}`);
  }

  /** A transition (to the current phase unless `state` says otherwise), persisted. */
  async move(patch: AdapterStatusPatch, state: OwnState = this.phase): Promise<void> {
    const ctx = this.ctx;
    if (ctx === null) return;
    await ctx.transition(state, patch);
    this.state = state;
    if (patch.detail !== undefined) this.detail = state === 'connected' ? null : patch.detail;
  }

  /**
   * Never a Resume loop: counts Resumes in a row that did not reach READY / RESUMED and
   * returns true (logged) once `maxResumeFailures` is reached: the adapter then drops its
   * session and starts a new one.
   */
  resumeGivenUp(readyAt: number | null, triedResume: boolean, maxResumeFailures: number): boolean {
    if (readyAt !== null) this.resumeFailures = 0;
    else if (triedResume) this.resumeFailures += 1;
    if (this.resumeFailures < maxResumeFailures) return false;
    this.log().warn(
      { resume_failures: this.resumeFailures },
      'resume keeps failing: starting a new session instead',
    );
    this.resumeFailures = 0;
    return true;
  }

  /**
   * Counts one reconnect against the budget and announces it (log, metric, the persisted
   * `reconnecting` step with the wait's `detail`). A connection that died soon after READY does
   * not reset the budget, so quick disconnects in a row still add up. Throws `exhaustedCode`
   * (retryable: exit 1) past `maxAttempts`.
   */
  async reconnect(options: {
    instance: string;
    error: GatewayError;
    action: string;
    readyAt: number | null;
    maxAttempts: number;
    healthyAfterMs: number;
    exhaustedCode: string;
    /** The wait before the next attempt, from the attempt number it is given. */
    waitMs: (attempt: number) => number;
    detail: string;
    resumable: boolean;
  }): Promise<number> {
    const { error, maxAttempts } = options;
    if (options.readyAt !== null && Date.now() - options.readyAt >= options.healthyAfterMs) {
      this.attempt = 0;
    }
    this.attempt += 1;
    this.phase = 'reconnecting';
    if (this.attempt > maxAttempts) {
      throw new GatewayError(
        options.exhaustedCode,
        `gave up after ${maxAttempts} reconnect attempts without a healthy connection; last error ${error.code}: ${error.message}`,
        { cause: error, details: { attempts: maxAttempts, last_code: error.code } },
      );
    }
    // The cause label is a registered error code: a small, fixed set.
    reconnectsTotal.inc({ platform: options.instance, cause: error.code });
    const waitMs = options.waitMs(this.attempt);
    this.log().warn(
      {
        code: error.code,
        action: options.action,
        attempt: this.attempt,
        max_attempts: maxAttempts,
        wait_ms: waitMs,
        resumable: options.resumable,
      },
      `connection ended (${error.message}); reconnect ${this.attempt}/${maxAttempts} in ${waitMs} ms`,
    );
    await this.move({
      reconnectAttempt: this.attempt,
      lastError: error,
      resumable: options.resumable,
      detail: options.detail,
    });
    return waitMs;
  }

  /** Marks the connection healthy after `healthyAfterMs`: the budget starts over. */
  armHealthyTimer(healthyAfterMs: number): void {
    this.clearHealthyTimer();
    const ctx = this.ctx;
    if (ctx === null) return;
    this.healthyTimer = setTimeout(() => {
      this.healthyTimer = null;
      if (this.attempt === 0) return;
      this.attempt = 0;
      this.log().info('connection healthy: reconnect attempts reset');
      ctx.note({ reconnectAttempt: 0, lastError: null });
    }, healthyAfterMs);
  }

  clearHealthyTimer(): void {
    if (this.healthyTimer !== null) clearTimeout(this.healthyTimer);
    this.healthyTimer = null;
  }

  /**
   * The resume point the previous process left, when it names every `required` string field
   * and is not stale: then resumed at its handled watermark, so the platform replays
   * everything after it (docs/delivery.md). Null otherwise (a stale one is counted).
   */
  takeResumePoint(
    ctx: AdapterContext,
    required: readonly string[],
  ): { session: Record<string, string>; seq: number } | null {
    const point = ctx.resumePoint;
    if (point === null) return null;
    const session: Record<string, string> = {};
    for (const key of required) {
      const value = point.session[key];
      if (typeof value !== 'string' || value === '') return null;
      session[key] = value;
    }
    for (const [key, value] of Object.entries(point.session)) {
      if (typeof value === 'string') session[key] ??= value;
    }
    const seq = point.position ?? 0;
    if (point.stale) {
      this.log().warn(
        { resume_point_age_ms: point.ageMs, seq },
        `resume point of the previous process is ${point.ageMs} ms old: identifying instead`,
      );
      ctx.resumeOutcome('stale');
      return null;
    }
    this.restartResume = { ageMs: point.ageMs, seq };
    this.log().info(
      { resume_point_age_ms: point.ageMs, seq },
      'resuming the previous process session at its handled seq',
    );
    return { session, seq };
  }

  /** The first READY / RESUMED after a restart tells whether the resume point was taken. */
  settleRestartResume(ctx: AdapterContext, resumed: boolean): void {
    const pending = this.restartResume;
    if (pending === null) return;
    this.restartResume = null;
    if (resumed) {
      ctx.resumeOutcome('accepted');
      return;
    }
    ctx.resumeOutcome('refused');
    this.log().warn(
      { resume_point_age_ms: pending.ageMs, seq: pending.seq },
      `the platform refused to resume the previous process session (${pending.ageMs} ms old): identified instead, events of the gap are not replayed`,
    );
  }
}
