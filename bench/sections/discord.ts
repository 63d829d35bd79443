/**
 * The Discord section (issue 17), on the fake Discord (src/fakes/discord) over loopback:
 *
 * 1. MESSAGE_CREATE/s on one connection: hermes-gateway's adapter (behind the real Runner), a
 *    bare `ws` + `JSON.parse` ceiling and @discordjs/ws (unpatched, bench/package.json), each
 *    in its own child process; repeats interleaved, the median reported;
 * 2. echo latency: the real CLI with the echo handler, dispatch written → reply created at the
 *    fake's REST endpoint, open-loop at a fixed rate;
 * 3. zombie detection: the link goes silent right after an ACK (the worst case), time until the
 *    adapter declares it dead, as a multiple of the heartbeat interval.
 *
 * Section 8 of `npm run bench` (`--sections discord`, options `--dc-*`, see bench/run.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { AdapterContext } from '../../src/adapters/contract.js';
import { DiscordAdapter } from '../../src/adapters/discord/adapter.js';
import { discordSchema, toSettings } from '../../src/adapters/discord/config.js';
import { Secret } from '../../src/config/secret.js';
import { FakeDiscordServer } from '../../src/fakes/discord/index.js';
import { createLogger } from '../../src/log/logger.js';
import { ClientProcess } from '../lib/ipc.js';
import type { Cell, Row } from '../lib/report.js';
import { DIST_BENCH, GATEWAY_CLI, errorText, median, quantile } from '../lib/util.js';

export const DISCORD_CLIENTS = [
  { id: 'hermes', label: 'hermes-gateway (discord adapter + runner)', script: 'discord-hermes.js' },
  { id: 'ceiling', label: 'bare ws + JSON.parse (ceiling)', script: 'discord-ceiling.js' },
  { id: 'djs', label: '@discordjs/ws', script: 'discord-djs.js' },
] as const;

const INTENTS = 37377;

export interface DiscordThroughput {
  client: string;
  runs: number[];
  medianPerSecond: number;
  cpuUsPerEvent: number;
}

async function oneRun(
  script: string,
  events: number,
): Promise<{ perSecond: number; cpuUsPerEvent: number }> {
  const fake = await FakeDiscordServer.start({ heartbeatIntervalMs: 30_000, identifyWindowMs: 0 });
  const workDir = await mkdtemp(join(tmpdir(), 'hgw-bench-discord-'));
  const client = new ClientProcess(join(DIST_BENCH, 'clients', script), {
    tokenUrl: '',
    apiBase: fake.apiBase,
    wsUrl: fake.gatewayUrl,
    appId: '',
    clientSecret: fake.settings.token,
    expected: events,
    intents: INTENTS,
    workDir,
  });
  try {
    const ready = await client.next(['ready'], 20_000);
    if (ready.type !== 'ready') throw new Error(`client: ${JSON.stringify(ready)}`);
    await fake.until(() => fake.liveSessions() === 1, 'a live session', 5_000);
    await fake.produceMessages(events);
    const done = await client.next(['done'], 120_000);
    if (done.type !== 'done') throw new Error(`client: ${JSON.stringify(done)}`);
    const seconds = (done.lastAt - done.firstAt) / 1000;
    return {
      perSecond: Math.round(events / seconds),
      cpuUsPerEvent: (done.cpuUserUs + done.cpuSystemUs) / events,
    };
  } finally {
    await client.stop();
    await fake.close();
    await rm(workDir, { recursive: true, force: true });
  }
}

export async function runDiscordThroughput(
  events: number,
  repeats: number,
  log: (line: string) => void,
): Promise<DiscordThroughput[]> {
  const samples = new Map<string, { rates: number[]; cpu: number[] }>();
  for (let r = 0; r < repeats; r++) {
    for (const c of DISCORD_CLIENTS) {
      const run = await oneRun(c.script, events);
      const entry = samples.get(c.id) ?? { rates: [], cpu: [] };
      entry.rates.push(run.perSecond);
      entry.cpu.push(run.cpuUsPerEvent);
      samples.set(c.id, entry);
      log(
        `  ${c.label} run ${r + 1}/${repeats}: ${Math.round(run.perSecond).toLocaleString('en-US')} MESSAGE_CREATE/s`,
      );
    }
  }
  return DISCORD_CLIENTS.map((c) => {
    const s = samples.get(c.id)!;
    return {
      client: c.label,
      runs: s.rates,
      medianPerSecond: median(s.rates),
      cpuUsPerEvent: Number(median(s.cpu).toFixed(2)),
    };
  });
}

/** Echo latency through the real CLI: dispatch written → message created at the fake. */
export async function runDiscordLatency(
  rate: number,
  seconds: number,
): Promise<{ rate: number; count: number; p50: number; p99: number; max: number }> {
  const fake = await FakeDiscordServer.start({
    heartbeatIntervalMs: 30_000,
    identifyWindowMs: 0,
    bucketLimit: { count: 1_000_000, windowMs: 1_000 },
    globalPerSecond: 1_000_000,
  });
  const dir = await mkdtemp(join(tmpdir(), 'hgw-bench-discord-lat-'));
  const configPath = join(dir, 'config.yaml');
  await writeFile(
    configPath,
    stringify({
      state_file: join(dir, 'gateway_state.json'),
      log_level: 'warn',
      handler: { type: 'echo' },
      platforms: {
        discord: {
          token: '${BENCH_DISCORD_TOKEN}',
          api_base: fake.apiBase,
          send: { global_per_second: 100_000 },
        },
      },
    }),
    { mode: 0o600 },
  );
  const child = spawn(process.execPath, [GATEWAY_CLI, 'run', '--config', configPath], {
    env: { ...process.env, BENCH_DISCORD_TOKEN: fake.settings.token, NOTIFY_SOCKET: '' },
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  try {
    await fake.until(() => fake.liveSessions() === 1, 'a live session', 20_000);
    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    const total = rate * seconds;
    const warmup = rate; // the first second is not counted
    const start = performance.now();
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const content = `lat ${i}`;
      sentAt.set(content, Date.now());
      fake.dispatchMessage({
        content,
        guildId: null,
        channelId: `32000000000000${String(1000 + (i % 500))}`,
      });
    }
    await fake.until(() => fake.sent.length >= total, 'every echo', 30_000);
    for (const m of fake.sent) {
      const at = sentAt.get(String(m.body.content));
      const index = Number(String(m.body.content).split(' ')[1]);
      if (at !== undefined && index >= warmup) latencies.push(m.at - at);
    }
    latencies.sort((a, b) => a - b);
    return {
      rate,
      count: latencies.length,
      p50: Number(quantile(latencies, 0.5).toFixed(1)),
      p99: Number(quantile(latencies, 0.99).toFixed(1)),
      max: Number(latencies.at(-1)!.toFixed(1)),
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Zombie detection: silence right after an ACK → the adapter's verdict, in intervals. */
export async function runDiscordZombie(
  intervalMs: number,
  runs: number,
): Promise<{ intervalMs: number; multiples: number[]; median: number; max: number }> {
  const multiples: number[] = [];
  for (let r = 0; r < runs; r++) {
    const fake = await FakeDiscordServer.start({
      heartbeatIntervalMs: intervalMs,
      heartbeatDeadlineMs: null,
      identifyWindowMs: 0,
    });
    const adapter = new DiscordAdapter(
      toSettings(
        discordSchema.parse({
          token: new Secret(fake.settings.token),
          api_base: fake.apiBase,
          jitter: true,
        }),
      ),
    );
    const stop = new AbortController();
    const ctx: AdapterContext = {
      name: 'discord',
      log: createLogger({ level: 'fatal', env: {}, pretty: false }),
      transition: () => Promise.resolve(),
      note: () => undefined,
      touch: () => undefined,
      track: () => undefined,
      emit: () => undefined,
      resumePoint: null,
      saveSession: () => undefined,
      handledPosition: () => null,
      resumeOutcome: () => undefined,
      whenHandled: () => Promise.resolve(),
    };
    const life = adapter.run(ctx, stop.signal);
    try {
      await fake.until(() => fake.liveSessions() === 1, 'a session', 10_000);
      const beats = fake.records.heartbeats.length;
      await fake.until(() => fake.records.heartbeats.length > beats, 'a heartbeat', intervalMs * 3);
      const silentAt = Date.now();
      fake.goHalfOpen();
      await fake.until(
        () => adapter.stats.lastZombie !== null,
        'the zombie verdict',
        intervalMs * 4,
      );
      multiples.push(Number(((adapter.stats.lastZombie!.at - silentAt) / intervalMs).toFixed(3)));
    } finally {
      stop.abort();
      await life;
      await fake.close();
    }
  }
  return {
    intervalMs,
    multiples,
    median: median(multiples),
    max: Math.max(...multiples),
  };
}

export interface DiscordBenchOptions {
  events: number;
  repeats: number;
  latencyRates: number[];
  latencySeconds: number;
  zombieIntervalMs: number;
  zombieRuns: number;
  log: (line: string) => void;
}

const SECTION = '8 discord';
const DJS = '@discordjs/ws';

/** Section 8 of `npm run bench`: throughput, echo latency and zombie detection as rows. */
export async function runDiscord(o: DiscordBenchOptions): Promise<{ rows: Row[]; raw: unknown }> {
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};
  const failed = (err: unknown): string => `failed: ${errorText(err)}`;

  let throughput: DiscordThroughput[] | string;
  try {
    throughput = await runDiscordThroughput(o.events, o.repeats, o.log);
  } catch (err) {
    throughput = failed(err);
  }
  raw.throughput = throughput;
  const pick = (id: string, key: 'medianPerSecond' | 'cpuUsPerEvent'): Cell => {
    if (typeof throughput === 'string') return throughput;
    const label = DISCORD_CLIENTS.find((c) => c.id === id)!.label;
    return throughput.find((t) => t.client === label)?.[key] ?? null;
  };
  const ratio = (key: 'medianPerSecond' | 'cpuUsPerEvent'): number | null => {
    const h = pick('hermes', key);
    const c = pick('ceiling', key);
    return typeof h === 'number' && typeof c === 'number' && c > 0 ? h / c : null;
  };
  rows.push({
    section: SECTION,
    metric: 'MESSAGE_CREATE/s on one connection',
    unit: '/s',
    hermes: pick('hermes', 'medianPerSecond'),
    ceiling: pick('ceiling', 'medianPerSecond'),
    peers: { [DJS]: pick('djs', 'medianPerSecond') },
    ratio: ratio('medianPerSecond'),
    ratioOf: 'ceiling',
    note: `median of ${o.repeats} interleaved run(s) of ${o.events.toLocaleString('en-US')} DM MESSAGE_CREATE dispatches written by the fake as fast as the socket takes them; each client in its own process; hermes = the Discord adapter behind the real Runner, counted at dispatch`,
  });
  rows.push({
    section: SECTION,
    metric: 'CPU per MESSAGE_CREATE',
    unit: 'µs',
    hermes: pick('hermes', 'cpuUsPerEvent'),
    ceiling: pick('ceiling', 'cpuUsPerEvent'),
    peers: { [DJS]: pick('djs', 'cpuUsPerEvent') },
    ratio: ratio('cpuUsPerEvent'),
    ratioOf: 'ceiling',
    note: 'user + system CPU of the client process over the run / events, median of the runs',
  });

  const latency: unknown[] = [];
  for (const rate of o.latencyRates) {
    try {
      const l = await runDiscordLatency(rate, o.latencySeconds);
      latency.push(l);
      o.log(`  echo at ${rate}/s: p50 ${l.p50} ms, p99 ${l.p99} ms, max ${l.max} ms`);
      for (const [name, value] of [
        ['p50', l.p50],
        ['p99', l.p99],
      ] as const) {
        rows.push({
          section: SECTION,
          metric: `echo latency ${name} at ${rate}/s`,
          unit: 'ms',
          hermes: value,
          ...(name === 'p50' && {
            note: `${l.count} messages after a 1 s warm-up, DMs over 500 channels; dispatch written by the fake → message created at its REST endpoint; hermes is the real CLI (echo handler, pipeline, nonce sends)`,
          }),
        });
      }
    } catch (err) {
      latency.push(failed(err));
      rows.push({
        section: SECTION,
        metric: `echo latency p50 at ${rate}/s`,
        unit: 'ms',
        hermes: failed(err),
      });
    }
  }
  raw.latency = latency;

  try {
    const z = await runDiscordZombie(o.zombieIntervalMs, o.zombieRuns);
    raw.zombie = z;
    o.log(`  zombie detection: ${z.multiples.join(', ')} × the interval`);
    rows.push({
      section: SECTION,
      metric: `zombie detected (interval ${z.intervalMs} ms)`,
      unit: '× interval',
      hermes: z.median,
      target: '≤ 1.5 × interval',
      pass: z.max <= 1.5,
      note: `median of ${z.multiples.length} runs, max ${z.max} ×; the link goes silent right after an ACK (the worst case) → the adapter's zombie verdict (terminate, then Resume)`,
    });
  } catch (err) {
    raw.zombie = failed(err);
    rows.push({
      section: SECTION,
      metric: `zombie detected (interval ${o.zombieIntervalMs} ms)`,
      unit: '× interval',
      hermes: failed(err),
    });
  }
  return { rows, raw };
}
