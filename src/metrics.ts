/**
 * Prometheus metrics (served by the control API at `GET /metrics`).
 *
 * `createMetrics()` builds a set of metrics on its own prom-client `Registry`: nothing is
 * registered on prom-client's global registry and no timer is started, so tests can create as
 * many as they like. The process has one shared set, `metrics`, created at import; its members
 * are also exported by name (`reconnectsTotal`, ...) for code that has no other way to reach
 * the gateway's set (adapters: `reconnectsTotal.inc({ platform: 'qqbot', cause: 'close_4009' })`).
 * The pipeline and the control server take a `GatewayMetrics` as an option, so a test can
 * give them a fresh set and assert on exact values.
 *
 * Label values must come from small fixed sets (instance names, handler types, error codes,
 * reconnect causes): never a chat id, a message id or any text from a user.
 *
 * `platform` is the instance name (the key under `platforms:`). Every series with a `platform`
 * label also carries `type` (the instance's adapter type, from `bindTypes`), so dashboards can
 * sum by type; it follows from `platform`, so it adds no series.
 */
import type * as Prom from 'prom-client';
import { ADAPTER_STATES } from './adapters/contract.js';
import { TallyCounter, TallyHistogram } from './hot-metrics.js';
import { GATEWAY_STATES, type StateDocument } from './state/schema.js';
import { requireLibrary } from './util/require-library.js';

// prom-client's index also loads its process metrics, cluster aggregation, push gateway and
// summaries: about 10 MB of RSS and 40 ms at every start, for a /metrics that only a
// configured control API serves. The four classes used here come from their own modules;
// the process metrics are loaded by collectProcessMetrics() (the version is pinned).
const Registry = requireLibrary('prom-client/lib/registry') as typeof Prom.Registry;
const Counter = requireLibrary('prom-client/lib/counter') as typeof Prom.Counter;
const Gauge = requireLibrary('prom-client/lib/gauge') as typeof Prom.Gauge;
type Registry = Prom.Registry;
type Counter<T extends string> = Prom.Counter<T>;
type Gauge<T extends string = string> = Prom.Gauge<T>;

/** Outcome of one delivery attempt through `adapter.send`. */
export type DeliveryResult = 'ok' | 'error' | 'timeout';

/**
 * A counter labelled by instance: callers give `platform` (and the other labels); the `type`
 * label is added from the bound instance types.
 */
export interface PlatformCounter<L extends string> {
  inc(labels: { platform: string } & Record<L, string>, value?: number): void;
}

/** What the collect-time gauges read: a `StateStore` fits. */
export interface StateSource {
  snapshot(): StateDocument;
  readonly writeCount: number;
}

export interface GatewayMetrics {
  readonly registry: Registry;
  /** `hermes_reconnects_total{platform,type,cause}`: an adapter starts a reconnect. */
  readonly reconnectsTotal: PlatformCounter<'cause'>;
  /** `hermes_inbound_events_total{platform,type}`: every event an adapter emits (a tally). */
  readonly inboundEventsTotal: TallyCounter<'platform'>;
  /** `hermes_duplicates_dropped_total{platform,type}`: events whose id was handled recently. */
  readonly duplicatesDroppedTotal: TallyCounter<'platform'>;
  /** `hermes_queue_overflow_total{platform,type}`: events dropped because a chat's queue was full. */
  readonly queueOverflowTotal: PlatformCounter<never>;
  /**
   * `hermes_handler_latency_seconds{handler}`: time from handler start to replies (or error);
   * observed once per event, so a tally (hot-metrics.ts).
   */
  readonly handlerLatencySeconds: TallyHistogram<'handler'>;
  /** `hermes_handler_errors_total{handler,code}`: handler failures by error code. */
  readonly handlerErrorsTotal: Counter<'handler' | 'code'>;
  /** `hermes_deliveries_total{platform,type,result}`: replies and proactive sends by outcome. */
  readonly deliveriesTotal: PlatformCounter<'result'>;
  /**
   * `hermes_resume_after_restart_total{platform,type,result}`: how the first connection of a
   * process used the resume point the previous one left (`accepted`, `refused`, `stale`).
   */
  readonly resumeAfterRestartTotal: PlatformCounter<'result'>;
  /**
   * `hermes_broker_dead_letters_total{platform,type,reason}`: replies from the broker that were
   * not delivered and went to the dead-letter subject (`unknown_instance`, `late`,
   * `delivery_failed`, `malformed`); docs/scale-out.md.
   */
  readonly brokerDeadLettersTotal: PlatformCounter<'reason'>;
  /**
   * `hermes_possible_duplicate_replies_total{platform,type}`: replies a previous process left
   * in flight, re-sent to a platform without an idempotency key (Telegram): each may have
   * arrived before the crash and then arrives twice.
   */
  readonly possibleDuplicateRepliesTotal: PlatformCounter<never>;
  /**
   * `hermes_pipeline_queued_events`: events accepted and not yet finished (queued or running),
   * read from the source `bindPipelineLoad` gave at scrape time (it changes twice per event).
   */
  readonly pipelineQueuedEvents: Gauge;
  /** Feeds `hermes_pipeline_queued_events` from `load`; returns an unbind function. */
  bindPipelineLoad(load: () => number): () => void;
  /**
   * Sets each instance's type (instance name -> type) for the `type` label; an instance not
   * bound is labelled with its own name as type (single-instance configs: `qqbot`/`qqbot`).
   */
  bindTypes(types: ReadonlyMap<string, string>): void;
  /**
   * Feeds `hermes_gateway_state{state}`, `hermes_adapter_state{platform,type,state}` (1 for the
   * current state, 0 for the others), `hermes_adapter_reconnect_attempt{platform,type}` and
   * `hermes_state_file_writes_total` from `source` at scrape time. Returns an unbind function.
   * Binding again replaces the previous source.
   */
  bindState(source: StateSource): () => void;
  /**
   * `hermes_ingress_requests_total{route,status}`: requests to the inbound webhook server, by
   * route (the instance, or `unrouted`) and HTTP status.
   */
  readonly ingressRequestsTotal: Counter<'route' | 'status'>;
  /**
   * `hermes_ingress_rejected_total{route,reason}`: requests refused (`not_found`, `method`,
   * `too_large`, `timeout`, `closing`, `signature`, `timestamp`, `secret`, `bad_json`, ...).
   */
  readonly ingressRejectedTotal: Counter<'route' | 'reason'>;
  /**
   * `hermes_webhook_last_valid_callback_timestamp_seconds{platform,type}`: when the platform
   * last reached a webhook instance with a request that passed verification. The proof that
   * the public URL works, which webhook `connected` cannot give.
   */
  readonly webhookLastValidCallback: { set(platform: string, atMs?: number): void };
  /** Adds prom-client's process metrics (`process_*`, `nodejs_*`) to this registry; idempotent. */
  collectProcessMetrics(): void;
}

/** Handler latencies range from an echo (microseconds) to a slow LLM (tens of seconds). */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Builds a fresh, independent set of the gateway's metrics on its own registry. */
export function createMetrics(): GatewayMetrics {
  const registry = new Registry();
  const registers = [registry];
  let source: StateSource | null = null;
  let pipelineLoad: (() => number) | null = null;
  let processMetrics = false;
  let types: ReadonlyMap<string, string> = new Map();
  const typeOf = (platform: string): string => types.get(platform) ?? platform;
  const derived = { labelName: 'type', value: typeOf };

  const reconnectsTotal = platformCounter(
    {
      name: 'hermes_reconnects_total',
      help: 'Reconnects started by adapters, by instance and cause.',
      labelNames: ['cause'] as const,
      registers,
    },
    typeOf,
  );
  const inboundEventsTotal = new TallyCounter({
    name: 'hermes_inbound_events_total',
    help: 'Inbound events emitted by adapters.',
    labelName: 'platform',
    registers,
    derived,
  });
  const duplicatesDroppedTotal = new TallyCounter({
    name: 'hermes_duplicates_dropped_total',
    help: 'Inbound events dropped because the same event id was handled within the dedupe window.',
    labelName: 'platform',
    registers,
    derived,
  });
  const queueOverflowTotal = platformCounter(
    {
      name: 'hermes_queue_overflow_total',
      help: "Inbound events dropped because their conversation's queue was full.",
      labelNames: [] as const,
      registers,
    },
    typeOf,
  );
  const handlerLatencySeconds = new TallyHistogram({
    name: 'hermes_handler_latency_seconds',
    help: 'Time a handler took to answer one event, in seconds (failures included).',
    labelName: 'handler',
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const handlerErrorsTotal = new Counter({
    name: 'hermes_handler_errors_total',
    help: 'Handler failures, by handler type and error code.',
    labelNames: ['handler', 'code'] as const,
    registers,
  });
  const deliveriesTotal = platformCounter(
    {
      name: 'hermes_deliveries_total',
      help: 'Messages handed to adapter.send (replies and proactive sends), by result.',
      labelNames: ['result'] as const,
      registers,
    },
    typeOf,
  );
  const resumeAfterRestartTotal = platformCounter(
    {
      name: 'hermes_resume_after_restart_total',
      help: 'Resumes at the resume point a previous process left, by platform and result.',
      labelNames: ['result'] as const,
      registers,
    },
    typeOf,
  );
  const brokerDeadLettersTotal = platformCounter(
    {
      name: 'hermes_broker_dead_letters_total',
      help: 'Replies from the broker sent to the dead-letter subject instead of the chat, by reason.',
      labelNames: ['reason'] as const,
      registers,
    },
    typeOf,
  );
  const possibleDuplicateRepliesTotal = platformCounter(
    {
      name: 'hermes_possible_duplicate_replies_total',
      help: 'Replies left in flight by a previous process and re-sent without an idempotency key: each may arrive twice.',
      labelNames: [] as const,
      registers,
    },
    typeOf,
  );
  const pipelineQueuedEvents = new Gauge({
    name: 'hermes_pipeline_queued_events',
    help: 'Inbound events accepted by the pipeline and not finished yet (waiting or running).',
    registers,
    collect() {
      this.set(pipelineLoad?.() ?? 0);
    },
  });

  const ingressRequestsTotal = new Counter({
    name: 'hermes_ingress_requests_total',
    help: 'Requests to the inbound webhook server, by route (instance or unrouted) and status.',
    labelNames: ['route', 'status'] as const,
    registers,
  });
  const ingressRejectedTotal = new Counter({
    name: 'hermes_ingress_rejected_total',
    help: 'Requests the inbound webhook server refused, by route and reason.',
    labelNames: ['route', 'reason'] as const,
    registers,
  });
  const lastValidCallback = new Gauge({
    name: 'hermes_webhook_last_valid_callback_timestamp_seconds',
    help: 'Unix time of the last webhook request that passed verification, by instance.',
    labelNames: ['platform', 'type'] as const,
    registers,
  });
  const webhookLastValidCallback = {
    set(platform: string, atMs: number = Date.now()): void {
      lastValidCallback.set({ platform, type: typeOf(platform) }, atMs / 1000);
    },
  };

  new Gauge({
    name: 'hermes_gateway_state',
    help: 'The gateway state: 1 for the current state, 0 for the others.',
    labelNames: ['state'] as const,
    registers,
    collect() {
      this.reset();
      if (!source) return;
      const current = source.snapshot().gateway.state;
      for (const state of GATEWAY_STATES) this.set({ state }, state === current ? 1 : 0);
    },
  });
  new Gauge({
    name: 'hermes_adapter_state',
    help: 'Each adapter state: 1 for the current state, 0 for the others.',
    labelNames: ['platform', 'type', 'state'] as const,
    registers,
    collect() {
      this.reset();
      if (!source) return;
      for (const [platform, status] of Object.entries(source.snapshot().platforms)) {
        const type = status.type ?? platform;
        for (const state of ADAPTER_STATES) {
          this.set({ platform, type, state }, state === status.state ? 1 : 0);
        }
      }
    },
  });
  new Gauge({
    name: 'hermes_adapter_reconnect_attempt',
    help: 'The current reconnect attempt of each adapter (0 when connected).',
    labelNames: ['platform', 'type'] as const,
    registers,
    collect() {
      this.reset();
      if (!source) return;
      for (const [platform, status] of Object.entries(source.snapshot().platforms)) {
        this.set({ platform, type: status.type ?? platform }, status.reconnect_attempt);
      }
    },
  });
  new Counter({
    name: 'hermes_state_file_writes_total',
    help: 'Successful atomic writes of gateway_state.json by this process.',
    registers,
    collect() {
      // The store owns the count; the counter mirrors it at scrape time.
      this.reset();
      const writes = source?.writeCount ?? 0;
      if (writes > 0) this.inc(writes);
    },
  });

  return {
    registry,
    reconnectsTotal,
    inboundEventsTotal,
    duplicatesDroppedTotal,
    queueOverflowTotal,
    handlerLatencySeconds,
    handlerErrorsTotal,
    deliveriesTotal,
    resumeAfterRestartTotal,
    brokerDeadLettersTotal,
    possibleDuplicateRepliesTotal,
    pipelineQueuedEvents,
    ingressRequestsTotal,
    ingressRejectedTotal,
    webhookLastValidCallback,
    bindPipelineLoad(load) {
      pipelineLoad = load;
      return () => {
        if (pipelineLoad === load) pipelineLoad = null;
      };
    },
    bindTypes(next) {
      types = new Map(next);
    },
    bindState(next) {
      source = next;
      return () => {
        if (source === next) source = null;
      };
    },
    collectProcessMetrics() {
      if (processMetrics) return;
      processMetrics = true;
      const collectDefaultMetrics = requireLibrary(
        'prom-client/lib/defaultMetrics',
      ) as typeof Prom.collectDefaultMetrics;
      collectDefaultMetrics({ register: registry });
    },
  };
}

/** A prom-client Counter with `platform` and `type` first, `type` looked up from `platform`. */
function platformCounter<L extends string>(
  options: { name: string; help: string; labelNames: readonly L[]; registers: Registry[] },
  typeOf: (platform: string) => string,
): PlatformCounter<L> {
  const counter = new Counter({
    name: options.name,
    help: options.help,
    labelNames: ['platform', 'type', ...options.labelNames],
    registers: options.registers,
  });
  return {
    inc(labels, value = 1) {
      const { platform, ...rest } = labels;
      const full = { platform, type: typeOf(platform), ...rest } as Partial<
        Record<'platform' | 'type' | L, string>
      >;
      counter.inc(full, value);
    },
  };
}

/** The process's shared set: what `hermes-gateway run` serves and adapters count into. */
export const metrics: GatewayMetrics = createMetrics();

export const {
  registry,
  reconnectsTotal,
  inboundEventsTotal,
  duplicatesDroppedTotal,
  queueOverflowTotal,
  handlerLatencySeconds,
  handlerErrorsTotal,
  deliveriesTotal,
  resumeAfterRestartTotal,
  possibleDuplicateRepliesTotal,
  pipelineQueuedEvents,
  ingressRequestsTotal,
  ingressRejectedTotal,
  webhookLastValidCallback,
} = metrics;

/** Feeds the shared set's state gauges from `store` (see `GatewayMetrics.bindState`). */
export function bindStateMetrics(store: StateSource, target: GatewayMetrics = metrics): () => void {
  return target.bindState(store);
}
