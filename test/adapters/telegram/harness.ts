/**
 * The Telegram adapter in-process, the real way: the fake Bot API server on loopback, the
 * adapter built from a config that went through the real zod schema, the real Runner and
 * StateStore writing gateway_state.json into a temp dir. After every persisted transition the
 * harness reads the real file back, so tests assert on what an operator saw at each step.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InboundEvent } from '../../../src/adapters/contract.js';
import { TelegramAdapter } from '../../../src/adapters/telegram/adapter.js';
import { telegramSchema, toSettings } from '../../../src/adapters/telegram/config.js';
import { Secret } from '../../../src/config/secret.js';
import { Runner, type RunOutcome } from '../../../src/runner/runner.js';
import type { PlatformStatus, StateDocument } from '../../../src/state/schema.js';
import { StateStore } from '../../../src/state/store.js';
import type { DeliveryStore } from '../../../src/delivery/store.js';
import type { Notifier } from '../../../src/systemd/notify.js';
import {
  FakeTelegramServer,
  type FakeTelegramOptions,
} from '../../../src/fakes/telegram/server.js';
import { captureLogger, type CapturedLog } from '../../support/capture.js';
import { merge, type Json } from '../qqbot/harness.js';

export type { Json };

/** `platforms.telegram` for a fake, with tiny test timings; `overrides` are merged in deeply. */
export function testConfig(fake: FakeTelegramServer, overrides: Json = {}): Json {
  return merge(
    {
      enabled: true,
      token: new Secret(fake.token),
      api_base: fake.apiBase,
      polling: { timeout_s: 1 },
      reconnect: { backoff_ms: [20, 40], max_attempts: 5, healthy_after_ms: 10_000 },
      timeouts: { rest_ms: 1_000, poll_slack_ms: 500 },
      send: {
        retry_delay_ms: 20,
        max_retry_after_ms: 3_000,
        private_interval_ms: 0,
        group_interval_ms: 0,
        global_interval_ms: 0,
      },
      jitter: false,
    },
    overrides,
  );
}

export interface HarnessOptions {
  fake?: FakeTelegramOptions;
  config?: Json;
  /** Start the runner (default true); false to script the fake first. */
  start?: boolean;
  /**
   * Events stay unhandled until `handle()` (the pipeline's `done`); by default each is handled
   * as soon as it is dispatched.
   */
  hold?: boolean;
  /** The delivery store the runner gives the adapter (resume point, handled watermark). */
  delivery?: DeliveryStore;
}

/** One fake, one adapter, one runner, one state file. */
export class TelegramHarness {
  readonly states: StateDocument[] = [];
  readonly events: InboundEvent[] = [];
  readonly logs: CapturedLog = captureLogger('debug');
  runner!: Runner;
  adapter!: TelegramAdapter;
  outcome: Promise<RunOutcome> | null = null;
  private readonly waiters = new Set<() => void>();
  /** `done` of events not handled yet (hold), by event id. */
  readonly unhandled = new Map<string, () => void>();
  hold = false;
  delivery: DeliveryStore | null = null;

  private constructor(
    readonly fake: FakeTelegramServer,
    readonly dir: string,
    readonly path: string,
    readonly config: Json,
  ) {}

  static async start(options: HarnessOptions = {}): Promise<TelegramHarness> {
    const fake = await FakeTelegramServer.start(options.fake);
    const dir = await mkdtemp(join(tmpdir(), 'hgw-tg-'));
    const h = new TelegramHarness(
      fake,
      dir,
      join(dir, 'gateway_state.json'),
      testConfig(fake, options.config),
    );
    h.hold = options.hold ?? false;
    h.delivery = options.delivery ?? null;
    if (options.start !== false) h.startRunner();
    return h;
  }

  startRunner(): void {
    this.adapter = new TelegramAdapter(toSettings(telegramSchema.parse(this.config)), 'telegram');
    const store = new StateStore({
      path: this.path,
      heartbeatIntervalMs: 60_000,
      log: this.logs.log,
    });
    this.runner = new Runner({
      adapters: [this.adapter],
      store,
      log: this.logs.log,
      notifier: this.notifier(),
      shutdownTimeoutMs: 3_000,
      heartbeatIntervalMs: 60_000,
      dispatch: (event, done) => {
        this.events.push(event);
        if (this.hold && done !== undefined) this.unhandled.set(event.id, done);
        else done?.();
        this.wake();
      },
      delivery: this.delivery,
    });
    // The final write (fatal, stopped) is not announced to the notifier: read it at the end.
    this.outcome = this.runner.run().then((outcome) => {
      this.record();
      return outcome;
    });
  }

  /** Marks held events handled (all when `ids` is not given), as the pipeline would. */
  handle(ids: string[] = [...this.unhandled.keys()]): void {
    for (const id of ids) {
      const done = this.unhandled.get(id);
      this.unhandled.delete(id);
      done?.();
    }
  }

  /** telegram's status in a document (the latest read when none is given). */
  tg(doc: StateDocument | undefined = this.states.at(-1)): PlatformStatus {
    const status = doc?.platforms.telegram;
    if (status === undefined) throw new Error('no telegram status in the state file yet');
    return status;
  }

  /** Resolves with the first document at index >= `from` for which `predicate` holds. */
  waitForState(
    predicate: (s: PlatformStatus) => boolean,
    what: string,
    options: { from?: number; timeoutMs?: number } = {},
  ): Promise<StateDocument> {
    return this.until(
      () =>
        this.states
          .slice(options.from ?? 0)
          .find((d) => d.platforms.telegram !== undefined && predicate(d.platforms.telegram)),
      () =>
        `state: ${what}; seen: ${trail(this, options.from ?? 0)
          .map((t) => `${t.state}/${t.detail}/${t.code ?? '-'}`)
          .join(', ')}`,
      options.timeoutMs ?? 5_000,
    );
  }

  connected(from = 0, timeoutMs = 5_000): Promise<StateDocument> {
    return this.waitForState((s) => s.state === 'connected', 'connected', { from, timeoutMs });
  }

  waitForEvents(count: number, timeoutMs = 5_000): Promise<InboundEvent[]> {
    return this.until(
      () => (this.events.length >= count ? this.events.slice() : undefined),
      () => `${count} events (have ${this.events.length})`,
      timeoutMs,
    );
  }

  /** Resolves once a log line satisfies `predicate` (checked every 10 ms). */
  async waitForLog(
    predicate: (line: CapturedLog['lines'][number]) => boolean,
    what: string,
    timeoutMs = 5_000,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.logs.lines.some(predicate)) {
      if (Date.now() > deadline)
        throw new Error(`timed out after ${timeoutMs} ms waiting for log: ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Log lines with an error `code` at `level` or above (40 = warn). */
  codes(level = 0): string[] {
    return this.logs.lines.flatMap((l) =>
      typeof l.code === 'string' && l.level >= level ? [l.code] : [],
    );
  }

  /** The runner's outcome, or a rejection naming what was awaited after `timeoutMs`. */
  finished(what: string, timeoutMs = 8_000): Promise<RunOutcome> {
    if (this.outcome === null) throw new Error('runner not started');
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
        timeoutMs,
      );
    });
    return Promise.race([this.outcome, deadline]).finally(() => clearTimeout(timer));
  }

  stop(): Promise<RunOutcome> {
    if (this.outcome === null) throw new Error('runner not started');
    this.runner.stop('test done');
    return this.outcome;
  }

  /** Stops everything; the fake's close() rejects when the adapter broke the protocol. */
  async close(): Promise<void> {
    try {
      if (this.outcome !== null) {
        this.runner.stop('test cleanup');
        await this.outcome;
      }
    } finally {
      await rm(this.dir, { recursive: true, force: true });
      await this.fake.close();
    }
  }

  /** Waits until `probe` returns a value (checked after every state write and event). */
  private until<T>(probe: () => T | undefined, what: () => string, timeoutMs: number): Promise<T> {
    const found = probe();
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const value = probe();
        if (value === undefined) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(value);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private record(): void {
    let doc: StateDocument;
    try {
      doc = JSON.parse(readFileSync(this.path, 'utf8')) as StateDocument;
    } catch {
      return;
    }
    const last = this.states.at(-1);
    if (last !== undefined && last.write_seq === doc.write_seq) return;
    this.states.push(doc);
    this.wake();
  }

  private notifier(): Notifier {
    const record = (): void => this.record();
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

export async function withHarness(
  options: HarnessOptions,
  body: (h: TelegramHarness) => Promise<void>,
): Promise<void> {
  const h = await TelegramHarness.start(options);
  try {
    await body(h);
  } finally {
    await h.close();
  }
}

/** The telegram status of every document read from `from` on, for compact assertions. */
export function trail(
  h: TelegramHarness,
  from = 0,
): Array<{ state: string; detail: string | null; code: string | null; attempt: number }> {
  return h.states.slice(from).flatMap((d) => {
    const t = d.platforms.telegram;
    return t === undefined
      ? []
      : [
          {
            state: t.state,
            detail: t.detail,
            code: t.last_error?.code ?? null,
            attempt: t.reconnect_attempt,
          },
        ];
  });
}
