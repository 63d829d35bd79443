/**
 * The Discord adapter in-process, the real way: the fake Discord (gateway + REST) on loopback,
 * the adapter built from a config that went through the real zod schema, the real Runner and
 * StateStore writing gateway_state.json into a temp dir; every persisted document is read back.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InboundEvent } from '../../../src/adapters/contract.js';
import { DiscordAdapter } from '../../../src/adapters/discord/adapter.js';
import { discordSchema, toSettings } from '../../../src/adapters/discord/config.js';
import { Secret } from '../../../src/config/secret.js';
import { FakeDiscordServer, type FakeDiscordOptions } from '../../../src/fakes/discord/index.js';
import { Runner, type RunOutcome } from '../../../src/runner/runner.js';
import type { PlatformStatus, StateDocument } from '../../../src/state/schema.js';
import { StateStore } from '../../../src/state/store.js';
import type { Notifier } from '../../../src/systemd/notify.js';
import { captureLogger, type CapturedLog } from '../../support/capture.js';
import { within } from '../../support/deadline.js';
import { merge, type Json } from '../qqbot/harness.js';

export const TEST_HEARTBEAT_MS = 200;

/** `platforms.discord` for a fake, with tiny test timings; `overrides` merged in deeply. */
export function testConfig(fake: FakeDiscordServer, overrides: Json = {}): Json {
  return merge(
    {
      enabled: true,
      token: new Secret(fake.settings.token),
      api_base: fake.apiBase,
      reconnect: {
        backoff_ms: [20, 40],
        max_attempts: 5,
        healthy_after_ms: 10_000,
        rate_limited_wait_ms: 300,
        invalid_session_wait_ms: [10, 30],
        identify_interval_ms: 60,
      },
      timeouts: {
        connect_ms: 1_000,
        hello_ms: 1_000,
        ready_ms: 1_000,
        rest_ms: 1_000,
        close_ms: 200,
      },
      send: { retry_delay_ms: 20, max_retry_delay_ms: 2_000 },
      jitter: false,
    },
    overrides,
  );
}

export interface HarnessOptions {
  fake?: FakeDiscordOptions;
  config?: Json;
  start?: boolean;
}

export class DiscordHarness {
  readonly states: StateDocument[] = [];
  readonly events: InboundEvent[] = [];
  readonly logs: CapturedLog = captureLogger('debug');
  runner!: Runner;
  adapter!: DiscordAdapter;
  outcome: Promise<RunOutcome> | null = null;
  private readonly watchers = new Set<() => void>();

  private constructor(
    readonly fake: FakeDiscordServer,
    readonly dir: string,
    readonly config: Json,
  ) {}

  static async start(options: HarnessOptions = {}): Promise<DiscordHarness> {
    const fake = await FakeDiscordServer.start({
      heartbeatIntervalMs: TEST_HEARTBEAT_MS,
      identifyWindowMs: 50,
      ...options.fake,
    });
    const dir = await mkdtemp(join(tmpdir(), 'hgw-discord-'));
    const h = new DiscordHarness(fake, dir, testConfig(fake, options.config));
    if (options.start !== false) h.startRunner();
    return h;
  }

  get path(): string {
    return join(this.dir, 'gateway_state.json');
  }

  startRunner(): void {
    const config = discordSchema.parse(this.config);
    this.adapter = new DiscordAdapter(toSettings(config));
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
      dispatch: (event) => {
        this.events.push(event);
        this.poke();
      },
    });
    this.outcome = this.runner.run();
  }

  /** discord's status in a document (the latest read when none is given). */
  status(doc: StateDocument | undefined = this.states.at(-1)): PlatformStatus {
    const s = doc?.platforms.discord;
    if (s === undefined) throw new Error('no discord status in the state file yet');
    return s;
  }

  /** The state file as it is now. */
  read(): StateDocument {
    return JSON.parse(readFileSync(this.path, 'utf8')) as StateDocument;
  }

  mark(): number {
    return this.states.length;
  }

  /** Resolves once `predicate` holds (re-checked on every state write and event). */
  until(predicate: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.watchers.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.watchers.delete(check);
        const seen = this.states
          .slice(-8)
          .map(
            (d) =>
              `${d.platforms.discord?.state}/${d.platforms.discord?.detail}/${d.platforms.discord?.last_error?.code ?? '-'}`,
          );
        reject(new Error(`timed out waiting for ${what}; last states: ${seen.join(', ')}`));
      }, timeoutMs);
      this.watchers.add(check);
    });
  }

  /** The first state document at index >= `from` for which `predicate` holds. */
  async waitForState(
    predicate: (s: PlatformStatus, doc: StateDocument) => boolean,
    what: string,
    from = 0,
    timeoutMs = 5_000,
  ): Promise<StateDocument> {
    const find = (): StateDocument | undefined =>
      this.states
        .slice(from)
        .find((d) => d.platforms.discord !== undefined && predicate(d.platforms.discord, d));
    await this.until(() => find() !== undefined, what, timeoutMs);
    return find()!;
  }

  connected(from = 0, timeoutMs = 5_000): Promise<StateDocument> {
    return this.waitForState((s) => s.state === 'connected', 'connected', from, timeoutMs);
  }

  waitForEvents(count: number, timeoutMs = 5_000): Promise<InboundEvent[]> {
    return this.until(() => this.events.length >= count, `${count} events`, timeoutMs).then(() =>
      this.events.slice(),
    );
  }

  codes(): string[] {
    return this.logs.lines.flatMap((l) => (typeof l.code === 'string' ? [l.code] : []));
  }

  finished(timeoutMs = 5_000): Promise<RunOutcome> {
    if (this.outcome === null) throw new Error('runner not started');
    return within(this.outcome, timeoutMs, 'the gateway to end (runner outcome)');
  }

  async stop(): Promise<RunOutcome> {
    if (this.outcome === null) throw new Error('runner not started');
    this.runner.stop('test done');
    return this.outcome;
  }

  async close(): Promise<void> {
    if (this.outcome !== null) {
      this.runner.stop('test cleanup');
      await this.outcome;
    }
    await this.fake.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  private poke(): void {
    for (const w of [...this.watchers]) w();
  }

  private notifier(): Notifier {
    const record = (): void => {
      try {
        this.states.push(JSON.parse(readFileSync(this.path, 'utf8')) as StateDocument);
      } catch {
        return;
      }
      this.poke();
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

export async function withHarness(
  options: HarnessOptions,
  body: (h: DiscordHarness) => Promise<void>,
): Promise<void> {
  const h = await DiscordHarness.start(options);
  try {
    await body(h);
  } finally {
    await h.close();
  }
}
