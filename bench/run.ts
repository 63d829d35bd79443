/**
 * `npm run bench [-- flags]`: every comparison of GitHub issue 6, side by side in one run on
 * this machine. Prints a table and writes bench/results/latest.json. See bench/README.md.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PEERS, peerVersion } from './lib/peers.js';
import { machineInfo, renderTable, writeReport, type Report, type Row } from './lib/report.js';
import { BENCH_DIR, DIST_BENCH, cpuTotals, errorText } from './lib/util.js';
import { runFootprint } from './sections/footprint.js';
import { runLatency } from './sections/latency.js';
import { runRecovery } from './sections/recovery.js';
import { runScaleOut } from './sections/scale-out.js';
import { runStateWrites } from './sections/state-writes.js';
import { runDiscord } from './sections/discord.js';
import { runTelegram } from './sections/telegram.js';
import { runThreePlatforms } from './sections/three-platforms.js';
import { CLIENTS, runThroughput } from './sections/throughput.js';

const SECTIONS = [
  'throughput',
  'latency',
  'recovery',
  'footprint',
  'state',
  'telegram',
  'scale-out',
  'discord',
  'three-platforms',
] as const;
type Section = (typeof SECTIONS)[number];

const HELP = `usage: npm run bench [-- options]

  --quick                  a fast smoke run of every section (about 2 minutes)
  --sections LIST          comma-separated subset of: ${SECTIONS.join(', ')}
  --out PATH               where to write the JSON (default bench/results/latest.json)

 1 throughput   --events N (200000; quick 20000)   --repeats N (3; quick 1)
                --clients LIST (${CLIENTS.map((c) => c.id).join(',')})
                --producer raw|dispatch (raw)   --tp-heartbeat-ms N (5000)
 2 latency      --latency-rates LIST (1000,5000)   --latency-seconds N (30; quick 5)
                --latency-warmup-seconds N (5; quick 1): not counted in p50/p99/max
                --latency-concurrency N (the gateway's handler.concurrency; default: its own)
                --latency-store-off-rates LIST (1000): these rates again with the delivery store off
                --latency-floor-rates LIST (1000): these rates again with a bare echo client (the floor)
 3 recovery     --heartbeat-ms N (200)   --half-open-runs N (10; quick 4)
                --resume-runs N (5; quick 2)   --fatal-runs N (5; quick 2)
                --detection-runs N (10; quick 2): runs of bench/qq-detection.js, 0 to skip
 4 footprint    --startup-runs N (5; quick 2)   --idle-seconds N (60; quick 5)
                --idle-runs N (3; quick 1): gateways idling side by side, median RSS
                --rss-events N (1000000; quick 50000)   --rss-rate N (10000)
                --reply-every N (20)
 5 state        --state-seconds N (5; quick 2)
 6 telegram     --tg-updates N (50000; quick 5000)   --tg-repeats N (3; quick 1)
                --tg-latency-messages N (300; quick 60)   --tg-latency-rate N (20)
                --tg-half-open-runs N (5; quick 2)   --tg-timeout-s N (2)   --tg-slack-ms N (1000)
                --tg-grammy-window-ms N (10000; quick 5000)
 7 scale-out    --scale-workers LIST (1,2,4)   --scale-events N (5000; quick 1000)
                --scale-rate N (200)   --scale-seconds N (10; quick 3)
                --scale-repeats N (3; quick 1): needs nats-server (docs/scale-out.md)
 8 discord      --dc-events N (100000; quick 10000)   --dc-repeats N (3; quick 1)
                --dc-latency-rates LIST (100,200)   --dc-latency-seconds N (6; quick 3)
                --dc-zombie-interval-ms N (500)   --dc-zombie-runs N (5; quick 2)
 9 three-platforms: QQ + Telegram + Discord in one gateway beside QQ alone, interleaved
                --three-rate N (1000 messages/s per platform)   --three-chats N (max(1000, 2 × rate))
                --three-seconds N (30; quick 3)   --three-warmup-seconds N (5; quick 1)
                --three-repeats N (3; quick 1)
`;

interface Options {
  quick: boolean;
  sections: Section[];
  out: string;
  events: number;
  repeats: number;
  clients: string[] | undefined;
  producer: 'raw' | 'dispatch';
  tpHeartbeatMs: number;
  latencyRates: number[];
  latencySeconds: number;
  latencyConcurrency: number | undefined;
  latencyStoreOffRates: number[];
  latencyFloorRates: number[];
  latencyWarmupSeconds: number;
  heartbeatMs: number;
  halfOpenRuns: number;
  resumeRuns: number;
  fatalRuns: number;
  detectionRuns: number;
  startupRuns: number;
  idleSeconds: number;
  idleRuns: number;
  rssEvents: number;
  rssRate: number;
  replyEvery: number;
  stateSeconds: number;
  tgUpdates: number;
  tgRepeats: number;
  tgLatencyMessages: number;
  tgLatencyRate: number;
  tgHalfOpenRuns: number;
  tgTimeoutS: number;
  tgSlackMs: number;
  tgGrammyWindowMs: number;
  scaleWorkers: number[];
  scaleEvents: number;
  scaleRate: number;
  scaleSeconds: number;
  scaleRepeats: number;
  dcEvents: number;
  dcRepeats: number;
  dcLatencyRates: number[];
  dcLatencySeconds: number;
  dcZombieIntervalMs: number;
  dcZombieRuns: number;
  threeRate: number;
  threeSeconds: number;
  threeWarmupSeconds: number;
  threeRepeats: number;
  threeChats: number | undefined;
}

function parseOptions(argv: string[]): Options | null {
  const str = { type: 'string' } as const;
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean', short: 'h' },
      quick: { type: 'boolean' },
      sections: str,
      out: str,
      events: str,
      repeats: str,
      clients: str,
      producer: str,
      'tp-heartbeat-ms': str,
      'latency-rates': str,
      'scale-workers': str,
      'scale-events': str,
      'scale-rate': str,
      'scale-seconds': str,
      'scale-repeats': str,
      'latency-seconds': str,
      'latency-concurrency': str,
      'latency-store-off-rates': str,
      'latency-floor-rates': str,
      'latency-warmup-seconds': str,
      'heartbeat-ms': str,
      'half-open-runs': str,
      'resume-runs': str,
      'fatal-runs': str,
      'detection-runs': str,
      'startup-runs': str,
      'idle-seconds': str,
      'idle-runs': str,
      'rss-events': str,
      'rss-rate': str,
      'reply-every': str,
      'state-seconds': str,
      'tg-updates': str,
      'tg-repeats': str,
      'tg-latency-messages': str,
      'tg-latency-rate': str,
      'tg-half-open-runs': str,
      'tg-timeout-s': str,
      'tg-slack-ms': str,
      'tg-grammy-window-ms': str,
      'dc-events': str,
      'dc-repeats': str,
      'dc-latency-rates': str,
      'dc-latency-seconds': str,
      'dc-zombie-interval-ms': str,
      'dc-zombie-runs': str,
      'three-rate': str,
      'three-seconds': str,
      'three-warmup-seconds': str,
      'three-repeats': str,
      'three-chats': str,
    },
  });
  if (values.help) return null;
  const quick = values.quick === true;
  const num = (value: string | undefined, full: number, fast = full): number => {
    if (value === undefined) return quick ? fast : full;
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0) throw new Error(`not a non-negative number: ${value}`);
    return n;
  };
  const list = (value: string | undefined): string[] | undefined =>
    value
      ?.split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
  const sections = (list(values.sections) ?? [...SECTIONS]) as Section[];
  for (const s of sections) {
    if (!SECTIONS.includes(s)) throw new Error(`unknown section ${s}`);
  }
  const producer = values.producer ?? 'raw';
  if (producer !== 'raw' && producer !== 'dispatch')
    throw new Error('--producer is raw or dispatch');
  return {
    quick,
    sections,
    out: values.out ?? join(BENCH_DIR, 'results', 'latest.json'),
    events: num(values.events, 200_000, 20_000),
    repeats: Math.max(1, num(values.repeats, 3, 1)),
    clients: list(values.clients),
    producer,
    tpHeartbeatMs: num(values['tp-heartbeat-ms'], 5000),
    latencyRates: (list(values['latency-rates']) ?? ['1000', '5000']).map(Number),
    latencySeconds: num(values['latency-seconds'], 30, 5),
    latencyWarmupSeconds: num(values['latency-warmup-seconds'], 5, 1),
    latencyConcurrency:
      values['latency-concurrency'] === undefined
        ? undefined
        : num(values['latency-concurrency'], 8),
    latencyStoreOffRates: (list(values['latency-store-off-rates']) ?? ['1000']).map(Number),
    latencyFloorRates: (list(values['latency-floor-rates']) ?? ['1000']).map(Number),
    heartbeatMs: num(values['heartbeat-ms'], 200),
    halfOpenRuns: num(values['half-open-runs'], 10, 4),
    resumeRuns: num(values['resume-runs'], 5, 2),
    fatalRuns: num(values['fatal-runs'], 5, 2),
    detectionRuns: num(values['detection-runs'], 10, 2),
    startupRuns: num(values['startup-runs'], 5, 2),
    idleSeconds: num(values['idle-seconds'], 60, 5),
    idleRuns: Math.max(1, num(values['idle-runs'], 3, 1)),
    rssEvents: num(values['rss-events'], 1_000_000, 50_000),
    rssRate: num(values['rss-rate'], 10_000),
    replyEvery: Math.max(1, num(values['reply-every'], 20)),
    stateSeconds: num(values['state-seconds'], 5, 2),
    tgUpdates: Math.max(1, num(values['tg-updates'], 50_000, 5_000)),
    tgRepeats: Math.max(1, num(values['tg-repeats'], 3, 1)),
    tgLatencyMessages: Math.max(1, num(values['tg-latency-messages'], 300, 60)),
    tgLatencyRate: Math.max(1, num(values['tg-latency-rate'], 20)),
    tgHalfOpenRuns: Math.max(1, num(values['tg-half-open-runs'], 5, 2)),
    tgTimeoutS: num(values['tg-timeout-s'], 2),
    tgSlackMs: Math.max(1, num(values['tg-slack-ms'], 1000)),
    tgGrammyWindowMs: num(values['tg-grammy-window-ms'], 10_000, 5_000),
    scaleWorkers: (list(values['scale-workers']) ?? ['1', '2', '4']).map(Number),
    scaleEvents: num(values['scale-events'], 5_000, 1_000),
    scaleRate: num(values['scale-rate'], 200),
    scaleSeconds: num(values['scale-seconds'], 10, 3),
    scaleRepeats: Math.max(1, num(values['scale-repeats'], 3, 1)),
    dcEvents: Math.max(1, num(values['dc-events'], 100_000, 10_000)),
    dcRepeats: Math.max(1, num(values['dc-repeats'], 3, 1)),
    dcLatencyRates: (list(values['dc-latency-rates']) ?? ['100', '200']).map(Number),
    dcLatencySeconds: Math.max(2, num(values['dc-latency-seconds'], 6, 3)),
    dcZombieIntervalMs: Math.max(50, num(values['dc-zombie-interval-ms'], 500)),
    dcZombieRuns: Math.max(1, num(values['dc-zombie-runs'], 5, 2)),
    threeRate: Math.max(1, num(values['three-rate'], 1000)),
    threeSeconds: Math.max(1, num(values['three-seconds'], 30, 3)),
    threeWarmupSeconds: num(values['three-warmup-seconds'], 5, 1),
    threeRepeats: Math.max(1, num(values['three-repeats'], 3, 1)),
    threeChats:
      values['three-chats'] === undefined ? undefined : Math.max(1, num(values['three-chats'], 1)),
  };
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/**
 * The QQ adapter engineer's own detection bench (bench/qq-detection.ts: in-process adapter,
 * half-open and fatal → exit), run as it is and its table kept beside ours.
 */
async function qqDetection(
  runs: number,
): Promise<{ output: string; exitCode: number | null } | null> {
  const script = join(DIST_BENCH, 'qq-detection.js');
  if (runs === 0 || !existsSync(script)) return null;
  const child = spawn(process.execPath, [script, '--runs', String(runs)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
  const exitCode = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearTimeout(timer);
  return { output: output.trim(), exitCode };
}

function commandLine(argv: string[]): string {
  const args = argv.join(' ');
  if (process.env.npm_lifecycle_event === 'bench')
    return `npm run bench${args ? ` -- ${args}` : ''}`;
  return `node dist/bench/run.js${args ? ` ${args}` : ''}`;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  let options: Options | null;
  try {
    options = parseOptions(argv);
  } catch (err) {
    process.stderr.write(`bench: ${errorText(err)}\n\n${HELP}`);
    return 2;
  }
  if (options === null) {
    process.stdout.write(HELP);
    return 0;
  }
  const o = options;
  const startedAt = new Date().toISOString();
  const loadBefore = loadavg();
  const report: Report = {
    command: commandLine(argv),
    mode: o.quick ? 'quick' : 'full',
    options: { ...o },
    machine: {
      ...machineInfo(),
      peers: Object.fromEntries(PEERS.map((p) => [p, peerVersion(p)])),
      loadavgBefore: loadBefore,
    },
    startedAt,
    finishedAt: '',
    rows: [],
    raw: {},
    errors: [],
  };
  if (loadBefore[0]! > 1) {
    log(
      `warning: load average ${loadBefore[0]!.toFixed(1)} before the run: other processes share the 2 cores, figures will be noisy`,
    );
  }
  const contention: Array<{ section: string; seconds: number; foreignCores: number }> = [];
  const run = async (
    section: Section,
    title: string,
    body: () => Promise<{ rows: Row[]; raw: unknown }>,
  ): Promise<void> => {
    if (!o.sections.includes(section)) return;
    log(`\n== ${title}`);
    const t0 = Date.now();
    const cpu0 = cpuTotals();
    try {
      const { rows, raw } = await body();
      report.rows.push(...rows);
      report.raw[section] = raw;
    } catch (err) {
      const message = errorText(err);
      log(`  FAILED: ${message}`);
      report.errors.push({ section, error: message });
    }
    const seconds = (Date.now() - t0) / 1000;
    const cpu1 = cpuTotals();
    if (cpu0 !== null && cpu1 !== null) {
      // Other processes on the machine during the section: the figures' noise floor.
      const foreign =
        (cpu1.machineBusyMs - cpu0.machineBusyMs - (cpu1.oursMs - cpu0.oursMs)) / 1000 / seconds;
      contention.push({ section, seconds, foreignCores: Math.max(0, foreign) });
    }
    log(`  (${seconds.toFixed(0)} s)`);
  };

  await run(
    'throughput',
    `1 inbound throughput: ${o.events.toLocaleString('en-US')} C2C dispatches, ${o.repeats} repeat(s)`,
    () =>
      runThroughput({
        events: o.events,
        repeats: o.repeats,
        heartbeatIntervalMs: o.tpHeartbeatMs,
        producer: o.producer,
        ...(o.clients && { only: o.clients }),
        log,
      }),
  );
  await run(
    'latency',
    `2 echo latency: ${o.latencyRates.join(', ')} events/s for ${o.latencySeconds} s`,
    () =>
      runLatency({
        rates: o.latencyRates,
        seconds: o.latencySeconds,
        warmupSeconds: o.latencyWarmupSeconds,
        storeOffRates: o.latencyStoreOffRates,
        floorRates: o.latencyFloorRates,
        ...(o.latencyConcurrency !== undefined && { concurrency: o.latencyConcurrency }),
        log,
      }),
  );
  await run('recovery', '3 detection and recovery', async () => {
    const result = await runRecovery({
      halfOpenRuns: o.halfOpenRuns,
      heartbeatIntervalMs: o.heartbeatMs,
      resumeRuns: o.resumeRuns,
      fatalRuns: o.fatalRuns,
      log,
    });
    log(`  bench/qq-detection.js (the adapter's own detection bench), ${o.detectionRuns} runs`);
    const detection = await qqDetection(o.detectionRuns).catch((err: unknown) => ({
      output: errorText(err),
      exitCode: null,
    }));
    return { rows: result.rows, raw: { ...(result.raw as object), qqDetection: detection } };
  });
  await run('footprint', '4 footprint', () =>
    runFootprint({
      startupRuns: o.startupRuns,
      idleSeconds: o.idleSeconds,
      idleRuns: o.idleRuns,
      rssEvents: o.rssEvents,
      rssRate: o.rssRate,
      replyEvery: o.replyEvery,
      log,
    }),
  );
  await run('state', '5 state writes', () => runStateWrites({ seconds: o.stateSeconds, log }));
  await run('telegram', '6 telegram (fake Bot API): throughput, echo latency, half-open poll', () =>
    runTelegram({
      updates: o.tgUpdates,
      repeats: o.tgRepeats,
      latencyMessages: o.tgLatencyMessages,
      latencyRate: o.tgLatencyRate,
      halfOpenRuns: o.tgHalfOpenRuns,
      halfOpenTimeoutS: o.tgTimeoutS,
      halfOpenSlackMs: o.tgSlackMs,
      grammyWindowMs: o.tgGrammyWindowMs,
      log,
    }),
  );
  await run(
    'scale-out',
    `7 scale-out: in-process vs NATS JetStream with ${o.scaleWorkers.join(', ')} workers`,
    () =>
      runScaleOut({
        workers: o.scaleWorkers,
        events: o.scaleEvents,
        rate: o.scaleRate,
        seconds: o.scaleSeconds,
        repeats: o.scaleRepeats,
        log,
      }),
  );
  await run(
    'discord',
    `8 discord (fake gateway + REST): ${o.dcEvents.toLocaleString('en-US')} MESSAGE_CREATE, echo latency, zombie detection`,
    () =>
      runDiscord({
        events: o.dcEvents,
        repeats: o.dcRepeats,
        latencyRates: o.dcLatencyRates,
        latencySeconds: o.dcLatencySeconds,
        zombieIntervalMs: o.dcZombieIntervalMs,
        zombieRuns: o.dcZombieRuns,
        log,
      }),
  );
  await run(
    'three-platforms',
    `9 three platforms in one gateway: QQ + Telegram + Discord at ${o.threeRate}/s each vs QQ alone, ${o.threeRepeats} repeat(s)`,
    () =>
      runThreePlatforms({
        rate: o.threeRate,
        seconds: o.threeSeconds,
        warmupSeconds: o.threeWarmupSeconds,
        repeats: o.threeRepeats,
        ...(o.threeChats !== undefined && { chats: o.threeChats }),
        log,
      }),
  );

  report.raw.contention = contention;
  for (const c of contention) {
    report.rows.push({
      section: '0 machine',
      metric: `other processes' CPU during ${c.section}`,
      unit: 'cores',
      hermes: c.foreignCores,
      target: '≈ 0 (quiet machine)',
      ...(c.foreignCores > 0.2 && {
        note: `the machine was shared during ${c.section}: figures are noisier than on a quiet machine`,
      }),
    });
  }
  report.finishedAt = new Date().toISOString();
  report.machine.loadavgAfter = loadavg();
  const table = renderTable(report.rows);
  const m = report.machine;
  process.stdout.write(
    `\nhermes-gateway bench (${report.mode}) — ${String(m.cpus)} × ${String(m.cpuModel)}, node ${String(m.node)}, ` +
      `${startedAt} → ${report.finishedAt}, load avg ${loadBefore.map((l) => l.toFixed(1)).join('/')}\n\n${table}\n`,
  );
  const detection = (report.raw.recovery as { qqDetection?: { output: string } | null } | undefined)
    ?.qqDetection;
  if (detection) process.stdout.write(`\nbench/qq-detection.js:\n${detection.output}\n`);
  if (report.errors.length > 0) {
    process.stdout.write(
      `\nerrors:\n${report.errors.map((e) => `  ${e.section}: ${e.error}`).join('\n')}\n`,
    );
  }
  await writeReport(o.out, report);
  process.stdout.write(`\nwritten to ${o.out}\n`);
  return report.errors.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(
      `bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
