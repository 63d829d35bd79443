import { setTimeout as delay } from 'node:timers/promises';

export interface BackoffOptions {
  /** Delay before reconnect attempt 1, 2, ...; the last step repeats (it is the cap). */
  readonly stepsMs: readonly number[];
  /**
   * Fraction of a step that jitter may take off (0 = none, 0.25 = up to a quarter). Jitter
   * only shortens a step, so every documented step is also the maximum wait.
   */
  readonly jitterRatio: number;
  /** Injectable for deterministic tests; defaults to Math.random. */
  readonly random?: () => number;
}

/** Backoff with the platform's documented steps, jittered and capped at the last step. */
export class Backoff {
  private readonly stepsMs: readonly number[];
  private readonly jitterRatio: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions) {
    if (options.stepsMs.length === 0) throw new RangeError('backoff needs at least one step');
    if (options.stepsMs.some((ms) => !Number.isFinite(ms) || ms < 0)) {
      throw new RangeError('backoff steps must be finite and non-negative');
    }
    this.stepsMs = [...options.stepsMs];
    this.jitterRatio = Math.min(1, Math.max(0, options.jitterRatio));
    this.random = options.random ?? Math.random;
  }

  /** The undisturbed step for `attempt` (1-based; 0 and below count as 1). */
  stepFor(attempt: number): number {
    const index = Math.min(Math.max(1, Math.floor(attempt)), this.stepsMs.length) - 1;
    return this.stepsMs[index]!;
  }

  /** The jittered delay before `attempt`: in `[step × (1 − jitterRatio), step]`. */
  delayFor(attempt: number): number {
    const step = this.stepFor(attempt);
    return Math.round(step * (1 - this.jitterRatio * this.random()));
  }

  /** Sum of the first `attempts` undisturbed steps: the longest the whole budget can wait. */
  totalFor(attempts: number): number {
    let total = 0;
    for (let attempt = 1; attempt <= attempts; attempt++) total += this.stepFor(attempt);
    return total;
  }
}

/**
 * Waits `ms`, or less if `signal` aborts first. Resolves `true` after the full wait, `false`
 * when aborted; never rejects, so a stop request simply ends the wait at once.
 */
export async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  try {
    await delay(Math.max(0, ms), undefined, { signal });
    return true;
  } catch {
    return false;
  }
}
