import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Adapter, InboundEvent } from '../adapters/contract.js';
import type { DeliveryStore } from '../delivery/store.js';
import { EXIT, GatewayError, exitCodeFor, toGatewayError } from '../errors.js';
import type { GatewayState } from '../state/schema.js';
import type { StateStore } from '../state/store.js';
import type { Notifier } from '../systemd/notify.js';
import { AdapterHost, type HostRunner } from './adapter-host.js';
import { statusLine } from './status-line.js';
import { canGatewayMove } from './transitions.js';

export interface RunnerOptions {
  adapters: Adapter[];
  store: StateStore;
  log: Logger;
  notifier: Notifier;
  /** How long adapters get to stop after a stop request or a fatal error. */
  shutdownTimeoutMs: number;
  /** How often heartbeat_at is refreshed in the state file. */
  heartbeatIntervalMs: number;
  /** Receives every inbound event; must not throw; calls `done` once the event has ended. */
  dispatch?: (event: InboundEvent, done?: () => void) => void;
  /** Each adapter's type by instance name, recorded in the state file; default: the name. */
  types?: ReadonlyMap<string, string>;
  /** The delivery store (docs/delivery.md); absent or null when off. */
  delivery?: DeliveryStore | null;
}

export interface RunOutcome {
  exitCode: number;
  /** The fatal error, or null after a requested stop. */
  error: GatewayError | null;
  reason: string;
}

type Ending =
  | { kind: 'stop'; reason: string }
  | { kind: 'fatal'; error: GatewayError; host: AdapterHost | null };

/**
 * Owns every adapter's life and the gateway's own state (DESIGN §2). `run()` resolves with
 * the exit code once the gateway has ended, either because `stop()` was called or because an
 * adapter (or the process) failed; it never rejects. Every transition is persisted before
 * the next step proceeds.
 */
export class Runner implements HostRunner {
  readonly store: StateStore;
  readonly delivery: DeliveryStore | null;
  private readonly log: Logger;
  private readonly notifier: Notifier;
  private readonly hosts: AdapterHost[];
  private readonly options: RunnerOptions;
  private ending: Ending | null = null;
  /** Errors fail() has seen, so a repeat of one is not logged again. */
  private readonly reported = new WeakSet<GatewayError>();
  private finished: Promise<RunOutcome> | null = null;
  private resolveOutcome!: (outcome: RunOutcome) => void;
  private readonly outcome: Promise<RunOutcome>;
  private tick: NodeJS.Timeout | null = null;
  private lastHeartbeatMs = 0;

  constructor(options: RunnerOptions) {
    this.options = options;
    this.store = options.store;
    this.delivery = options.delivery ?? null;
    this.log = options.log;
    this.notifier = options.notifier;
    this.hosts = options.adapters.map((adapter) => new AdapterHost(adapter, this, options.log));
    this.outcome = new Promise((resolve) => {
      this.resolveOutcome = resolve;
    });
  }

  /** Starts every adapter; resolves with the outcome once the gateway has ended. */
  async run(): Promise<RunOutcome> {
    await this.store.resumeSequence();
    const at = this.store.iso();
    this.store.setGateway({ state: 'starting', since: at, reason: null, exit_code: null });
    for (const host of this.hosts) {
      const type = this.options.types?.get(host.name) ?? host.name;
      this.store.setPlatform(host.name, { type, state: 'starting', since: at });
    }
    // A failed write has already ended the gateway through fail(); the outcome says how.
    if ((await this.tryCommit()) && this.ending === null) {
      for (const host of this.hosts) host.start();
      this.moveGateway('running', null, null);
      if ((await this.tryCommit()) && this.ending === null) {
        this.notifier.ready(statusLine(this.store.snapshot()));
        this.log.info({ platforms: this.hosts.map((h) => h.name) }, 'gateway running');
      }
      this.startTick();
    }
    return this.outcome;
  }

  /** Requests a graceful stop (SIGTERM, SIGINT). Idempotent. */
  stop(reason: string): void {
    this.end({ kind: 'stop', reason });
  }

  /**
   * Reports a fatal error. The first fatal (or stop) decides the outcome; later ones are
   * logged. `host` is null for process-level failures (uncaught exception, state write).
   */
  fail(error: GatewayError, host: AdapterHost | null = null): void {
    // The same error reported again (a broken state store rejects every later commit with
    // it) is the fatal already being handled: one fatal, one error line.
    if (this.reported.has(error)) return;
    this.reported.add(error);
    if (this.ending !== null) {
      this.log.error(
        { code: error.code, platform: host?.name, retryable: error.retryable },
        `error while ${this.ending.kind === 'stop' ? 'stopping' : 'handling a fatal error'}: ${error.message}`,
      );
      return;
    }
    this.end({ kind: 'fatal', error, host });
  }

  /** Persists the document; a write failure ends the gateway with exit 70. */
  async commit(): Promise<void> {
    for (const host of this.hosts) {
      const at = host.lastEventAt;
      if (at !== null)
        this.store.setPlatform(host.name, { last_event_at: new Date(at).toISOString() });
      this.store.setPlatform(host.name, { delivery: host.delivery.status() });
    }
    try {
      await this.store.commit();
    } catch (err) {
      this.fail(toGatewayError(err, 'GW_ERR_STATE_WRITE'));
      throw err;
    }
  }

  changed(): void {
    this.notifier.status(statusLine(this.store.snapshot()));
  }

  dispatch(event: InboundEvent, done?: () => void): void {
    if (this.options.dispatch) this.options.dispatch(event, done);
    else done?.();
  }

  private end(ending: Ending): void {
    if (this.ending !== null) return;
    this.ending = ending;
    this.finished = this.shutdown(ending).then(
      (outcome) => outcome,
      // shutdown() catches what it can; anything left is an internal error, never a hang.
      (err: unknown) => ({
        exitCode: EXIT.INTERNAL,
        error: toGatewayError(err, 'GW_ERR_INTERNAL'),
        reason: 'shutdown failed',
      }),
    );
    this.finished.then(this.resolveOutcome, this.resolveOutcome);
  }

  private moveGateway(state: GatewayState, reason: string | null, exitCode: number | null): void {
    const from = this.store.gateway.state;
    if (!canGatewayMove(from, state)) return;
    this.store.setGateway({ state, since: this.store.iso(), reason, exit_code: exitCode });
  }

  /** Persists, swallowing a write failure that has already been reported through fail(). */
  private async tryCommit(): Promise<boolean> {
    try {
      await this.commit();
      return true;
    } catch {
      return false;
    }
  }

  private async shutdown(ending: Ending): Promise<RunOutcome> {
    let exitCode: number;
    let reason: string;
    let error: GatewayError | null = null;
    if (ending.kind === 'fatal') {
      error = ending.error;
      exitCode = exitCodeFor(error);
      const where = ending.host ? `${ending.host.name}: ` : '';
      reason = `${where}${error.code}: ${error.message}`;
      ending.host?.setTerminal('fatal', error);
      this.moveGateway('fatal', reason, exitCode);
      this.log.error(
        {
          // The facts (path, errno, close code...) go on the one error line of the fatal.
          ...error.details,
          code: error.code,
          platform: ending.host?.name,
          retryable: error.retryable,
          exit_code: exitCode,
        },
        `fatal: ${reason}`,
      );
    } else {
      exitCode = EXIT.OK;
      reason = ending.reason;
      this.moveGateway('stopping', reason, exitCode);
      this.log.info({ reason }, 'stopping');
    }
    this.notifier.stopping(statusLine(this.store.snapshot()));
    if (!(await this.tryCommit())) exitCode = EXIT.INTERNAL;

    for (const host of this.hosts) host.requestStop();
    const abandoned = await this.waitForHosts();
    for (const host of abandoned) {
      const timeout = new GatewayError(
        'GW_ERR_STOP_TIMEOUT',
        `adapter ${host.name} did not stop within ${this.options.shutdownTimeoutMs} ms`,
      );
      host.setTerminal('stopped', timeout, 'abandoned');
      this.log.error({ code: timeout.code, platform: host.name }, timeout.message);
    }
    // Hosts that never started (the gateway failed while starting) end `stopped` too.
    for (const host of this.hosts) host.setTerminal('stopped', null);
    if (ending.kind === 'stop') {
      const forced =
        abandoned.length > 0 ? ` (forced after ${this.options.shutdownTimeoutMs} ms)` : '';
      this.moveGateway('stopped', reason + forced, exitCode);
    }
    this.stopTick();
    if (!(await this.tryCommit())) exitCode = EXIT.INTERNAL;
    this.log.info({ exit_code: exitCode, state: this.store.gateway.state }, 'gateway ended');
    return { exitCode, error, reason };
  }

  /** Waits for every host to settle, up to the shutdown deadline; returns those that did not. */
  private async waitForHosts(): Promise<AdapterHost[]> {
    const deadline = new AbortController();
    const all = Promise.all(this.hosts.map((host) => host.settled));
    const timer = delay(this.options.shutdownTimeoutMs, 'timeout', {
      signal: deadline.signal,
    }).catch(() => 'aborted');
    await Promise.race([all, timer]);
    deadline.abort();
    return this.hosts.filter((host) => !host.isSettled);
  }

  private startTick(): void {
    if (this.tick !== null || this.ending !== null) return;
    const watchdogMs = this.notifier.watchdogPingMs;
    const heartbeatMs = this.options.heartbeatIntervalMs;
    const tickMs = Math.max(1, Math.min(heartbeatMs, watchdogMs ?? Infinity));
    this.lastHeartbeatMs = Date.now();
    if (watchdogMs !== null) this.notifier.watchdog();
    // Both the watchdog ping and the heartbeat only happen while the event loop turns, which
    // is the point: a wedged loop stops pinging and systemd kills the process.
    this.tick = setInterval(() => {
      if (watchdogMs !== null) this.notifier.watchdog();
      const now = Date.now();
      if (now - this.lastHeartbeatMs >= heartbeatMs && this.ending === null) {
        this.lastHeartbeatMs = now;
        this.store.markHeartbeat();
        this.commit().catch(() => undefined);
      }
    }, tickMs);
  }

  private stopTick(): void {
    if (this.tick !== null) clearInterval(this.tick);
    this.tick = null;
  }
}
