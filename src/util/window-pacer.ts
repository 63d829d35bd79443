/**
 * A sliding-window pacer: at most `limit` actions in any `windowMs`. Used by the Discord
 * gateway (120 commands / 60 s per connection, heartbeats included) and by its REST global
 * limit (50 requests / s). It only answers how long to wait; callers wait with their signal.
 */
export class WindowPacer {
  /** Times of the last `limit` actions, oldest first (a ring). */
  private readonly times: number[] = [];

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!(limit >= 1)) throw new RangeError('a pacer needs a limit of at least 1');
  }

  /** How long until one more action fits (0: now). */
  waitMs(): number {
    if (this.times.length < this.limit) return 0;
    return Math.max(0, this.times[0]! + this.windowMs - this.now());
  }

  /** Records one action now when it fits and returns true; false (nothing recorded) when not. */
  tryTake(): boolean {
    if (this.waitMs() > 0) return false;
    if (this.times.length >= this.limit) this.times.shift();
    this.times.push(this.now());
    return true;
  }

  /** Actions recorded within the current window. */
  inWindow(): number {
    const since = this.now() - this.windowMs;
    return this.times.filter((t) => t > since).length;
  }
}
