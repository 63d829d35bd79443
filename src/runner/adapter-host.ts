import type { Logger } from 'pino';
import type {
  Adapter,
  AdapterContext,
  AdapterOwnedState,
  AdapterState,
  AdapterStatusPatch,
  InboundEvent,
} from '../adapters/contract.js';
import { InstanceDelivery } from '../delivery/instance.js';
import type { DeliveryStore } from '../delivery/store.js';
import { GatewayError, toGatewayError } from '../errors.js';
import type { PersistedError, PlatformStatus } from '../state/schema.js';
import type { StateStore } from '../state/store.js';
import { canAdapterMove } from './transitions.js';

/** What a host needs from the runner. */
export interface HostRunner {
  readonly store: StateStore;
  /** Persists the store (with every host's last_event_at); a failure is fatal inside. */
  commit(): Promise<void>;
  /** Reports a fatal error of this host; the first one wins. */
  fail(error: GatewayError, host: AdapterHost): void;
  /** Called after every persisted transition (systemd STATUS=). */
  changed(): void;
  /** `done` is called once the event has ended (DESIGN §11: the handled watermark). */
  dispatch(event: InboundEvent, done?: () => void): void;
  /** The delivery store; null when `delivery.enabled` is false. */
  readonly delivery: DeliveryStore | null;
}

const ADAPTER_OWNED_STATES: readonly AdapterState[] = ['connecting', 'connected', 'reconnecting'];

export function persistError(error: GatewayError, at: string): PersistedError {
  return { code: error.code, message: error.message, retryable: error.retryable, at };
}

/**
 * Owns one adapter's life: its abort signal, its `run()` promise and every transition of its
 * state. The runner learns how the life ended through `settled`, which never rejects.
 */
export class AdapterHost {
  readonly name: string;
  readonly log: Logger;
  /** The instance's resume point and handled watermark. */
  readonly delivery: InstanceDelivery;
  /** Resolves once `run()` has settled and the outcome has been handled. */
  settled: Promise<void> = Promise.resolve();
  private readonly controller = new AbortController();
  private stopRequestedFlag = false;
  /** True until start() and again once run() has settled: an unstarted host has nothing to wait for. */
  private hasSettled = true;
  private lastEventAtMs: number | null = null;

  constructor(
    private readonly adapter: Adapter,
    private readonly runner: HostRunner,
    log: Logger,
  ) {
    this.name = adapter.name;
    this.log = log.child({ platform: adapter.name });
    this.delivery = new InstanceDelivery(adapter.name, runner.delivery);
  }

  get state(): AdapterState {
    return this.runner.store.platform(this.name)?.state ?? 'starting';
  }

  get stopRequested(): boolean {
    return this.stopRequestedFlag;
  }

  get isSettled(): boolean {
    return this.hasSettled;
  }

  get lastEventAt(): number | null {
    return this.lastEventAtMs;
  }

  /** Starts the adapter's life. Call once. */
  start(): void {
    const ctx = this.context();
    this.hasSettled = false;
    // run() is called inside a then() so a synchronous throw becomes a rejection too.
    this.settled = Promise.resolve()
      .then(() => this.adapter.run(ctx, this.controller.signal))
      .then(
        () => this.onSettled(null),
        (err: unknown) => this.onSettled(err ?? new Error('run() rejected without a reason')),
      );
  }

  /** Asks the adapter to stop: aborts its signal. Idempotent. */
  requestStop(): void {
    this.stopRequestedFlag = true;
    this.controller.abort();
  }

  /** Sets a runner-owned terminal state (`fatal` or `stopped`) in the store, not yet persisted. */
  setTerminal(
    state: 'fatal' | 'stopped',
    error: GatewayError | null,
    detail: string | null = null,
  ): void {
    const current = this.state;
    if (current === 'fatal' || current === 'stopped') return;
    const at = this.runner.store.iso();
    const patch: Partial<PlatformStatus> = { state, since: at, detail };
    if (error) patch.last_error = persistError(error, at);
    if (state === 'fatal') patch.resumable = false;
    this.runner.store.setPlatform(this.name, patch);
  }

  private async onSettled(err: unknown): Promise<void> {
    this.hasSettled = true;
    if (this.stopRequestedFlag) {
      if (err !== null) {
        const error = toGatewayError(err, 'GW_ERR_ADAPTER_FAILED');
        this.log.warn(
          { code: error.code },
          `adapter ended with an error while stopping: ${error.message}`,
        );
      }
      if (this.state !== 'fatal') {
        this.setTerminal('stopped', null);
        this.log.info('adapter stopped');
        try {
          await this.runner.commit();
          this.runner.changed();
        } catch {
          // Already reported through fail(): a state write failure ends the gateway.
        }
      }
      return;
    }
    const error =
      err === null
        ? new GatewayError(
            'GW_ERR_ADAPTER_RETURNED',
            `adapter ${this.name} returned without a stop request`,
          )
        : toGatewayError(err, 'GW_ERR_ADAPTER_FAILED');
    this.runner.fail(error, this);
  }

  private patchToStatus(patch: AdapterStatusPatch): Partial<PlatformStatus> {
    const out: Partial<PlatformStatus> = {};
    if (patch.reconnectAttempt !== undefined) out.reconnect_attempt = patch.reconnectAttempt;
    if (patch.maxReconnectAttempts !== undefined)
      out.max_reconnect_attempts = patch.maxReconnectAttempts;
    if (patch.resumable !== undefined) out.resumable = patch.resumable;
    if (patch.detail !== undefined) out.detail = patch.detail;
    if (patch.lastError !== undefined) {
      out.last_error =
        patch.lastError === null ? null : persistError(patch.lastError, this.runner.store.iso());
    }
    return out;
  }

  private context(): AdapterContext {
    return {
      name: this.name,
      log: this.log,
      transition: async (state: AdapterOwnedState, patch: AdapterStatusPatch = {}) => {
        const from = this.state;
        // `stopped` and `fatal` belong to the runner: an adapter entering them itself would
        // hide its own end (setTerminal() leaves a terminal state alone).
        if (!ADAPTER_OWNED_STATES.includes(state) || !canAdapterMove(from, state)) {
          throw new GatewayError(
            'GW_ERR_INTERNAL',
            `invalid transition of ${this.name}: ${from} -> ${state}`,
            {
              details: { from, to: state },
            },
          );
        }
        const status = this.patchToStatus(patch);
        if (from !== state) status.since = this.runner.store.iso();
        this.runner.store.setPlatform(this.name, { ...status, state });
        this.log.info({ from, to: state, ...status }, `state ${from} -> ${state}`);
        await this.runner.commit();
        this.runner.changed();
      },
      note: (patch) => {
        this.runner.store.setPlatform(this.name, this.patchToStatus(patch));
      },
      touch: () => {
        this.lastEventAtMs = Date.now();
      },
      track: (what, promise) => {
        promise.then(
          () => undefined,
          (err: unknown) => {
            if (this.stopRequestedFlag) {
              this.log.debug({ task: what }, 'background task ended while stopping');
              return;
            }
            const cause = toGatewayError(err, 'GW_ERR_BACKGROUND_TASK');
            this.runner.fail(cause, this);
          },
        );
      },
      emit: (event) => this.runner.dispatch(event, this.delivery.begin(event)),
      resumePoint: this.delivery.resumePoint,
      saveSession: (session) => this.delivery.saveSession(session),
      handledPosition: () => this.delivery.handledPosition(),
      whenHandled: (position, signal) => this.delivery.whenHandled(position, signal),
      resumeOutcome: (result) => this.delivery.resumeOutcome(result),
    };
  }
}
