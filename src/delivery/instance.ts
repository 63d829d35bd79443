/**
 * One adapter instance's side of the delivery contract (contract.ts: `resumePoint`,
 * `saveSession`, `handledPosition`): it follows the positions of the events the instance
 * emits, computes the handled watermark of the current session and keeps the instance's
 * resume point in the delivery store up to date.
 */
import type { InboundEvent, ResumePoint, ResumeResult } from '../adapters/contract.js';
import { resumeAfterRestartTotal } from '../metrics.js';
import type { DeliveryStore } from './store.js';
import { HandledWatermark } from './watermark.js';

/** What gateway_state.json shows per instance (docs/state-file.md). */
export interface DeliveryStatus {
  /** `off` when `delivery.enabled` is false. */
  store: 'ok' | 'failed' | 'off';
  /** Milliseconds since the resume point was last written; null when there is none. */
  resume_point_age_ms: number | null;
  /** The handled watermark of the current session; null before the first handled event. */
  handled_position: number | null;
}

export class InstanceDelivery {
  readonly resumePoint: ResumePoint | null;
  private session: Record<string, unknown> | null;
  private watermark: HandledWatermark;
  /** Epoch ms of the last resume point write (queued); null when none exists. */
  private savedAt: number | null;
  private lastSaved: number | null;
  /** whenHandled() callers, woken when the watermark reaches their position. */
  private readonly waiters = new Set<{ position: number; wake: () => void }>();

  constructor(
    readonly instance: string,
    private readonly store: DeliveryStore | null,
    private readonly now: () => number = Date.now,
  ) {
    this.resumePoint = store?.resumePoint(instance) ?? null;
    const point = this.resumePoint;
    this.session = point?.session ?? null;
    this.watermark = new HandledWatermark(point?.position ?? null);
    this.savedAt = point === null ? null : this.now() - point.ageMs;
    this.lastSaved = point?.position ?? null;
  }

  /** Starts a new position stream for `session` and persists it as the resume point. */
  saveSession(session: Record<string, unknown>): void {
    this.session = session;
    this.watermark = new HandledWatermark();
    this.lastSaved = null;
    this.write();
    // The positions waited for belong to the old stream.
    for (const waiter of [...this.waiters]) waiter.wake();
  }

  handledPosition(): number | null {
    return this.watermark.value;
  }

  /** See AdapterContext.whenHandled. */
  whenHandled(position: number, signal: AbortSignal): Promise<void> {
    const value = this.watermark.value;
    if ((value !== null && value >= position) || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = { position, wake: (): void => undefined };
      const onAbort = (): void => waiter.wake();
      waiter.wake = () => {
        this.waiters.delete(waiter);
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }

  resumeOutcome(result: ResumeResult): void {
    resumeAfterRestartTotal.inc({ platform: this.instance, result });
  }

  /**
   * Follows `event`'s position; returns what the pipeline calls once the event has ended
   * (exactly once); undefined for events without a position or emitted while no session is
   * known: they take no part in the watermark. With the store off the watermark is still
   * followed (not persisted): Telegram confirms updates by it, and the platform's own queue
   * then keeps what is not handled.
   */
  begin(event: InboundEvent): (() => void) | undefined {
    const position = event.position;
    if (position === undefined || this.session === null) return undefined;
    const watermark = this.watermark;
    watermark.begin(position);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      // An event of an earlier session ends: that session can no longer be resumed.
      if (!watermark.end(position) || watermark !== this.watermark) return;
      this.write();
      if (this.waiters.size > 0) this.wake();
    };
  }

  private wake(): void {
    const value = this.watermark.value;
    if (value === null) return;
    for (const waiter of [...this.waiters]) if (value >= waiter.position) waiter.wake();
  }

  status(): DeliveryStatus {
    return {
      store: this.store === null ? 'off' : this.store.health,
      resume_point_age_ms: this.savedAt === null ? null : Math.max(0, this.now() - this.savedAt),
      handled_position: this.watermark.value,
    };
  }

  private write(): void {
    if (this.store === null || this.session === null) return;
    const position = this.watermark.value;
    if (position === this.lastSaved && this.savedAt !== null && position !== null) return;
    this.lastSaved = position;
    this.savedAt = this.now();
    this.store.saveResumePoint(this.instance, this.session, position);
  }
}
