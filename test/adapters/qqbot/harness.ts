/**
 * The QQ Bot adapter in-process, the real way: the fake QQ server on loopback, the adapter
 * built from a config that went through the real zod schema, the real Runner and StateStore
 * writing gateway_state.json into a temp dir. After every persisted transition the harness
 * reads the real file back, so tests assert on what an operator would have seen at each step.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InboundEvent } from '../../../src/adapters/contract.js';
import { QQBotAdapter } from '../../../src/adapters/qqbot/adapter.js';
import { qqbotSchema, toSettings } from '../../../src/adapters/qqbot/config.js';
import { Secret } from '../../../src/config/secret.js';
import type { IngressHub } from '../../../src/ingress/server.js';
import { Runner, type RunOutcome } from '../../../src/runner/runner.js';
import type { PlatformStatus, StateDocument } from '../../../src/state/schema.js';
import { StateStore } from '../../../src/state/store.js';
import type { Notifier } from '../../../src/systemd/notify.js';
import type { FakeQQServerOptions } from '../../../src/fakes/qq/options.js';
import { FakeQQServer } from '../../../src/fakes/qq/server.js';
import { captureLogger, type CapturedLog } from '../../support/capture.js';
import { within } from '../../support/deadline.js';

/** Tiny real timings: every wait of a test is bounded by these. */
export const TEST_HEARTBEAT_MS = 200;

export type Json = Record<string, unknown>;

/** `platforms.qqbot` for a fake, with test timings; `overrides` are merged in deeply. */
export function testConfig(fake: FakeQQServer, overrides: Json = {}): Json {
  const base: Json = {
    enabled: true,
    app_id: fake.settings.appId,
    client_secret: new Secret(fake.settings.clientSecret),
    token_url: fake.tokenUrl,
    api_base: fake.apiBase,
    reconnect: {
      backoff_ms: [20, 40],
      max_attempts: 5,
      healthy_after_ms: 10_000,
      rate_limited_wait_ms: 300,
    },
    timeouts: {
      connect_ms: 1_000,
      hello_ms: 1_000,
      ready_ms: 1_000,
      rest_ms: 1_000,
      token_ms: 1_000,
      close_ms: 200,
    },
    send: { retry_delay_ms: 20, max_retry_delay_ms: 2_000 },
    jitter: false,
  };
  return merge(base, overrides);
}

export function merge(base: Json, overrides: Json): Json {
  const out: Json = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    const current = out[key];
    out[key] = isPlain(value) && isPlain(current) ? merge(current, value) : value;
  }
  return out;
}

function isPlain(value: unknown): value is Json {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.getPrototypeOf(value) === Object.prototype
  );
}

export interface HarnessOptions {
  fake?: FakeQQServerOptions;
  /** Merged into testConfig(); `null` values remove a key. */
  config?: Json;
  /** Start the runner (default true); false to script the fake first. */
  start?: boolean;
  random?: () => number;
  /** The inbound HTTP server of a webhook instance (a test's own hub). */
  ingress?: IngressHub;
}

interface StateWaiter {
  predicate: (doc: StateDocument) => boolean;
  from: number;
  resolve: (doc: StateDocument) => void;
}

/** One fake, one adapter, one runner, one state file. */
export class QQHarness {
  readonly states: StateDocument[] = [];
  readonly events: InboundEvent[] = [];
  readonly logs: CapturedLog;
  runner!: Runner;
  adapter!: QQBotAdapter;
  store!: StateStore;
  outcome: Promise<RunOutcome> | null = null;
  private readonly waiters = new Set<StateWaiter>();
  private readonly eventWaiters = new Set<() => void>();

  private constructor(
    readonly fake: FakeQQServer,
    readonly dir: string,
    readonly path: string,
    readonly config: Json,
    private readonly random: (() => number) | undefined,
    private readonly ingress: IngressHub | undefined,
  ) {
    this.logs = captureLogger('debug');
  }

  static async start(options: HarnessOptions = {}): Promise<QQHarness> {
    const fake = await FakeQQServer.start({
      heartbeatIntervalMs: TEST_HEARTBEAT_MS,
      ...options.fake,
    });
    const dir = await mkdtemp(join(tmpdir(), 'hgw-qq-'));
    const harness = new QQHarness(
      fake,
      dir,
      join(dir, 'gateway_state.json'),
      testConfig(fake, options.config),
      options.random,
      options.ingress,
    );
    if (options.start !== false) harness.startRunner();
    return harness;
  }

  /** Builds the adapter from the config (through the real schema) and starts the runner. */
  startRunner(): void {
    const config = qqbotSchema.parse(stripNulls(this.config));
    this.adapter = new QQBotAdapter(toSettings(config), {
      ...(this.random === undefined ? {} : { random: this.random }),
      ...(this.ingress === undefined ? {} : { ingress: this.ingress }),
    });
    this.store = new StateStore({
      path: this.path,
      heartbeatIntervalMs: 60_000,
      log: this.logs.log,
    });
    this.runner = new Runner({
      adapters: [this.adapter],
      store: this.store,
      log: this.logs.log,
      notifier: this.notifier(),
      shutdownTimeoutMs: 3_000,
      heartbeatIntervalMs: 60_000,
      dispatch: (event) => {
        this.events.push(event);
        for (const waiter of [...this.eventWaiters]) waiter();
      },
    });
    this.outcome = this.runner.run();
  }

  /** The state file as it is now. */
  read(): StateDocument {
    return JSON.parse(readFileSync(this.path, 'utf8')) as StateDocument;
  }

  /** qqbot's status in a document (the latest read when none is given). */
  qq(doc: StateDocument | undefined = this.states.at(-1)): PlatformStatus {
    const status = doc?.platforms.qqbot;
    if (status === undefined) throw new Error('no qqbot status in the state file yet');
    return status;
  }

  /** Number of state documents read so far: pass it as `from` to wait for later ones. */
  mark(): number {
    return this.states.length;
  }

  /**
   * Resolves with the first state document read at index >= `from` for which `predicate`
   * holds (documents already read count); rejects after `timeoutMs`.
   */
  waitForState(
    predicate: (doc: StateDocument) => boolean,
    what: string,
    options: { from?: number; timeoutMs?: number } = {},
  ): Promise<StateDocument> {
    const from = options.from ?? 0;
    const found = this.states.slice(from).find(predicate);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        const seen = this.states
          .slice(from)
          .map(
            (d) =>
              `${d.platforms.qqbot?.state}/${d.platforms.qqbot?.detail}/${d.platforms.qqbot?.last_error?.code ?? '-'}`,
          );
        reject(new Error(`timed out waiting for state: ${what}; seen: ${seen.join(', ')}`));
      }, options.timeoutMs ?? 5_000);
      const waiter: StateWaiter = {
        predicate,
        from,
        resolve: (doc) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(doc);
        },
      };
      this.waiters.add(waiter);
    });
  }

  /** Waits until qqbot is `connected` in a document read at index >= `from`. */
  connected(from = 0, timeoutMs = 5_000): Promise<StateDocument> {
    return this.waitForState((d) => d.platforms.qqbot?.state === 'connected', 'connected', {
      from,
      timeoutMs,
    });
  }

  /** Resolves once `count` events were emitted; rejects after `timeoutMs`. */
  waitForEvents(count: number, timeoutMs = 5_000): Promise<InboundEvent[]> {
    if (this.events.length >= count) return Promise.resolve(this.events.slice());
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.events.length < count) return;
        clearTimeout(timer);
        this.eventWaiters.delete(check);
        resolve(this.events.slice());
      };
      const timer = setTimeout(() => {
        this.eventWaiters.delete(check);
        reject(new Error(`timed out waiting for ${count} events (have ${this.events.length})`));
      }, timeoutMs);
      this.eventWaiters.add(check);
    });
  }

  /** Log lines with an error `code`. */
  codes(): string[] {
    return this.logs.lines.flatMap((l) => (typeof l.code === 'string' ? [l.code] : []));
  }

  /**
   * Resolves with the runner's outcome once the gateway has ended by itself (a fatal);
   * rejects after `timeoutMs`, so a gateway that keeps running fails the test by name.
   */
  finished(timeoutMs = 5_000): Promise<RunOutcome> {
    if (this.outcome === null) throw new Error('runner not started');
    return within(this.outcome, timeoutMs, 'the gateway to end (runner outcome)');
  }

  /** Stops the runner (if running) and resolves with its outcome. */
  async stop(): Promise<RunOutcome> {
    if (this.outcome === null) throw new Error('runner not started');
    this.runner.stop('test done');
    return this.outcome;
  }

  /** Stops everything the harness started; safe to call twice and after a failure. */
  async close(): Promise<void> {
    if (this.outcome !== null) {
      this.runner.stop('test cleanup');
      await this.outcome;
    }
    await this.fake.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  private notifier(): Notifier {
    const record = (): void => {
      let doc: StateDocument;
      try {
        doc = this.read();
      } catch {
        return;
      }
      this.states.push(doc);
      const index = this.states.length - 1;
      for (const waiter of [...this.waiters]) {
        if (index >= waiter.from && waiter.predicate(doc)) waiter.resolve(doc);
      }
    };
    return {
      enabled: false,
      watchdogPingMs: null,
      ready: record,
      status: record,
      watchdog: () => undefined,
      stopping: () => undefined,
    };
  }
}

function stripNulls(value: Json): Json {
  const out: Json = {};
  for (const [key, v] of Object.entries(value)) {
    if (v === null) continue;
    out[key] = isPlain(v) ? stripNulls(v) : v;
  }
  return out;
}

/** Runs `body` with a harness and always closes it. */
export async function withHarness(
  options: HarnessOptions,
  body: (h: QQHarness) => Promise<void>,
): Promise<void> {
  const harness = await QQHarness.start(options);
  try {
    await body(harness);
  } finally {
    await harness.close();
  }
}

/** The qqbot status of every document read, for compact assertions. */
export function trail(
  h: QQHarness,
  from = 0,
): Array<
  Pick<PlatformStatus, 'state' | 'detail'> & {
    code: string | null;
    attempt: number;
    resumable: boolean;
  }
> {
  return h.states.slice(from).map((d) => {
    const q = d.platforms.qqbot!;
    return {
      state: q.state,
      detail: q.detail,
      code: q.last_error?.code ?? null,
      attempt: q.reconnect_attempt,
      resumable: q.resumable,
    };
  });
}
