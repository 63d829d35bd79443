/**
 * State shared by the gateway and REST halves of one fake server: settings, tokens, records,
 * events and the timers that `close()` must clear.
 */
import type { FakeEvents } from './events.js';
import type { FakeQQSettings, SessionStartLimit } from './options.js';
import type {
  ConnectionRecord,
  DeliveryRecord,
  DisconnectRecord,
  DispatchRecord,
  GatewayRequestRecord,
  HeartbeatRecord,
  IdentifyRecord,
  RefusedUpgradeRecord,
  ResumeRecord,
  SendRecord,
  TokenRequestRecord,
  Violation,
  ViolationKind,
} from './records.js';
import type { TokenStore } from './tokens.js';

/** Everything the fake has seen, in arrival order. Arrays are appended to, never replaced. */
export class FakeRecords {
  readonly violations: Violation[] = [];
  readonly connections: ConnectionRecord[] = [];
  /** WebSocket upgrades answered with an HTTP error (refused connections). */
  readonly refusedUpgrades: RefusedUpgradeRecord[] = [];
  readonly disconnects: DisconnectRecord[] = [];
  readonly identifies: IdentifyRecord[] = [];
  readonly resumes: ResumeRecord[] = [];
  readonly heartbeats: HeartbeatRecord[] = [];
  readonly dispatches: DispatchRecord[] = [];
  readonly deliveries: DeliveryRecord[] = [];
  readonly tokenRequests: TokenRequestRecord[] = [];
  readonly gatewayRequests: GatewayRequestRecord[] = [];
  /** Every request to a message-sending endpoint. */
  readonly sendRequests: SendRecord[] = [];
  /** The sends the platform would have delivered. */
  readonly sentMessages: SendRecord[] = [];
}

/** A set of timers cleared together. */
export class Timers {
  private readonly handles = new Set<NodeJS.Timeout>();

  /** Like `setTimeout`, but remembered until it fires or is cleared. */
  set(callback: () => void, ms: number): NodeJS.Timeout {
    const handle = setTimeout(() => {
      this.handles.delete(handle);
      callback();
    }, ms);
    this.handles.add(handle);
    return handle;
  }

  clear(handle: NodeJS.Timeout | undefined): void {
    if (handle === undefined) return;
    clearTimeout(handle);
    this.handles.delete(handle);
  }

  clearAll(): void {
    for (const handle of this.handles) clearTimeout(handle);
    this.handles.clear();
  }
}

/**
 * `session_start_limit` with its countdown: `reset_after` shrinks with time, and once it
 * reaches 0 `remaining` goes back to `total` for a new 24 h window. Computed lazily.
 */
export class SessionStartCounter {
  private setAt = Date.now();

  constructor(private readonly settings: FakeQQSettings) {}

  /** Replaces some fields and restarts the countdown. */
  set(patch: Partial<SessionStartLimit>): void {
    Object.assign(this.settings.sessionStartLimit, patch);
    this.setAt = Date.now();
  }

  /** The limit as `GET /gateway/bot` reports it now. */
  snapshot(now = Date.now()): SessionStartLimit {
    const limit = this.settings.sessionStartLimit;
    if (now - this.setAt >= limit.reset_after) {
      limit.remaining = limit.total;
      limit.reset_after = 86_400_000;
      this.setAt = now;
    }
    return { ...limit, reset_after: limit.reset_after - (now - this.setAt) };
  }

  /** Takes one session start; false when none was left. */
  consume(): boolean {
    const limit = this.settings.sessionStartLimit;
    if (this.snapshot().remaining <= 0) return false;
    limit.remaining -= 1;
    return true;
  }
}

/** What both halves of the fake share. */
export interface FakeContext {
  readonly settings: FakeQQSettings;
  readonly tokens: TokenStore;
  readonly events: FakeEvents;
  readonly records: FakeRecords;
  readonly sessionStarts: SessionStartCounter;
  /** Ids of dispatched messages and events, usable as `msg_id` / `event_id`. */
  readonly knownIds: Set<string>;
  /** Records a violation and emits it. */
  violation(kind: ViolationKind, detail: string): void;
}
