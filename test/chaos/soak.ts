/**
 * The chaos soak (GitHub issue 6): the built gateway CLI, as a real child process with the
 * echo handler, against the fake QQ server in this process (and the Telegram, Discord and QQ
 * webhook instances' fakes: telegram-lane.ts, discord-lane.ts, qq-webhook-lane.ts), while a seeded schedule injects
 * a fault every few hundred milliseconds and messages flow in continuously. Invariants are
 * checked as the run goes; `runSoak` resolves with the summary (violations included) and
 * leaves nothing behind: the gateway is killed, the fake closed, every timer cleared.
 */
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { stringify } from 'yaml';
import type { StateDocument } from '../../src/state/schema.js';
import { FakeQQServer, payloads, type SendRecord } from '../../src/fakes/qq/index.js';
import { GatewayProcess, type LogLine, type ProcessExit } from './gateway-process.js';
import { DeliveryLedger, type LedgerStats, type ProcessEnd } from './ledger.js';
import { Rng } from './prng.js';
import {
  DEFAULT_SCHEDULE,
  RESTART_KINDS,
  buildSchedule,
  countKinds,
  type Fault,
  type PlannedFault,
  type DiscordFault,
  type TelegramFault,
  type WebhookFault,
} from './schedule.js';
import {
  ConnectionTruth,
  StateFileWatcher,
  type TruthBounds,
  type TruthStats,
} from './state-truth.js';
import { sandboxEnv } from '../support/spawn-gateway.js';
import { DiscordLane, DC_BUG_CODES, DC_TIMINGS, type DcStats } from './discord-lane.js';
import { StallMeter } from './stall.js';
import { TelegramLane, TG_BUG_CODES, type TgStats } from './telegram-lane.js';
import { WebhookLane, WH_BUG_CODES, WH_INSTANCE, type WhStats } from './qq-webhook-lane.js';
import { Violations, formatRunTime, type Violation } from './violations.js';

export interface SoakOptions {
  seed: number;
  durationMs: number;
  /** Faults stop this long before the end; the adapter must be connected again quickly. */
  quietMs: number;
  /** heartbeat_interval the fake announces in Hello. */
  heartbeatMs: number;
  rssLimitMb: number;
  /** The built CLI: dist/src/cli/main.js. */
  cliPath: string;
  /** Keep the temporary directory (config, state file, gateway logs) for a post-mortem. */
  keepDir: boolean;
  /**
   * Where the state file lives. Default: a tmpfs (/dev/shm) when there is one, so that the
   * disk's fsync latency (spikes of 100 ms and more on a shared VM) is not taken for the
   * gateway's; `disk` puts it in the temporary directory like any other file.
   */
  stateOn: 'tmpfs' | 'disk';
  /** Progress lines (stderr in the CLI). */
  progress: (line: string) => void;
}

/** The gateway's timings: tiny, so that many faults fit in a short run. */
export const GATEWAY_TIMINGS = {
  backoffMs: [20, 40, 80, 160],
  maxAttempts: 1_000_000,
  healthyAfterMs: 1_000,
  rateLimitedWaitMs: 200,
  maxResumeFailures: 2,
  connectMs: 400,
  helloMs: 400,
  readyMs: 400,
  heartbeatAckMs: 100,
  restMs: 400,
  tokenMs: 400,
  closeMs: 200,
  maxPayloadBytes: 64 * 1024,
  tokenRefreshMarginMs: 8_000,
  sendMaxAttempts: 4,
  sendRetryDelayMs: 20,
  sendMaxRetryDelayMs: 1_000,
  sendTimeoutMs: 5_000,
  shutdownTimeoutMs: 2_000,
  stateHeartbeatMs: 1_000,
} as const;

/**
 * The Discord fake's heartbeat interval, as a multiple of QQ's: long enough that a zombie
 * verdict late by a fraction of the interval stands out from the machine's stalls (at 200 ms,
 * 0.4 × the interval is 80 ms: within the stall credit a loaded machine earns).
 */
const DC_HEARTBEAT_FACTOR = 2.5;

/** The fake's token lifetime: the background refresh runs a few times per run. */
const TOKEN_TTL_SEC = 20;
const TOKEN_RENEW_WINDOW_SEC = 10;

/**
 * The bot's app id, new per run: the credential lock is machine-wide, so two soaks at once
 * (a test and a manual run) must not claim one credential. Not drawn from the seed: it
 * changes nothing the gateway does.
 */
const APP_ID = String(randomInt(100_000_000, 1_000_000_000));
const CLIENT_SECRET = 'chaos-secret-5f1d2c3b4a';
const USERS = [
  'C4A05B6E2D1F47A8B9C0D1E2F3A4B5C6',
  '7E8F9A0B1C2D3E4F5A6B7C8D9E0F1A2B',
  'A1B2C3D4E5F60718293A4B5C6D7E8F90',
  '0F1E2D3C4B5A69788796A5B4C3D2E1F0',
];

/** Log codes that mean a bug in the gateway whenever they appear. */
const BUG_CODES = new Set([
  'GW_ERR_UNCAUGHT_EXCEPTION',
  'GW_ERR_UNHANDLED_REJECTION',
  'GW_ERR_INTERNAL',
  'GW_ERR_BACKGROUND_TASK',
  'GW_ERR_ADAPTER_RETURNED',
  'GW_ERR_ADAPTER_FAILED',
  'GW_ERR_STATE_WRITE',
  'GW_ERR_STOP_TIMEOUT',
  'GW_ERR_QQ_RECONNECT_EXHAUSTED',
  'GW_ERR_QQ_PROTOCOL_ERROR',
  ...TG_BUG_CODES,
  ...DC_BUG_CODES,
  ...WH_BUG_CODES,
]);

export interface Bounds extends TruthBounds {
  /** Faults stopped → connected again: the longest wait plus a handshake (see below). */
  recoveryMs: number;
  /** Not connected and not one request from the client for this long: a dead adapter. */
  livenessMs: number;
  /** A fatal close (or rejected credentials) → the process has exited (DESIGN §9). */
  fatalExitMs: number;
  /** The state file says fatal/stopped while the process still runs, at most this long. */
  deadAdapterMs: number;
  /** A frame the client must survive: no disconnect by the client this soon after it. */
  surviveMs: number;
}

export function boundsFor(heartbeatMs: number): Bounds {
  const t = GATEWAY_TIMINGS;
  const longestWait = Math.max(...t.backoffMs, t.rateLimitedWaitMs);
  const longestRequest = Math.max(t.tokenMs, t.restMs, t.connectMs, t.helloMs, t.readyMs);
  // DESIGN §9: a silent link is declared dead within 1.5 × the heartbeat interval; the state
  // write that follows gets the same allowance as a close (tens of ms with fsync).
  const silentMs = Math.round(1.5 * heartbeatMs) + 50;
  const handshakeMs = 300;
  return {
    upMs: 100,
    closeMs: 100,
    silentMs,
    // The last fault may leave a half-open link to detect and a request hanging to its
    // timeout; then the longest backoff step and one handshake.
    recoveryMs: silentMs + longestRequest + longestWait + handshakeMs,
    livenessMs: longestWait + longestRequest + 500,
    fatalExitMs: 1_000,
    deadAdapterMs: 1_000,
    surviveMs: 3 * heartbeatMs,
  };
}

interface ProcessRecord {
  pid: number;
  startedAt: number;
  /** VmRSS (MB) 5 s into its life, and the latest sample. */
  rssEarlyMb: number | null;
  rssLastMb: number | null;
  end: { at: number; how: ProcessEnd; code: number | null; signal: string | null } | null;
  cause: string;
}

interface ExpectedExit {
  how: 'fatal' | 'kill9';
  at: number;
  /** StallMeter reading at `at`. */
  stall0: number;
  what: string;
  /** The code the state file's last_error must carry (fatal only). */
  errorCode: string | null;
}

export interface SoakSummary {
  chaos_summary: true;
  ok: boolean;
  aborted: boolean;
  seed: number;
  duration_ms: number;
  quiet_ms: number;
  heartbeat_interval_ms: number;
  state_file_on: string;
  /** Whether machine stall (PSI) could be measured and credited to timing bounds. */
  stall_credit: boolean;
  bounds: Bounds;
  faults: {
    planned: Record<string, number>;
    injected: Record<string, number>;
    skipped: Record<string, number>;
    detail: Record<string, number>;
  };
  recoveries: {
    resumes_accepted: number;
    resumes_refused: number;
    identifies_accepted: number;
    reconnects_by_action: Record<string, number>;
    reconnects_by_code: Record<string, number>;
  };
  restarts: { total: number; by_cause: Record<string, number> };
  events: LedgerStats & { no_session: number };
  /** Redeliveries dropped by the pipeline's dedupe window (`duplicate event dropped`). */
  duplicates_dropped: number;
  state_file: TruthStats & { reads: number; last_write_seq: number; max_poll_gap_ms: number };
  recovery_after_quiet_ms: number | null;
  max_fatal_exit_ms: number | null;
  rss_max_mb: number;
  /** The longest-lived gateway process: its RSS 5 s into its life and at its end (leak watch). */
  rss_longest_lived: { pid: number; lived_s: number; early_mb: number; last_mb: number } | null;
  log_codes: Record<string, number>;
  fake_violations: number;
  /** The Telegram instance beside QQ (telegram-lane.ts). */
  telegram: TgStats | null;
  /** The Discord instance beside them (discord-lane.ts). */
  discord: DcStats | null;
  /** The QQ webhook instance beside them (qq-webhook-lane.ts). */
  webhook: WhStats | null;
  violations: { count: number; by_invariant: Record<string, number>; first: Violation[] };
}

export async function runSoak(options: SoakOptions, signal: AbortSignal): Promise<SoakSummary> {
  const soak = new Soak(options, signal);
  try {
    await soak.run();
  } catch (err) {
    if (!signal.aborted) soak.violations.add('harness', `chaos harness error: ${describe(err)}`);
  } finally {
    await soak.cleanup();
  }
  return soak.summary();
}

class Soak {
  readonly violations: Violations;
  private readonly t0 = Date.now();
  private readonly bounds: Bounds;
  private readonly faultRng: Rng;
  private readonly messageRng: Rng;
  private readonly restartRng: Rng;
  private fake: FakeQQServer | null = null;
  private tg: TelegramLane | null = null;
  private readonly tgRng: Rng;
  private dc: DiscordLane | null = null;
  private readonly dcRng: Rng;
  private wh: WebhookLane | null = null;
  private readonly whRng: Rng;
  private dir = '';
  private stateDir = '';
  private statePath = '';
  private configPath = '';
  private env: NodeJS.ProcessEnv = {};
  private watcher: StateFileWatcher | null = null;
  private readonly truth: ConnectionTruth;
  private readonly stall: StallMeter;
  private readonly ledger: DeliveryLedger;
  private gateway: GatewayProcess | null = null;
  private readonly processes: ProcessRecord[] = [];
  private readonly exits = new Set<Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly intervals: NodeJS.Timeout[] = [];
  private plan: PlannedFault[] = [];
  private expectedExit: ExpectedExit | null = null;
  private finalStop = false;
  private restartCause = 'initial start';
  /** token_rejected in force: lifted when the gateway has exited. */
  private credentialsRevoked = false;
  private firstReadyAt: number | null = null;
  private quietAt: number | null = null;
  private recoveredAt: number | null = null;
  private deliveryIndex = 0;
  private readonly openConns = new Set<number>();
  private readonly mustSurvive = new Map<number, { until: number; what: string }>();
  /** Connections a link fault was injected on (a fatal close needs a clean one). */
  private readonly faulted = new Set<number>();
  private lastActivity = Date.now();
  private lastActivityStall = 0;
  private livenessReported = false;
  private deadSince: { at: number; stall0: number } | null = null;
  private deadReported = false;
  private staleHeartbeatReported = false;
  private msgCount = 0;
  private noSession = 0;
  private epochMessages: { msgId: string; d: payloads.C2CMessage }[] = [];
  private rssMax = 0;
  private readonly fatalExitMs: number[] = [];
  private lastProgress = 0;
  /** With keepDir: a timeline of what the harness did and saw, written at cleanup. */
  private readonly traceLines: string[] = [];
  private readonly gatewayLogs = new Map<number, string[]>();
  // Counters for the summary.
  private readonly injected: Record<string, number> = {};
  private readonly skipped: Record<string, number> = {};
  private readonly detail: Record<string, number> = {};
  private readonly restartsBy: Record<string, number> = {};
  private readonly logCodes: Record<string, number> = {};
  private readonly reconnectsByAction: Record<string, number> = {};
  private readonly reconnectsByCode: Record<string, number> = {};
  private duplicatesDropped = 0;
  private resumesAccepted = 0;
  private resumesRefused = 0;
  private identifiesAccepted = 0;
  private fakeViolations = 0;

  constructor(
    private readonly options: SoakOptions,
    private readonly signal: AbortSignal,
  ) {
    this.violations = new Violations(() => Date.now() - this.t0);
    this.violations.onAdd = (v) => this.trace(`VIOLATION [${v.invariant}] ${v.detail}`);
    this.bounds = boundsFor(options.heartbeatMs);
    const rng = new Rng(options.seed);
    this.faultRng = rng.fork('faults');
    this.messageRng = rng.fork('messages');
    this.restartRng = rng.fork('restarts');
    this.tgRng = rng.fork('telegram');
    this.dcRng = rng.fork('discord');
    this.whRng = rng.fork('webhook');
    const runTime = (epochMs: number): number => epochMs - this.t0;
    this.stall = new StallMeter(options.stateOn === 'disk');
    this.truth = new ConnectionTruth(this.violations, this.bounds, runTime, () =>
      this.stall.read(),
    );
    this.ledger = new DeliveryLedger(this.violations, runTime, 8_000);
  }

  private get livePid(): number | null {
    return this.gateway?.alive === true ? this.gateway.pid : null;
  }

  private now(): number {
    return Date.now() - this.t0;
  }

  private trace(text: string): void {
    if (this.options.keepDir) this.traceLines.push(`${formatRunTime(this.now())} ${text}`);
  }

  // ---- the run ---------------------------------------------------------------------------

  async run(): Promise<void> {
    const { options } = this;
    this.fake = await FakeQQServer.start({
      appId: APP_ID,
      clientSecret: CLIENT_SECRET,
      heartbeatIntervalMs: options.heartbeatMs,
      tokenTtlSec: TOKEN_TTL_SEC,
      renewWindowSec: TOKEN_RENEW_WINDOW_SEC,
    });
    this.wireFake(this.fake);
    this.tg = await TelegramLane.start(
      this.violations,
      (epochMs) => epochMs - this.t0,
      () => this.stall.read(),
      () => this.livePid,
    );
    this.dc = await DiscordLane.start(
      Math.round(options.heartbeatMs * DC_HEARTBEAT_FACTOR),
      this.violations,
      (epochMs) => epochMs - this.t0,
      () => this.stall.read(),
      () => this.livePid,
    );
    this.wh = await WebhookLane.start(
      this.violations,
      (epochMs) => epochMs - this.t0,
      () => this.stall.read(),
      () => this.livePid,
      () => this.watcher?.last?.doc,
    );
    await this.writeConfig(this.fake, this.tg, this.dc, this.wh);
    const tgToken = this.tg.fake.token;
    const dcToken = this.dc.token;
    const wh = this.wh;
    this.watcher = new StateFileWatcher(this.statePath, this.violations, () => [
      CLIENT_SECRET,
      this.fake?.currentToken ?? '',
      tgToken,
      dcToken,
      ...wh.secrets(),
    ]);
    this.intervals.push(setInterval(() => this.poll(), 10));
    this.intervals.push(setInterval(() => this.tick(), 100));
    this.startGateway();

    const firstReadyBy = Date.now() + 15_000;
    while (this.firstReadyAt === null) {
      if (Date.now() > firstReadyBy) {
        throw new Error('the gateway did not connect to the fake within 15 s');
      }
      await delay(10, undefined, { signal: this.signal });
    }

    const faultStart = this.firstReadyAt - this.t0 + 500;
    const faultEnd = options.durationMs - options.quietMs;
    this.plan = buildSchedule(this.faultRng, {
      ...DEFAULT_SCHEDULE,
      startMs: faultStart,
      endMs: faultEnd,
      maxPayloadBytes: GATEWAY_TIMINGS.maxPayloadBytes,
    });
    options.progress(
      `seed ${options.seed}: ${this.plan.length} faults planned over ${((faultEnd - faultStart) / 1000).toFixed(1)} s, then ${options.quietMs / 1000} s quiet`,
    );
    await Promise.all([
      this.faultLoop(),
      this.messageLoop(),
      this.telegramLoop(),
      this.discordLoop(),
      this.webhookLoop(),
      this.quietLoop(),
    ]);
    await this.sleepUntil(options.durationMs);
    await this.drain();
    await this.stopGateway();
    this.finalChecks();
  }

  async cleanup(): Promise<void> {
    for (const interval of this.intervals) clearInterval(interval);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const gateway = this.gateway;
    if (gateway?.alive) {
      this.finalStop = true;
      gateway.signal('SIGCONT');
      gateway.signal('SIGKILL');
      await Promise.race([gateway.exited, delay(3_000)]);
    }
    await Promise.race([Promise.allSettled([...this.exits]), delay(3_000)]);
    if (this.fake !== null) await this.fake.close();
    await this.tg?.close();
    await this.dc?.close();
    await this.wh?.close();
    if (this.stateDir.startsWith('/dev/shm/')) {
      await rm(this.stateDir, { recursive: true, force: true });
    }
    if (this.dir !== '') {
      if (this.options.keepDir) {
        await writeFile(join(this.dir, 'chaos-trace.log'), this.traceLines.join('\n') + '\n');
        for (const [pid, lines] of this.gatewayLogs) {
          await writeFile(join(this.dir, `gateway-${pid}.log`), lines.join('\n') + '\n');
        }
        this.options.progress(`kept ${this.dir}`);
      } else await rm(this.dir, { recursive: true, force: true });
    }
  }

  // ---- setup -------------------------------------------------------------------------------

  private async writeConfig(
    fake: FakeQQServer,
    tg: TelegramLane,
    dc: DiscordLane,
    wh: WebhookLane,
  ): Promise<void> {
    const t = GATEWAY_TIMINGS;
    this.dir = await mkdtemp(join(tmpdir(), 'hermes-chaos-'));
    this.stateDir =
      this.options.stateOn === 'tmpfs' && existsSync('/dev/shm')
        ? await mkdtemp('/dev/shm/hermes-chaos-state-')
        : join(this.dir, 'state');
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    this.statePath = join(this.stateDir, 'gateway_state.json');
    this.configPath = join(this.dir, 'config.yaml');
    const config = {
      state_file: this.statePath,
      log_level: 'debug',
      shutdown_timeout_ms: t.shutdownTimeoutMs,
      heartbeat_interval_ms: t.stateHeartbeatMs,
      handler: { type: 'echo', send_timeout_ms: t.sendTimeoutMs },
      platforms: {
        qqbot: {
          enabled: true,
          app_id: APP_ID,
          client_secret: '${CHAOS_QQ_SECRET}',
          token_url: fake.tokenUrl,
          api_base: fake.apiBase,
          reconnect: {
            backoff_ms: [...t.backoffMs],
            max_attempts: t.maxAttempts,
            healthy_after_ms: t.healthyAfterMs,
            rate_limited_wait_ms: t.rateLimitedWaitMs,
            max_resume_failures: t.maxResumeFailures,
          },
          timeouts: {
            connect_ms: t.connectMs,
            hello_ms: t.helloMs,
            ready_ms: t.readyMs,
            heartbeat_ack_ms: t.heartbeatAckMs,
            rest_ms: t.restMs,
            token_ms: t.tokenMs,
            close_ms: t.closeMs,
          },
          max_payload_bytes: t.maxPayloadBytes,
          token_refresh_margin_ms: t.tokenRefreshMarginMs,
          send: {
            max_attempts: t.sendMaxAttempts,
            retry_delay_ms: t.sendRetryDelayMs,
            max_retry_delay_ms: t.sendMaxRetryDelayMs,
          },
        },
        telegram: tg.config(),
        discord: dc.config(),
        [WH_INSTANCE]: wh.config(),
      },
    };
    await writeFile(this.configPath, stringify(config), { mode: 0o600 });
    const env = sandboxEnv(this.dir, {
      CHAOS_QQ_SECRET: CLIENT_SECRET,
      ...tg.env,
      ...dc.env,
      ...wh.env,
    });
    this.env = env;
  }

  private wireFake(fake: FakeQQServer): void {
    const activity = (): void => {
      this.lastActivity = Date.now();
      this.lastActivityStall = this.stall.read();
      this.livenessReported = false;
    };
    fake.on('connection', (r) => {
      this.trace(`fake: connection ${r.connectionId} opened`);
      this.openConns.add(r.connectionId);
      activity();
    });
    fake.on('frame', activity);
    fake.on('token', (r) => {
      activity();
      if (r.outcome === 'bad_credentials' && this.expectedExit === null && this.livePid !== null) {
        this.expectedExit = {
          how: 'fatal',
          at: r.at,
          stall0: this.stall.read(),
          what: 'credentials rejected',
          errorCode: 'GW_ERR_QQ_CREDENTIALS_REJECTED',
        };
      }
    });
    fake.on('gateway', activity);
    fake.on('disconnect', (r) => {
      this.trace(`fake: connection ${r.connectionId} closed ${r.code} by ${r.by}`);
      activity();
      this.openConns.delete(r.connectionId);
      const survive = this.mustSurvive.get(r.connectionId);
      this.mustSurvive.delete(r.connectionId);
      if (
        survive !== undefined &&
        r.by === 'client' &&
        r.at < survive.until &&
        this.livePid !== null
      ) {
        this.violations.add(
          'robustness',
          `the client closed connection ${r.connectionId} (code ${r.code}) ${r.at - (survive.until - this.bounds.surviveMs)} ms after ${survive.what}, which it should have dropped and survived`,
        );
      }
      if (this.recoveredAt !== null && !this.finalStop && r.connectionId === this.truth.upConn) {
        this.violations.add(
          'recovery',
          `connection ${r.connectionId} closed (code ${r.code} by ${r.by}) during the quiet period, with no fault injected`,
        );
      }
      this.truth.down(
        r.connectionId,
        r.at,
        `connection closed (${r.code} by ${r.by})`,
        this.bounds.closeMs,
      );
    });
    // When the Identify/Resume that READY/RESUMED answers arrived: the fake stamps it before
    // writing the answer, so a `since` in the state file can never precede it (the 'ready'
    // event itself may reach us a few ms after the frame left, on a busy machine).
    const authAt = new Map<number, number>();
    const up = (what: string) => (r: { connectionId: number }) => {
      const pid = this.livePid;
      if (pid === null) return;
      this.firstReadyAt ??= Date.now();
      this.trace(`fake: ${what} sent on connection ${r.connectionId}`);
      this.truth.up(r.connectionId, authAt.get(r.connectionId) ?? Date.now(), pid, what);
      authAt.delete(r.connectionId);
    };
    fake.on('ready', up('READY'));
    fake.on('resumed', up('RESUMED'));
    fake.on('identify', (r) => {
      this.trace(
        `fake: identify on ${r.connectionId} accepted ${r.accepted} session ${r.sessionId ?? '-'}`,
      );
      if (r.accepted) this.identifiesAccepted += 1;
      authAt.set(r.connectionId, r.at);
    });
    fake.on('heartbeat', (r) => {
      this.trace(
        `fake: heartbeat on ${r.connectionId} seq ${String(r.seq)} session ${r.sessionId ?? '-'}`,
      );
      activity();
      this.syncDeliveries();
      if (r.sessionId !== null && typeof r.seq === 'number') {
        this.ledger.claim(r.sessionId, r.seq, r.at, this.livePid);
      }
    });
    fake.on('resume', (r) => {
      this.trace(
        `fake: resume on ${r.connectionId} session ${String(r.sessionId)} seq ${String(r.seq)} accepted ${r.accepted} replayed ${r.replayed}`,
      );
      activity();
      authAt.set(r.connectionId, r.at);
      if (r.accepted) this.resumesAccepted += 1;
      else {
        this.resumesRefused += 1;
        // The fake answers op 9 and closes: the client leaving is no reaction to a frame.
        this.mustSurvive.delete(r.connectionId);
      }
      this.syncDeliveries();
      if (typeof r.sessionId === 'string' && typeof r.seq === 'number') {
        this.ledger.claim(r.sessionId, r.seq, r.at, this.livePid);
      }
    });
    fake.on('send-request', (r: SendRecord) => {
      const body = r.body as { msg_id?: unknown; msg_seq?: unknown } | undefined;
      if (typeof body?.msg_id !== 'string') return;
      const seq = typeof body.msg_seq === 'number' ? body.msg_seq : null;
      this.trace(
        `fake: send ${body.msg_id} seq ${String(seq)} -> ${r.status}${r.accepted ? ' accepted' : ''}`,
      );
      this.ledger.sendRequest(body.msg_id, seq, r.accepted, this.livePid, r.at);
    });
    fake.on('violation', (v) => {
      this.fakeViolations += 1;
      this.violations.add(
        'protocol',
        `fake server saw a protocol violation: ${v.kind}: ${v.detail}`,
      );
    });
  }

  // ---- the gateway process -----------------------------------------------------------------

  private startGateway(): void {
    if (this.signal.aborted || this.finalStop) return;
    const gateway = new GatewayProcess(
      this.options.cliPath,
      ['run', '--config', this.configPath],
      this.env,
      (line, raw) => {
        if (this.options.keepDir) this.gatewayLogs.get(gateway.pid)?.push(raw);
        this.onLogLine(line);
      },
    );
    this.gateway = gateway;
    this.gatewayLogs.set(gateway.pid, []);
    this.wh?.processStarted(gateway.pid);
    this.trace(`gateway started: pid ${gateway.pid} (${this.restartCause})`);
    this.processes.push({
      pid: gateway.pid,
      startedAt: Date.now(),
      rssEarlyMb: null,
      rssLastMb: null,
      end: null,
      cause: this.restartCause,
    });
    this.epochMessages = [];
    this.deadSince = null;
    this.deadReported = false;
    this.lastActivity = Date.now() + 2_500; // start-up grace: node boot and config load
    this.lastActivityStall = this.stall.read();
    const exit = gateway.exited.then(
      (e) => this.onExit(gateway, e),
      (err: unknown) => this.violations.add('harness', `exit watch failed: ${describe(err)}`),
    );
    this.exits.add(exit);
  }

  private onLogLine(line: LogLine): void {
    this.tg?.onLogLine(line);
    this.dc?.onLogLine(line);
    this.wh?.onLogLine(line);
    const code = typeof line.code === 'string' ? line.code : null;
    if (code !== null) {
      this.logCodes[code] = (this.logCodes[code] ?? 0) + 1;
      if (BUG_CODES.has(code)) {
        this.violations.add('process', `the gateway logged ${code}: ${line.msg ?? ''}`);
      }
      if (typeof line.event_id === 'string') {
        this.ledger.failureLogged(line.event_id.replace(/^qqbot:/, ''), code);
      }
    }
    const msg = line.msg ?? '';
    if (msg === 'duplicate event dropped') this.duplicatesDropped += 1;
    else if (msg.startsWith('connection ended')) {
      const action = typeof line.action === 'string' ? line.action : '?';
      this.reconnectsByAction[action] = (this.reconnectsByAction[action] ?? 0) + 1;
      const c = code ?? '?';
      this.reconnectsByCode[c] = (this.reconnectsByCode[c] ?? 0) + 1;
    }
  }

  private onExit(gateway: GatewayProcess, exit: ProcessExit): void {
    this.trace(`gateway exited: pid ${gateway.pid} code ${exit.code} signal ${exit.signal}`);
    const record = this.processes.find((p) => p.pid === gateway.pid);
    const expected = this.expectedExit;
    this.expectedExit = null;
    if (this.gateway === gateway) this.gateway = null;
    let how: ProcessEnd;
    const where = `pid ${gateway.pid}`;
    const doc = this.readStateDoc();
    if (this.finalStop && exit.code === 0) {
      how = 'stop';
      this.checkFinalDoc(doc, gateway.pid, 'stopped', 0, null);
    } else if (expected?.how === 'kill9' && exit.signal === 'SIGKILL') {
      how = 'kill9';
    } else if (expected?.how === 'fatal' && exit.code === 78) {
      how = 'fatal';
      const latency = exit.at - expected.at;
      const credit = Math.round(this.stall.read() - expected.stall0);
      this.fatalExitMs.push(latency);
      if (latency - credit > this.bounds.fatalExitMs) {
        this.violations.add(
          'process',
          `${where} exited ${latency} ms after ${expected.what} (bound ${this.bounds.fatalExitMs} ms + ${credit} ms of machine stall)`,
          exit.at - this.t0,
        );
      }
      this.checkFinalDoc(doc, gateway.pid, 'fatal', 78, expected.errorCode);
    } else if (this.finalStop && exit.signal === 'SIGKILL') {
      how = 'stop'; // killed by the harness itself after a failed stop (reported there)
    } else {
      how = 'unexpected';
      const wanted = expected === null ? 'no exit was expected' : `expected after ${expected.what}`;
      this.violations.add(
        'process',
        `${where} exited unexpectedly (code ${exit.code ?? 'none'}, signal ${exit.signal ?? 'none'}; ${wanted}); last log lines:\n    ${gateway.tail.slice(-8).join('\n    ')}`,
        exit.at - this.t0,
      );
      if (exit.code !== null && exit.code !== 0) {
        this.checkFinalDoc(doc, gateway.pid, 'fatal', exit.code, null);
      }
    }
    if (gateway.stderr.trim() !== '' && how !== 'kill9') {
      this.violations.add(
        'process',
        `${where} wrote to stderr: ${gateway.stderr.trim().slice(0, 400)}`,
      );
    }
    if (gateway.nonJsonLines > 0) {
      this.violations.add(
        'process',
        `${where} wrote ${gateway.nonJsonLines} stdout line(s) that are not JSON log lines`,
      );
    }
    if (record !== undefined) {
      record.end = { at: exit.at, how, code: exit.code, signal: exit.signal };
    }
    this.truth.processEnded(gateway.pid);
    this.tg?.processEnded(how);
    this.dc?.processEnded(how);
    this.wh?.processEnded(how);
    this.ledger.processEnded(gateway.pid, exit.at, how);
    if (this.credentialsRevoked) {
      this.credentialsRevoked = false;
      this.fake?.setTokenFault('none', 0);
    }
    if (this.finalStop || this.signal.aborted) return;
    // Restart it, as systemd would (RestartSec drawn from the seed).
    this.restartCause =
      how === 'kill9' ? 'kill -9' : (expected?.what ?? `exit ${exit.code ?? exit.signal}`);
    this.restartsBy[this.restartCause] = (this.restartsBy[this.restartCause] ?? 0) + 1;
    const restartInMs = this.restartRng.int(50, 300);
    this.later(restartInMs, () => this.startGateway());
  }

  /** The final word a process left in the state file must be the truth about its end. */
  private checkFinalDoc(
    doc: StateDocument | null,
    pid: number,
    state: 'fatal' | 'stopped',
    exitCode: number,
    errorCode: string | null,
  ): void {
    const problems: string[] = [];
    if (doc === null) problems.push('no readable state file');
    else {
      if (doc.pid !== pid) problems.push(`pid ${doc.pid}`);
      if (doc.gateway.state !== state) problems.push(`gateway.state ${doc.gateway.state}`);
      if (doc.gateway.exit_code !== exitCode)
        problems.push(`gateway.exit_code ${doc.gateway.exit_code}`);
      const qq = doc.platforms.qqbot;
      if (qq?.state !== state) problems.push(`qqbot.state ${qq?.state}`);
      if (errorCode !== null && qq?.last_error?.code !== errorCode) {
        problems.push(
          `qqbot.last_error.code ${qq?.last_error?.code ?? 'null'} (expected ${errorCode})`,
        );
      }
    }
    if (problems.length > 0) {
      this.violations.add(
        'process',
        `pid ${pid} exited ${exitCode} but the state file does not say ${state} with exit code ${exitCode}: ${problems.join(', ')}`,
      );
    }
  }

  private readStateDoc(): StateDocument | null {
    try {
      return JSON.parse(readFileSync(this.statePath, 'utf8')) as StateDocument;
    } catch {
      return null;
    }
  }

  private async stopGateway(): Promise<void> {
    this.finalStop = true;
    const gateway = this.gateway;
    if (gateway === null) {
      this.violations.add('process', 'no gateway was running at the end of the run');
      return;
    }
    gateway.signal('SIGTERM');
    const bound = GATEWAY_TIMINGS.shutdownTimeoutMs + 2_000;
    const exit = await Promise.race([gateway.exited, delay(bound, null)]);
    if (exit === null) {
      this.violations.add(
        'process',
        `pid ${gateway.pid} did not exit within ${bound} ms of SIGTERM`,
      );
      gateway.signal('SIGKILL');
      await gateway.exited;
    }
    // onExit (chained on the same promise) checks the code and the final state file.
    await Promise.allSettled([...this.exits]);
  }

  // ---- the loops -----------------------------------------------------------------------------

  private async faultLoop(): Promise<void> {
    for (const planned of this.plan) {
      await this.sleepUntil(planned.atMs);
      if (this.signal.aborted) return;
      const outcome = await this.inject(planned.fault);
      this.trace(`fault ${faultDetail(planned.fault)}: ${outcome ?? 'injected'}`);
      const kind = planned.fault.kind;
      if (outcome === null) {
        this.injected[kind] = (this.injected[kind] ?? 0) + 1;
        const key = faultDetail(planned.fault);
        this.detail[key] = (this.detail[key] ?? 0) + 1;
      } else {
        this.skipped[kind] = (this.skipped[kind] ?? 0) + 1;
      }
    }
  }

  private async messageLoop(): Promise<void> {
    const stopAt = this.options.durationMs - 1_500;
    while (!this.signal.aborted && this.now() < stopAt) {
      this.dispatchMessage();
      await delay(this.messageRng.int(150, 450), undefined, { signal: this.signal });
    }
  }

  /** Telegram users write every few hundred ms, through restarts and faults alike. */
  private async telegramLoop(): Promise<void> {
    const stopAt = this.options.durationMs - 1_500;
    while (!this.signal.aborted && this.now() < stopAt) {
      this.tg?.push(this.tgRng);
      await delay(this.tgRng.int(200, 600), undefined, { signal: this.signal });
    }
  }

  /** QQ webhook users write every few hundred ms: the fake posts their signed callbacks. */
  private async webhookLoop(): Promise<void> {
    const stopAt = this.options.durationMs - 1_500;
    while (!this.signal.aborted && this.now() < stopAt) {
      this.wh?.push(this.whRng);
      await delay(this.whRng.int(200, 600), undefined, { signal: this.signal });
    }
  }

  /** Discord users write every few hundred ms, through restarts and faults alike. */
  private async discordLoop(): Promise<void> {
    const stopAt = this.options.durationMs - 1_500;
    while (!this.signal.aborted && this.now() < stopAt) {
      this.dc?.push(this.dcRng);
      await delay(this.dcRng.int(200, 600), undefined, { signal: this.signal });
    }
  }

  private async quietLoop(): Promise<void> {
    const { durationMs, quietMs } = this.options;
    await this.sleepUntil(durationMs - quietMs);
    const fake = this.fake!;
    this.quietAt = Date.now();
    fake.refuseConnections(false);
    fake.setTokenFault('none', 0);
    fake.setGatewayFault('none', 0);
    this.tg?.quiet();
    this.dc?.quiet();
    this.wh?.quiet();
    this.options.progress(`${formatRunTime(this.now())} faults stopped: quiet period`);
    const deadline = this.quietAt + this.bounds.recoveryMs;
    const stall0 = this.stall.read();
    while (!this.signal.aborted) {
      const doc = this.watcher?.last?.doc;
      const connected =
        this.truth.upConn !== null &&
        doc !== undefined &&
        doc.pid === this.livePid &&
        doc.platforms.qqbot?.state === 'connected' &&
        doc.platforms.telegram?.state === 'connected' &&
        DiscordLane.connected(doc) &&
        WebhookLane.connected(doc);
      if (connected) {
        this.recoveredAt = Date.now();
        return;
      }
      const credit = this.stall.read() - stall0;
      if (Date.now() > deadline + credit) {
        this.violations.add(
          'recovery',
          `not connected ${this.bounds.recoveryMs} ms + ${Math.round(credit)} ms of machine stall after the faults stopped (fake: ${this.truth.upConn === null ? 'no live session' : 'session up'}, state file: qqbot ${doc?.platforms.qqbot?.state ?? 'none'}, telegram ${doc?.platforms.telegram?.state ?? 'none'}, discord ${doc?.platforms.discord?.state ?? 'none'}, ${WH_INSTANCE} ${doc?.platforms[WH_INSTANCE]?.state ?? 'none'}, pid ${doc?.pid ?? '?'} vs live ${this.livePid ?? 'none'})`,
        );
        return;
      }
      await delay(10, undefined, { signal: this.signal });
    }
  }

  /** Waits for the acknowledged events of the live process to be answered (bounded). */
  private async drain(): Promise<void> {
    const until = Date.now() + 5_000;
    while (Date.now() < until) {
      const pid = this.livePid;
      this.syncDeliveries();
      if (pid === null) return;
      if (
        this.ledger.pendingFor(pid) === 0 &&
        (this.tg?.pending() ?? 0) === 0 &&
        (this.dc?.pending() ?? 0) === 0 &&
        (this.wh?.pending() ?? 0) === 0
      )
        return;
      await delay(25, undefined, { signal: this.signal });
    }
  }

  /** Dispatches one message: a new one (to `user`, or a drawn user), or a redelivery. */
  private dispatchMessage(user?: number): void {
    const fake = this.fake!;
    const rng = this.messageRng;
    // Now and then the platform redelivers a message it already sent (same msg id): the
    // gateway must answer it once. Only within one process: dedup memory is per process.
    if (user === undefined && this.epochMessages.length > 0 && rng.chance(0.05)) {
      const original = rng.pick(this.epochMessages);
      try {
        const record = fake.dispatch('C2C_MESSAGE_CREATE', original.d);
        this.trace(`fake: redeliver ${original.msgId} session ${record.sessionId} s ${record.s}`);
        this.ledger.dispatched(
          original.msgId,
          original.d.author.user_openid,
          record.sessionId,
          record.s,
          Date.now(),
        );
      } catch {
        this.noSession += 1;
      }
      return;
    }
    this.msgCount += 1;
    const tag = `chaos-${this.options.seed}-${this.msgCount}`;
    const msgId = `ROBOT1.0_${tag}`;
    const userOpenid = user === undefined ? rng.pick(USERS) : USERS[user % USERS.length]!;
    const d = payloads.c2cMessage({ id: msgId, content: `ping ${tag}`, userOpenid });
    try {
      const record = fake.dispatch('C2C_MESSAGE_CREATE', d);
      this.trace(
        `fake: dispatch ${msgId} session ${record.sessionId} s ${record.s} ${record.delivered ? 'written' : 'buffered'}`,
      );
      this.ledger.dispatched(msgId, userOpenid, record.sessionId, record.s, Date.now());
      if (this.livePid !== null) {
        this.epochMessages.push({ msgId, d });
        if (this.epochMessages.length > 50) this.epochMessages.shift();
      }
    } catch {
      // No session yet (only before the first READY or right after a refused one).
      this.noSession += 1;
    }
  }

  // ---- fault injection -----------------------------------------------------------------------

  /** Injects one fault; null when done, else why it was skipped. */
  private async inject(fault: Fault): Promise<string | null> {
    // Telegram faults are scripted on its fake: they meet whichever process polls next.
    if (isTelegramFault(fault)) {
      return this.tg === null ? 'no telegram instance' : this.tg.inject(fault);
    }
    // Discord faults hit its fake: the live connection, or the next sends.
    if (isDiscordFault(fault)) {
      return this.dc === null ? 'no discord instance' : this.dc.inject(fault);
    }
    // Webhook faults: requests to the gateway's inbound server, or scripted on its fake.
    if (isWebhookFault(fault)) {
      return this.wh === null ? 'no webhook instance' : this.wh.inject(fault);
    }
    const fake = this.fake!;
    const { closeMs, silentMs, surviveMs } = this.bounds;
    const needsConnection = !['send_rate_limited', 'send_failure', 'kill9'].includes(fault.kind);
    const restart = RESTART_KINDS.has(fault.kind);
    const by = Date.now() + (restart ? 3_000 : 500);
    // Faults on the link need a link (and a live gateway); wait a little for one. A fatal
    // close goes to a settled session: one the client is connected on, with no other fault
    // in flight on it (a half-open socket would swallow the close code; a client already
    // reconnecting after op 7 keeps its first decision).
    while (
      (needsConnection && (fake.openConnections === 0 || this.livePid === null)) ||
      (fault.kind === 'kill9' && this.livePid === null) ||
      (restart && this.expectedExit !== null) ||
      (needsConnection && restart && !this.settledLink())
    ) {
      if (Date.now() > by || this.signal.aborted) return 'no connection';
      await delay(20, undefined, { signal: this.signal });
    }
    const target = Math.max(...this.openConns);
    const now = Date.now();
    this.trace(`injecting ${faultDetail(fault)} on connection ${target}`);
    // Any fault on the target cancels the "must survive" expectation of an earlier frame.
    this.mustSurvive.delete(target);
    if (
      !['send_rate_limited', 'send_failure', 'malformed_frame', 'oversized_frame'].includes(
        fault.kind,
      )
    ) {
      this.faulted.add(target);
    }
    const down = (cause: string, boundMs: number): void =>
      this.truth.down(target, now, cause, boundMs);
    try {
      switch (fault.kind) {
        case 'close_resume':
        case 'close_identify':
        case 'close_wait':
          fake.closeClient(fault.code, 'chaos');
          down(`close ${fault.code}`, closeMs);
          return null;
        case 'close_refresh':
          if (fault.revoke) fake.revokeTokens();
          fake.closeClient(fault.code, 'chaos');
          down(`close ${fault.code}`, closeMs);
          return null;
        case 'close_fatal':
          this.expectedExit = {
            how: 'fatal',
            at: now,
            stall0: this.stall.read(),
            what: `close ${fault.code}`,
            errorCode: `GW_ERR_QQ_CLOSE_${fault.code}`,
          };
          fake.closeClient(fault.code, 'chaos');
          down(`close ${fault.code}`, closeMs);
          return null;
        case 'token_rejected':
          // The credentials are revoked: every token request is refused until the gateway
          // has exited 78 (expected from the first refusal, see the token event; a refusal
          // met by a reply's send only fails that reply, the next connection attempt ends it).
          fake.setTokenFault('bad_credentials');
          this.credentialsRevoked = true;
          fake.revokeTokens();
          fake.closeClient(4004, 'chaos');
          down('close 4004', closeMs);
          return null;
        case 'kill9':
          this.expectedExit = {
            how: 'kill9',
            at: now,
            stall0: 0,
            what: 'kill -9',
            errorCode: null,
          };
          this.gateway?.signal('SIGKILL');
          return null;
        case 'tcp_reset':
          fake.terminateClient();
          down('TCP reset', closeMs);
          return null;
        case 'half_open':
          fake.goHalfOpen();
          down('half-open link', silentMs);
          return null;
        case 'stop_acking':
          fake.stopAcking();
          down('heartbeat ACKs stopped', silentMs);
          return null;
        case 'op_reconnect':
          fake.sendReconnect();
          if (fault.burst) this.dispatchMessage(fault.user);
          down('op 7 Reconnect', closeMs);
          return null;
        case 'op_invalid_session':
          fake.sendInvalidSession(fault.resumable);
          if (fault.burst) this.dispatchMessage(fault.user);
          down(`op 9 Invalid Session (resumable ${fault.resumable})`, closeMs);
          return null;
        case 'resume_refused':
          fake.forgetSession();
          fake.closeClient(4009, 'chaos');
          down('close 4009 (session forgotten)', closeMs);
          return null;
        case 'token_fault':
          fake.setTokenFault(fault.fault, fault.count);
          fake.revokeTokens();
          fake.closeClient(4004, 'chaos');
          down('close 4004', closeMs);
          return null;
        case 'gateway_fault':
          fake.setGatewayFault(fault.fault, fault.count);
          if (fault.trigger === 'reset') {
            fake.terminateClient();
            down('TCP reset', closeMs);
          } else {
            fake.closeClient(4009, 'chaos');
            down('close 4009', closeMs);
          }
          return null;
        case 'refuse_connections':
          fake.refuseConnections(true, { gateway: fault.gateway });
          fake.terminateClient();
          down('TCP reset', closeMs);
          this.later(fault.durationMs, () => {
            if (this.quietAt === null) fake.refuseConnections(false);
          });
          return null;
        case 'send_rate_limited':
        case 'send_failure':
          fake.queueSendFaults(...fault.faults);
          return null;
        case 'malformed_frame':
          fake.sendRaw(fault.text);
          // Only a settled session must survive it: on a faulted link or during a handshake
          // (a refused Resume, ...) the client may leave for other reasons.
          if (this.survivable(target)) {
            this.mustSurvive.set(target, { until: now + surviveMs, what: 'a malformed frame' });
          }
          return null;
        case 'oversized_frame':
          fake.sendOversized(fault.bytes);
          if (fault.bytes <= GATEWAY_TIMINGS.maxPayloadBytes * 4 && this.survivable(target)) {
            this.mustSurvive.set(target, {
              until: now + surviveMs,
              what: `an oversized frame (${fault.bytes} bytes)`,
            });
          }
          return null;
      }
    } catch (err) {
      // The connection went away between the check and the call.
      return `failed: ${describe(err)}`;
    }
  }

  /** `conn` carries the session the client is connected on, and no fault was injected on it. */
  private survivable(conn: number): boolean {
    return conn === this.truth.upConn && !this.faulted.has(conn);
  }

  /** The client is connected on the newest link, with no fault injected on it yet. */
  private settledLink(): boolean {
    const up = this.truth.upConn;
    const doc = this.watcher?.last?.doc;
    return (
      up !== null &&
      up === Math.max(...this.openConns) &&
      !this.faulted.has(up) &&
      doc !== undefined &&
      doc.pid === this.livePid &&
      doc.platforms.qqbot?.state === 'connected'
    );
  }

  // ---- periodic checks -----------------------------------------------------------------------

  private poll(): void {
    const watcher = this.watcher;
    if (watcher === null) return;
    const sample = watcher.poll(Date.now(), this.stall.read());
    if (sample === null) return;
    const pid = this.livePid;
    this.truth.sample(sample, pid);
    this.tg?.sample(sample.doc, sample.at);
    this.dc?.sample(sample.doc, sample.at);
    this.wh?.sample(sample.doc, sample.at);
    // A live process whose adapter (or gateway) has ended must exit within the bound.
    const { doc } = sample;
    const qq = doc.platforms?.qqbot?.state;
    const ended =
      pid !== null &&
      doc.pid === pid &&
      (qq === 'fatal' ||
        qq === 'stopped' ||
        doc.gateway.state === 'fatal' ||
        doc.gateway.state === 'stopping' ||
        doc.gateway.state === 'stopped');
    if (!ended) {
      this.deadSince = null;
    } else if (!this.finalStop) {
      this.deadSince ??= { at: sample.at, stall0: sample.stall };
    }
    // heartbeat_at is what `status` uses to tell a wedged process: it must stay fresh.
    if (pid !== null && doc.pid === pid && doc.gateway.state === 'running') {
      const age = sample.at - Date.parse(doc.heartbeat_at);
      const bound = 3 * GATEWAY_TIMINGS.stateHeartbeatMs;
      if (age > bound && !this.staleHeartbeatReported) {
        this.staleHeartbeatReported = true;
        this.violations.add(
          'state-file',
          `heartbeat_at is ${age} ms old in a running gateway (pid ${pid}; refreshed every ${GATEWAY_TIMINGS.stateHeartbeatMs} ms)`,
        );
      }
    }
  }

  private tick(): void {
    const now = Date.now();
    this.truth.tick((pid) => `pid ${pid}${pid === this.livePid ? '' : ', since ended'}`);
    this.tg?.tick(now);
    this.dc?.tick(now);
    this.syncDeliveries();
    this.ledger.check(now, false);
    const pid = this.livePid;
    const gateway = this.gateway;
    if (pid !== null && gateway !== null) {
      const rss = gateway.rssBytes();
      if (rss !== null) {
        const mb = rss / (1024 * 1024);
        if (mb > this.rssMax) this.rssMax = mb;
        const record = this.processes[this.processes.length - 1];
        if (record !== undefined && record.pid === pid) {
          if (record.rssEarlyMb === null && now - record.startedAt >= 5_000) record.rssEarlyMb = mb;
          record.rssLastMb = mb;
        }
        if (mb > this.options.rssLimitMb) {
          this.violations.add(
            'process',
            `pid ${pid} RSS ${mb.toFixed(1)} MB above ${this.options.rssLimitMb} MB`,
          );
          this.options.rssLimitMb = Infinity; // once
        }
      }
      const stallNow = this.stall.read();
      // Dead adapter in a live process.
      const dead = this.deadSince;
      if (
        dead !== null &&
        !this.deadReported &&
        now - dead.at - (stallNow - dead.stall0) > this.bounds.deadAdapterMs
      ) {
        this.deadReported = true;
        this.violations.add(
          'process',
          `pid ${pid} still runs ${now - dead.at} ms after its state file said its adapter or gateway had ended`,
        );
      }
      // Liveness as the fake sees it: not connected, yet no request from the client.
      if (
        this.truth.upConn === null &&
        !this.finalStop &&
        !this.livenessReported &&
        now - this.lastActivity - (stallNow - this.lastActivityStall) > this.bounds.livenessMs
      ) {
        this.livenessReported = true;
        this.violations.add(
          'liveness',
          `pid ${pid} is not connected and made no request to the fake for ${now - this.lastActivity} ms`,
        );
      }
      // An expected fatal exit that does not come.
      const expected = this.expectedExit;
      if (
        expected?.how === 'fatal' &&
        now - expected.at - (stallNow - expected.stall0) > this.bounds.fatalExitMs + 2_000
      ) {
        this.expectedExit = null;
        this.violations.add(
          'process',
          `pid ${pid} still runs ${now - expected.at} ms after ${expected.what}: killing it to go on`,
        );
        this.expectedExit = {
          how: 'kill9',
          at: now,
          stall0: stallNow,
          what: 'harness kill after a missing fatal exit',
          errorCode: null,
        };
        gateway.signal('SIGKILL');
      }
    }
    if (now - this.lastProgress >= 5_000) {
      this.lastProgress = now;
      const stats = this.ledger.stats();
      const injected = Object.values(this.injected).reduce((a, b) => a + b, 0);
      const restarts = this.processes.length - 1;
      this.options.progress(
        `${formatRunTime(this.now())} faults ${injected}, msgs ${stats.dispatched}, replies ${stats.replied}, restarts ${restarts}, violations ${this.violations.count}`,
      );
    }
  }

  private syncDeliveries(): void {
    const deliveries = this.fake?.records.deliveries;
    if (deliveries === undefined) return;
    for (; this.deliveryIndex < deliveries.length; this.deliveryIndex++) {
      const d = deliveries[this.deliveryIndex]!;
      this.trace(
        `fake: wrote s ${d.s} (${d.t}${d.replay ? ', replay' : ''}) of ${d.sessionId} on ${d.connectionId}`,
      );
      this.ledger.delivered(d.sessionId, d.s);
    }
  }

  private finalChecks(): void {
    this.syncDeliveries();
    this.ledger.check(Date.now(), true);
    this.truth.tick((pid) => `pid ${pid}`);
    this.tg?.finalChecks(Date.now());
    this.dc?.finalChecks(Date.now());
    this.wh?.finalChecks(Date.now());
  }

  // ---- helpers -----------------------------------------------------------------------------

  private later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  private async sleepUntil(runMs: number): Promise<void> {
    const wait = this.t0 + runMs - Date.now();
    if (wait > 0) await delay(wait, undefined, { signal: this.signal });
  }

  private longestLived(): SoakSummary['rss_longest_lived'] {
    let best: SoakSummary['rss_longest_lived'] = null;
    for (const p of this.processes) {
      if (p.rssEarlyMb === null || p.rssLastMb === null) continue;
      const lived = ((p.end?.at ?? Date.now()) - p.startedAt) / 1000;
      if (best === null || lived > best.lived_s) {
        best = {
          pid: p.pid,
          lived_s: Math.round(lived),
          early_mb: Math.round(p.rssEarlyMb * 10) / 10,
          last_mb: Math.round(p.rssLastMb * 10) / 10,
        };
      }
    }
    return best;
  }

  summary(): SoakSummary {
    const stats = this.ledger.stats();
    const truth = this.truth.stats;
    const restarts = Object.values(this.restartsBy).reduce((a, b) => a + b, 0);
    const first = this.violations.list.slice(0, 20);
    return {
      chaos_summary: true,
      ok: this.violations.count === 0 && !this.signal.aborted,
      aborted: this.signal.aborted,
      seed: this.options.seed,
      duration_ms: this.options.durationMs,
      quiet_ms: this.options.quietMs,
      heartbeat_interval_ms: this.options.heartbeatMs,
      state_file_on: this.stateDir.startsWith('/dev/shm/') ? 'tmpfs' : 'disk',
      stall_credit: this.stall.available,
      bounds: this.bounds,
      faults: {
        planned: countKinds(this.plan),
        injected: this.injected,
        skipped: this.skipped,
        detail: this.detail,
      },
      recoveries: {
        resumes_accepted: this.resumesAccepted,
        resumes_refused: this.resumesRefused,
        identifies_accepted: this.identifiesAccepted,
        reconnects_by_action: this.reconnectsByAction,
        reconnects_by_code: this.reconnectsByCode,
      },
      restarts: { total: restarts, by_cause: this.restartsBy },
      events: { ...stats, no_session: this.noSession },
      duplicates_dropped: this.duplicatesDropped,
      state_file: {
        ...truth,
        reads: this.watcher?.reads ?? 0,
        last_write_seq: this.watcher?.lastSeq ?? 0,
        max_poll_gap_ms: this.watcher?.maxGapMs ?? 0,
      },
      recovery_after_quiet_ms:
        this.recoveredAt !== null && this.quietAt !== null ? this.recoveredAt - this.quietAt : null,
      max_fatal_exit_ms: this.fatalExitMs.length > 0 ? Math.max(...this.fatalExitMs) : null,
      rss_max_mb: Math.round(this.rssMax * 10) / 10,
      rss_longest_lived: this.longestLived(),
      log_codes: this.logCodes,
      fake_violations: this.fakeViolations,
      telegram: this.tg?.stats() ?? null,
      discord: this.dc?.stats() ?? null,
      webhook: this.wh?.stats() ?? null,
      violations: {
        count: this.violations.count,
        by_invariant: this.violations.byInvariant(),
        first,
      },
    };
  }
}

/** `close_resume:4009`, `token_fault:timeout`, ... for the summary. */
function faultDetail(fault: Fault): string {
  switch (fault.kind) {
    case 'close_resume':
    case 'close_identify':
    case 'close_refresh':
    case 'close_wait':
    case 'close_fatal':
      return `${fault.kind}:${fault.code}`;
    case 'op_reconnect':
      return `${fault.kind}${fault.burst ? ':burst' : ''}`;
    case 'op_invalid_session':
      return `${fault.kind}:${fault.resumable ? 'resumable' : 'not_resumable'}${fault.burst ? ':burst' : ''}`;
    case 'token_fault':
    case 'gateway_fault':
      return `${fault.kind}:${fault.fault}`;
    case 'send_rate_limited':
    case 'send_failure':
      return `${fault.kind}:${fault.faults.map((f) => f.kind).join('+')}`;
    case 'malformed_frame':
      return `${fault.kind}:${JSON.stringify(fault.text).slice(0, 40)}`;
    case 'oversized_frame':
      return `${fault.kind}:${fault.bytes > GATEWAY_TIMINGS.maxPayloadBytes * 4 ? 'above_hard_cap' : 'above_limit'}`;
    case 'tg_poll_fault':
    case 'tg_send_fault':
      return `${fault.kind}:${fault.fault}`;
    case 'tg_half_open':
    case 'tg_poll_elsewhere':
      return fault.kind;
    case 'dc_close':
      return `${fault.kind}:${fault.code}`;
    case 'dc_invalid_session':
      return `${fault.kind}:${fault.resumable ? 'resumable' : 'new_session'}`;
    case 'dc_resume_refused':
      return `${fault.kind}:${fault.count === 1 ? 'once' : 'twice'}`;
    case 'dc_send_fault':
      return `${fault.kind}:${fault.faults.length > DC_TIMINGS.sendMaxAttempts ? 'over_max_attempts' : 'retried'}`;
    case 'dc_terminate':
    case 'dc_stop_acks':
    case 'dc_half_open':
    case 'dc_op_reconnect':
    case 'dc_request_heartbeat':
      return fault.kind;
    case 'wh_forged':
      return `${fault.kind}:${fault.variants.join('+')}`;
    case 'wh_timestamp':
      return `${fault.kind}:${fault.skewS < 0 ? 'stale' : 'future'}`;
    case 'wh_oversized':
      return `${fault.kind}:${fault.chunked ? 'chunked' : 'declared'}`;
    case 'wh_bad_request':
      return `${fault.kind}:${fault.variant}`;
    case 'wh_redeliver':
      return `${fault.kind}:${fault.lostAck ? 'ack_lost' : 'after_ack'}`;
    case 'wh_slow':
      return `${fault.kind}:${fault.end}`;
    case 'wh_token_fault':
      return `${fault.kind}:${fault.fault}`;
    case 'wh_send_fault':
      return `${fault.kind}:${fault.faults.length > GATEWAY_TIMINGS.sendMaxAttempts ? 'over_max_attempts' : 'retried'}`;
    case 'wh_validation':
    case 'wh_reset':
    case 'token_rejected':
    case 'kill9':
    case 'tcp_reset':
    case 'half_open':
    case 'stop_acking':
    case 'resume_refused':
    case 'refuse_connections':
      return fault.kind;
  }
}

function isTelegramFault(fault: Fault): fault is TelegramFault {
  return fault.kind.startsWith('tg_');
}

function isDiscordFault(fault: Fault): fault is DiscordFault {
  return fault.kind.startsWith('dc_');
}

function isWebhookFault(fault: Fault): fault is WebhookFault {
  return fault.kind.startsWith('wh_');
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
