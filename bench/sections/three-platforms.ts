/**
 * Section 9, three platforms in one gateway (issue 12, target 6): one real `hermes-gateway run`
 * process with a qqbot (websocket), a telegram (long polling) and a discord instance and the
 * echo handler; each platform's fake runs in a process of its own (bench/fake-driver.ts) and
 * sends at `rate`/s over many chats, open loop, for `seconds` s after a warm-up. Latency is
 * per message, from the fake writing it to the echo reply reaching that fake.
 *
 * Side by side in the same section, the same gateway config with only the qqbot instance at
 * the same rate: the regression of QQ's p99 is a ratio of two figures measured minutes apart
 * on the same machine. The two variants alternate in each repeat (alone first in even
 * repeats, three first in odd ones), so slow drift of the machine's load does not favour one.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type {
  DriverMessage,
  DriverResult,
  Endpoints,
  Platform,
  RunRequest,
} from '../fake-driver.js';
import { TELEGRAM_TOKEN_ENV, gatewayConfig } from '../lib/gateway-config.js';
import { GatewayChild } from '../lib/gateway-proc.js';
import { ForkedChild } from '../lib/ipc.js';
import type { Cell, Row } from '../lib/report.js';
import {
  DIST_BENCH,
  errorText,
  median,
  procCpuMs,
  procSchedMs,
  rssBytes,
  sleep,
} from '../lib/util.js';

export interface ThreePlatformsOptions {
  /** Messages per second per platform. */
  rate: number;
  /** Measured seconds after the warm-up. */
  seconds: number;
  warmupSeconds: number;
  repeats: number;
  /** Chats per platform; default max(1,000, 2 × rate), at most 20,000. */
  chats?: number;
  log: (line: string) => void;
}

type Variant = 'three' | 'qq-alone';

export interface GatewayFigure {
  /** Gateway CPU over the measured seconds, in cores. */
  cpuShare: number | null;
  /**
   * Share of the measured seconds the gateway's main thread was runnable but waiting for a
   * CPU (/proc schedstat): how much of its slowness the machine's other load explains.
   */
  runQueueShare: number | null;
  /** RSS when the load starts (connected, idle), after the warm-up, at the end of the load. */
  rssStartMb: number | null;
  rssAfterWarmupMb: number | null;
  rssEndMb: number | null;
  rssPeakMb: number | null;
  /** Still running when the fakes reported (a crash is a product bug). */
  survived: boolean;
  exitCode: number | null;
  /** Warn-or-above log lines during the load, by code and message (numbers as N). */
  warnings: Record<string, number>;
  /** Events the gateway shed at its queue bounds (GW_ERR_HANDLER_QUEUE_OVERFLOW lines summed). */
  overflowDropped: number;
}

export interface RunFigure {
  variant: Variant;
  repeat: number;
  platforms: Partial<Record<Platform, DriverResult>>;
  gateway: GatewayFigure;
  /** Protocol violations a fake saw, by platform. */
  violations: Partial<Record<Platform, string>>;
  /** The gateway's exit code after SIGTERM at the end of the run (0 expected). */
  stop: { exitCode: number | null };
}

const DISCORD_TOKEN_ENV = 'BENCH_DISCORD_TOKEN';
const GRACE_MS = 10_000;
const SECTION = '9 three platforms';
const LABEL: Record<Platform, string> = { qqbot: 'QQ', telegram: 'Telegram', discord: 'Discord' };

/** A forked bench/fake-driver.js: one platform's fake and its load generator. */
class FakeChild extends ForkedChild<DriverMessage> {
  constructor(readonly platform: Platform) {
    super(join(DIST_BENCH, 'fake-driver.js'), [platform], `${platform} fake`);
  }

  /** The next message of `type`; an `error` message rejects, as do exit and timeout. */
  async next<T extends DriverMessage['type']>(
    type: T,
    timeoutMs: number,
  ): Promise<Extract<DriverMessage, { type: T }>> {
    const m = await this.take((m) => m.type === type || m.type === 'error', type, timeoutMs);
    if (m.type === 'error') throw new Error(`${this.platform} fake: ${m.message}`);
    return m as Extract<DriverMessage, { type: T }>;
  }

  run(request: RunRequest): void {
    this.child.send(request);
  }

  /** Closes the fake; resolves with the protocol violations it saw (null: none). */
  async close(): Promise<string | null> {
    if (this.exited) return null;
    await this.stop(5_000);
    return (await this.next('closed', 0)).violations;
  }
}

/** The gateway config: `platforms` holds an instance for each fake that runs. */
function threeConfig(stateFile: string, fakes: Map<Platform, Endpoints>): Record<string, unknown> {
  const qq = fakes.get('qqbot')!;
  const config = gatewayConfig({
    stateFile,
    tokenUrl: qq.tokenUrl!,
    apiBase: qq.apiBase,
    appId: qq.appId!,
  });
  const platforms = config.platforms as Record<string, unknown>;
  const telegram = fakes.get('telegram');
  if (telegram !== undefined) {
    platforms.telegram = {
      token: `\${${TELEGRAM_TOKEN_ENV}}`,
      api_base: telegram.apiBase,
      // Telegram's own overall limit is about 30/s (the pacer's production default): at
      // 1,000/s the bench measures the gateway, not that limit. The per-chat interval stays
      // (each chat gets a message every chats/rate seconds, above it).
      send: { global_interval_ms: 0 },
    };
  }
  const discord = fakes.get('discord');
  if (discord !== undefined) {
    platforms.discord = {
      token: `\${${DISCORD_TOKEN_ENV}}`,
      api_base: discord.apiBase,
      // As in section 8: Discord's 50/s global limit is not what is measured here.
      send: { global_per_second: 100_000 },
    };
  }
  return config;
}

async function runOnce(
  variant: Variant,
  repeat: number,
  o: ThreePlatformsOptions,
  chats: number,
): Promise<RunFigure> {
  const platforms: Platform[] = variant === 'three' ? ['qqbot', 'telegram', 'discord'] : ['qqbot'];
  const children = platforms.map((p) => new FakeChild(p));
  const dir = await mkdtemp(join(tmpdir(), 'hgw-bench-three-'));
  let gateway: GatewayChild | undefined;
  const violations: Partial<Record<Platform, string>> = {};
  // Filled in when the run ends, after the figure is made.
  const stop: RunFigure['stop'] = { exitCode: null };
  try {
    const fakes = new Map<Platform, Endpoints>();
    for (const c of children) fakes.set(c.platform, (await c.next('ready', 20_000)).endpoints);
    const stateFile = join(dir, 'gateway_state.json');
    const configPath = join(dir, 'config.yaml');
    await writeFile(configPath, stringify(threeConfig(stateFile, fakes)), { mode: 0o600 });
    gateway = new GatewayChild({
      config: configPath,
      secret: fakes.get('qqbot')!.secret,
      env: {
        [TELEGRAM_TOKEN_ENV]: fakes.get('telegram')?.secret ?? '',
        [DISCORD_TOKEN_ENV]: fakes.get('discord')?.secret ?? '',
      },
    });
    const g = gateway;
    await g.waitState(
      stateFile,
      (d) => platforms.every((p) => d.platforms[p]?.state === 'connected'),
      `${platforms.join(', ')} connected`,
      30_000,
      20,
    );
    await sleep(200);
    const request: RunRequest = {
      type: 'run',
      rate: o.rate,
      seconds: o.seconds,
      warmupSeconds: o.warmupSeconds,
      chats,
      graceMs: GRACE_MS,
    };
    const linesBefore = g.lines.length;
    const rssStart = rssBytes(g.pid);
    for (const c of children) c.run(request);
    // The gateway's CPU and RSS over the same window, sampled from here.
    const t0 = Date.now();
    let rssPeak = rssStart ?? 0;
    let cpuWarm: number | null = null;
    let schedWarm: ReturnType<typeof procSchedMs> = null;
    let rssWarm: number | null = null;
    const loadEnd = t0 + (o.warmupSeconds + o.seconds) * 1000;
    while (Date.now() < loadEnd && g.running) {
      await sleep(Math.min(250, Math.max(1, loadEnd - Date.now())));
      rssPeak = Math.max(rssPeak, rssBytes(g.pid) ?? 0);
      if (cpuWarm === null && Date.now() >= t0 + o.warmupSeconds * 1000) {
        cpuWarm = procCpuMs(g.pid);
        schedWarm = procSchedMs(g.pid);
        rssWarm = rssBytes(g.pid);
      }
    }
    const measuredFrom = t0 + o.warmupSeconds * 1000;
    const cpuEnd = procCpuMs(g.pid);
    const schedEnd = procSchedMs(g.pid);
    const rssEnd = rssBytes(g.pid);
    const cpuSeconds = (Date.now() - measuredFrom) / 1000;
    const results: Partial<Record<Platform, DriverResult>> = {};
    const resultTimeout = GRACE_MS + 30_000;
    for (const c of children) {
      // NaN (no latency measured) crosses IPC as JSON null: back to NaN.
      const result = (await c.next('result', resultTimeout)).result;
      for (const [k, v] of Object.entries(result)) {
        if (v === null) (result as unknown as Record<string, number>)[k] = NaN;
      }
      results[c.platform] = result;
    }
    const warnings: Record<string, number> = {};
    let overflowDropped = 0;
    for (const line of g.lines.slice(linesBefore)) {
      if (line.level < 40) continue;
      const msg = String(line.msg ?? '');
      const key = `${line.code ?? ''} ${msg.replace(/\d+/g, 'N').slice(0, 60)}`.trim();
      warnings[key] = (warnings[key] ?? 0) + 1;
      // The first drop has a line of its own, the next ones a summary line a second.
      if (line.code === 'GW_ERR_HANDLER_QUEUE_OVERFLOW')
        overflowDropped += Number(/(\d+) more events dropped/.exec(msg)?.[1] ?? 1);
    }
    const mb = (b: number | null): number | null => (b === null ? null : b / 2 ** 20);
    return {
      variant,
      repeat,
      platforms: results,
      gateway: {
        cpuShare:
          cpuWarm === null || cpuEnd === null ? null : (cpuEnd - cpuWarm) / 1000 / cpuSeconds,
        runQueueShare:
          schedWarm === null || schedEnd === null
            ? null
            : (schedEnd.waitMs - schedWarm.waitMs) / 1000 / cpuSeconds,
        rssStartMb: mb(rssStart),
        rssAfterWarmupMb: mb(rssWarm),
        rssEndMb: mb(rssEnd),
        rssPeakMb: mb(rssPeak),
        survived: g.running,
        exitCode: g.exitCode,
        warnings,
        overflowDropped,
      },
      violations,
      stop,
    };
  } finally {
    stop.exitCode = (await gateway?.stop()) ?? null;
    for (const c of children) {
      const v = await c.close().catch((err: unknown) => errorText(err));
      if (v !== null) violations[c.platform] = v;
    }
    await rm(dir, { recursive: true, force: true });
  }
}

const fixed = (v: number, digits = 2): string => (Number.isFinite(v) ? v.toFixed(digits) : '—');

function logRun(f: RunFigure, log: (line: string) => void): void {
  const g = f.gateway;
  log(
    `  ${f.variant === 'three' ? 'three platforms' : 'QQ alone'} #${f.repeat + 1}: gateway CPU ` +
      `${fixed((g.cpuShare ?? NaN) * 100, 0)}% of a core (main thread waiting for a CPU ` +
      `${fixed((g.runQueueShare ?? NaN) * 100, 0)}% of the time), RSS ${fixed(g.rssStartMb ?? NaN, 0)} → ` +
      `${fixed(g.rssEndMb ?? NaN, 0)} MB (peak ${fixed(g.rssPeakMb ?? NaN, 0)})` +
      (g.overflowDropped > 0 ? `, ${g.overflowDropped} events shed at its queue bounds` : '') +
      (g.survived ? '' : `, GATEWAY EXITED (${String(g.exitCode)})`) +
      (g.survived && f.stop.exitCode !== 0 ? `, exit ${String(f.stop.exitCode)} on SIGTERM` : ''),
  );
  for (const r of Object.values(f.platforms)) {
    log(
      `    ${LABEL[r.platform].padEnd(8)} p50 ${fixed(r.p50Ms)} ms, p99 ${fixed(r.p99Ms)} ms, ` +
        `max ${fixed(r.maxMs, 1)} ms, ${r.missing} without reply (+${r.missingInWarmup} in the ` +
        `warm-up), ${r.duplicates} duplicates, sent ${fixed(r.achievedSendRate, 0)}/s, replies ` +
        `${fixed(r.replyRate, 0)}/s, fake loop delay p99 ${fixed(r.loopDelayP99Ms, 1)} ms ` +
        `(max ${fixed(r.loopDelayMaxMs, 0)}), fake CPU ${fixed(r.cpuShare * 100, 0)}%` +
        Object.entries(r.counts)
          .map(([k, v]) => `, ${k} ${v}`)
          .join(''),
    );
  }
  for (const [p, v] of Object.entries(f.violations)) log(`    ${p} fake: VIOLATIONS ${v}`);
  const warnings = Object.entries(g.warnings);
  if (warnings.length > 0)
    log(`    gateway warnings: ${warnings.map(([k, n]) => `${n}× ${k}`).join('; ')}`);
}

export async function runThreePlatforms(
  o: ThreePlatformsOptions,
): Promise<{ rows: Row[]; raw: unknown }> {
  const chats = o.chats ?? Math.min(20_000, Math.max(1_000, o.rate * 2));
  const figures: RunFigure[] = [];
  const failures: string[] = [];
  for (let r = 0; r < o.repeats; r++) {
    const order: Variant[] = r % 2 === 0 ? ['qq-alone', 'three'] : ['three', 'qq-alone'];
    for (const variant of order) {
      try {
        const f = await runOnce(variant, r, o, chats);
        figures.push(f);
        logRun(f, o.log);
      } catch (err) {
        failures.push(`${variant} #${r + 1}: ${errorText(err)}`);
        o.log(`  ${variant} #${r + 1}: failed: ${errorText(err)}`);
      }
    }
  }
  const runs = (v: Variant): RunFigure[] => figures.filter((f) => f.variant === v);
  const results = (v: Variant, p: Platform): DriverResult[] =>
    runs(v).flatMap((f) => (f.platforms[p] ? [f.platforms[p]] : []));
  const med = (values: Array<number | null>): Cell => {
    const ok = values.filter((x): x is number => x !== null && Number.isFinite(x));
    return ok.length === 0 ? 'no run' : median(ok);
  };
  const list = (values: number[]): string => values.map((v) => fixed(v)).join(', ');
  const tag = `@${o.rate}/s`;
  const rows: Row[] = [];
  const lossOf = (rs: DriverResult[]): { missing: number; duplicates: number; sent: number } => ({
    missing: rs.reduce((n, r) => n + r.missing, 0),
    duplicates: rs.reduce((n, r) => n + r.duplicates, 0),
    sent: rs.reduce((n, r) => n + r.sent, 0),
  });

  for (const p of ['qqbot', 'telegram', 'discord'] as const) {
    const rs = results('three', p);
    const loss = lossOf(rs);
    rows.push(
      {
        section: SECTION,
        metric: `${LABEL[p]} echo p50 ${tag}, three platforms`,
        unit: 'ms',
        hermes: med(rs.map((r) => r.p50Ms)),
      },
      {
        section: SECTION,
        metric: `${LABEL[p]} echo p99 ${tag}, three platforms`,
        unit: 'ms',
        hermes: med(rs.map((r) => r.p99Ms)),
        note:
          `p99 of each run: ${list(rs.map((r) => r.p99Ms))} ms; max ${list(rs.map((r) => r.maxMs))} ms; ` +
          `sent ${list(rs.map((r) => r.achievedSendRate))}/s, replies ${list(rs.map((r) => r.replyRate))}/s; ` +
          `fake's own loop delay p99 ${list(rs.map((r) => r.loopDelayP99Ms))} ms (included)` +
          (p === 'telegram'
            ? '; Telegram is long polling: updates reach the gateway in getUpdates batches, so its latency includes the poll round trip (the fake answers a held poll 1 ms after an update, the next poll follows the batch being handled)'
            : ''),
      },
      {
        section: SECTION,
        metric: `${LABEL[p]} messages without reply / duplicates, three platforms`,
        unit: '',
        hermes: rs.length === 0 ? 'no run' : `${loss.missing} / ${loss.duplicates}`,
        target: '0 / 0',
        pass: rs.length === 0 ? null : loss.missing === 0 && loss.duplicates === 0,
        note:
          `of ${loss.sent.toLocaleString('en-US')} sent in ${rs.length} run(s) after the warm-up and in it; a reply counts when it reaches the fake within ${GRACE_MS / 1000} s of the last send` +
          (p === 'telegram'
            ? `; ${rs.reduce((n, r) => n + (r.counts.unconfirmedUpdates ?? 0), 0)} updates were still unconfirmed at the fake at the end (the poller takes at most polling.limit updates beyond the handled ones: those were held back at the platform, not dropped)`
            : ''),
      },
    );
  }

  const alone = results('qq-alone', 'qqbot');
  const three = results('three', 'qqbot');
  const aloneLoss = lossOf(alone);
  rows.push(
    {
      section: SECTION,
      metric: `QQ echo p50 ${tag}, QQ alone`,
      unit: 'ms',
      hermes: med(alone.map((r) => r.p50Ms)),
    },
    {
      section: SECTION,
      metric: `QQ echo p99 ${tag}, QQ alone`,
      unit: 'ms',
      hermes: med(alone.map((r) => r.p99Ms)),
      note:
        `p99 of each run: ${list(alone.map((r) => r.p99Ms))} ms; ${aloneLoss.missing} without reply, ` +
        `${aloneLoss.duplicates} duplicates; the same gateway config with only the qqbot instance`,
    },
  );
  const threeP99 = med(three.map((r) => r.p99Ms));
  const aloneP99 = med(alone.map((r) => r.p99Ms));
  const ratio =
    typeof threeP99 === 'number' && typeof aloneP99 === 'number' ? threeP99 / aloneP99 : null;
  const perRun = figures
    .filter((f) => f.variant === 'three')
    .map((f) => {
      const twin = runs('qq-alone').find((a) => a.repeat === f.repeat);
      const a = twin?.platforms.qqbot?.p99Ms;
      const t = f.platforms.qqbot?.p99Ms;
      return a !== undefined && t !== undefined && Number.isFinite(t / a)
        ? `${fixed(t / a)}×`
        : '—';
    });
  const lost =
    lossOf(three).missing + lossOf(three).duplicates + aloneLoss.missing + aloneLoss.duplicates;
  rows.push({
    section: SECTION,
    metric: 'QQ p99 with three platforms vs QQ alone',
    unit: 'ms',
    hermes: threeP99,
    ratio,
    ratioOf: 'QQ alone',
    target: '≤ 1.10×',
    pass: ratio === null ? null : ratio <= 1.1 && lost === 0,
    note: `median of ${three.length} three-platform run(s) over the median of ${alone.length} QQ-alone run(s), interleaved; each repeat's ratio ${perRun.join(', ')}; fails as well when a reply was lost or duplicated`,
  });

  for (const v of ['three', 'qq-alone'] as const) {
    const gs = runs(v).map((f) => f.gateway);
    const name = v === 'three' ? 'three platforms' : 'QQ alone';
    // Whether the gateway kept up: replies back per second over messages sent per second.
    const kept = runs(v).map((f) => {
      const rs = Object.values(f.platforms);
      const sent = rs.reduce((n, r) => n + r.achievedSendRate, 0);
      return sent > 0 ? rs.reduce((n, r) => n + r.replyRate, 0) / sent : NaN;
    });
    const keptMedian = med(kept);
    rows.push(
      {
        section: SECTION,
        metric: `replies/s ÷ messages/s sent, ${name}`,
        unit: '',
        hermes: keptMedian,
        target: '≥ 0.99 (kept up)',
        pass: typeof keptMedian === 'number' ? keptMedian >= 0.99 : null,
        note:
          `each run: ${list(kept)}; events the gateway shed at its queue bounds ` +
          `(GW_ERR_HANDLER_QUEUE_OVERFLOW, by design under overload): ${gs.map((g) => g.overflowDropped).join(', ')}`,
      },
      {
        section: SECTION,
        metric: `gateway CPU, ${name}`,
        unit: 'cores',
        hermes: med(gs.map((g) => g.cpuShare)),
        note:
          `over the measured ${o.seconds} s; each run: ${list(gs.map((g) => g.cpuShare ?? NaN))}; ` +
          `share of that time its main thread was runnable but waiting for a CPU (the machine's ` +
          `other load): ${list(gs.map((g) => g.runQueueShare ?? NaN))}`,
      },
      {
        section: SECTION,
        metric: `gateway RSS start → end, ${name}`,
        unit: '',
        hermes:
          gs.length === 0
            ? 'no run'
            : `${fixed(med(gs.map((g) => g.rssStartMb)) as number, 0)} → ${fixed(med(gs.map((g) => g.rssEndMb)) as number, 0)} MB`,
        note:
          `growth over the load (median): ${fixed(med(gs.map((g) => (g.rssEndMb ?? NaN) - (g.rssStartMb ?? NaN))) as number, 1)} MB ` +
          `(${fixed(med(gs.map((g) => ((g.rssEndMb ?? NaN) / (g.rssStartMb ?? NaN) - 1) * 100)) as number, 1)} %); ` +
          `after the warm-up ${fixed(med(gs.map((g) => g.rssAfterWarmupMb)) as number, 0)} MB, peak ${fixed(med(gs.map((g) => g.rssPeakMb)) as number, 0)} MB; ` +
          `start: connected and idle, end: the last message sent`,
      },
    );
  }
  const loops = figures.flatMap((f) => Object.values(f.platforms));
  rows.push({
    section: SECTION,
    metric: "fakes' loop delay p99 (worst run)",
    unit: 'ms',
    hermes: loops.length === 0 ? 'no run' : Math.max(...loops.map((r) => r.loopDelayP99Ms)),
    note:
      `each fake in its own process; max loop delay ${fixed(Math.max(0, ...loops.map((r) => r.loopDelayMaxMs)), 0)} ms, ` +
      `fake CPU up to ${fixed(Math.max(0, ...loops.map((r) => r.cpuShare)) * 100, 0)}% of a core; ` +
      `${chats} chats per platform, ${o.warmupSeconds} s warm-up not counted`,
  });
  const crashed = figures.filter((f) => !f.gateway.survived || f.stop.exitCode !== 0);
  const violated = figures.filter((f) => Object.keys(f.violations).length > 0);
  if (crashed.length > 0 || violated.length > 0 || failures.length > 0) {
    rows.push({
      section: SECTION,
      metric: 'runs that failed, crashed or broke a protocol',
      unit: '',
      hermes: failures.length + crashed.length + violated.length,
      target: '0',
      pass: false,
      note: [
        ...failures,
        ...crashed.map((f) =>
          f.gateway.survived
            ? `${f.variant} #${f.repeat + 1}: gateway exited ${String(f.stop.exitCode)} on SIGTERM`
            : `${f.variant} #${f.repeat + 1}: gateway exited ${String(f.gateway.exitCode)} during the load`,
        ),
        ...violated.map((f) => `${f.variant} #${f.repeat + 1}: ${JSON.stringify(f.violations)}`),
      ].join('; '),
    });
  }
  return { rows, raw: { rate: o.rate, chats, figures, failures } };
}
