/**
 * Section 2, echo latency: the real gateway CLI (child process, echo handler) against the fake.
 * The fake sends C2C messages at a fixed rate (open loop) spread over many users; latency is
 * from the moment the fake writes the dispatch to the moment the echo reply reaches the fake's
 * REST endpoint (both timed in the orchestrator, where the fake runs). At the rates of
 * `storeOffRates` the same run follows with the delivery store off (`delivery.enabled:
 * false`), side by side: what the durable path adds to the latency is the difference. At the
 * rates of `floorRates` a bare echo client (bench/clients/ceiling.ts, variant `echo`: a `ws`
 * socket and one keep-alive `http.request` per message, nothing between) runs the same load
 * right after: the floor this machine and this fake allow, beside which the gateway's figure
 * is read.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deliveryStorePath } from '../../src/delivery/store.js';
import type { FakeQQServer, SendRecord } from '../../src/fakes/qq/index.js';
import { c2cPayload, INTENTS, startFake, trimRecords, userPool } from '../lib/fake-host.js';
import { startGatewayWithFake } from '../lib/gateway-with-fake.js';
import { ClientProcess } from '../lib/ipc.js';
import { openLoop } from '../lib/load.js';
import type { Row } from '../lib/report.js';
import {
  collectGarbage,
  DIST_BENCH,
  max,
  procCpuMs,
  quantile,
  rssBytes,
  sleep,
} from '../lib/util.js';

export interface LatencyOptions {
  rates: number[];
  seconds: number;
  /** Events sent in the first this-many seconds are not counted (JIT warm-up). */
  warmupSeconds: number;
  /** `handler.concurrency` of the gateway; the production default when absent. */
  concurrency?: number;
  /** Rates run a second time with the delivery store off. */
  storeOffRates: number[];
  /** Rates run once more with the bare echo client instead of the gateway. */
  floorRates: number[];
  log: (line: string) => void;
}

/** What answers the fake: the gateway with its store on or off, or the bare echo client. */
export type LatencySubject = 'gateway' | 'gateway-store-off' | 'floor';

export interface LatencyFigure {
  rate: number;
  subject: LatencySubject;
  /** Whether the delivery store was on (the default) or off (false for the floor too). */
  store: boolean;
  sent: number;
  measured: number;
  replied: number;
  missing: number;
  duplicates: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  achievedRate: number;
  /** CPU share and RSS of whatever answered (the gateway, or the bare echo client). */
  gatewayCpuShare: number | null;
  gatewayRssMb: number | null;
  /** Event-loop delay p99 of the orchestrator (the fake's process): its own lag is in the figures. */
  fakeLoopDelayP99Ms: number;
  fakeLoopDelayMaxMs: number;
  fakeCpuShare: number;
  /** The slowest events: seconds since the first send, and latency (to find stalls). */
  slowest: Array<{ atSec: number; ms: number }>;
  /** Worst latency per second of the run. */
  worstPerSecondMs: number[];
  /** Worst latency of the events sent during the warm-up (not in p50/p99/max). */
  warmupMaxMs: number;
  /** Gateway log lines at warn or above during the run, by message (first 60 chars). */
  gatewayWarnings: Record<string, number>;
  /** Why the answerer stopped during the run; null when it kept answering to the end. */
  failure: string | null;
}

/** A started answerer: the gateway CLI or the bare echo client, each with the fake. */
interface Answerer {
  fake: FakeQQServer;
  pid: number;
  warnings: () => Record<string, number>;
  /** Why the answerer stopped during the run (it exited, or the bare client gave up); else null. */
  failure: () => string | null;
  close: () => Promise<void>;
}

/**
 * The fake's options here: it runs in this process, and everything it keeps per event past a
 * young-generation GC is copied by that GC, which stops the fake's loop and so shows in every
 * latency measured meanwhile. The section never resumes a session, so the fake keeps 100
 * dispatches for replay (0.1 s at 1,000/s) instead of 1,000 (see also trimRecords below).
 */
const FAKE_OPTIONS = { replayBufferSize: 100 };

async function startGateway(store: boolean, options: LatencyOptions): Promise<Answerer> {
  const { fake, gateway, stateFile, close } = await startGatewayWithFake({
    tag: 'latency',
    fake: FAKE_OPTIONS,
    config: {
      handler: {
        type: 'echo',
        ...(options.concurrency !== undefined && { concurrency: options.concurrency }),
      },
      // A top-level key: anything else in this patch that the config builder does not know
      // is dropped without a word (the store-off rows once ran with the store on).
      ...(!store && { top: { delivery: { enabled: false } } }),
    },
  });
  try {
    await gateway.waitState(
      stateFile,
      (d) => d.platforms.qqbot?.state === 'connected',
      'qqbot connected',
      20_000,
    );
    // The store's file exists once it is open: a row labelled store on or off is what it says.
    if (existsSync(deliveryStorePath(stateFile)) !== store) {
      throw new Error(`latency: the gateway ran with its delivery store ${store ? 'off' : 'on'}`);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return {
    fake,
    pid: gateway.pid,
    warnings: () => gateway.warnings(),
    failure: () => (gateway.running ? null : `the gateway exited with ${gateway.exitCode}`),
    close,
  };
}

async function startFloor(expected: number): Promise<Answerer> {
  const fake = await startFake(FAKE_OPTIONS);
  const workDir = await mkdtemp(join(tmpdir(), 'hgw-bench-latency-floor-'));
  const child = new ClientProcess(join(DIST_BENCH, 'clients', 'ceiling.js'), {
    tokenUrl: fake.tokenUrl,
    apiBase: fake.apiBase,
    wsUrl: fake.wsUrl,
    appId: fake.settings.appId,
    clientSecret: fake.settings.clientSecret,
    expected,
    intents: INTENTS,
    workDir,
    variant: 'echo',
  });
  const close = async (): Promise<void> => {
    await child.stop();
    await fake.close();
    await rm(workDir, { recursive: true, force: true });
  };
  try {
    const ready = await child.next(['ready'], 20_000);
    if (ready.type !== 'ready') {
      throw new Error(ready.type === 'error' ? ready.message : `bare echo client: ${ready.type}`);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return {
    fake,
    pid: child.pid,
    warnings: () => (child.stderr === '' ? {} : { [child.stderr.slice(0, 60)]: 1 }),
    failure: () => {
      const why = child.failure();
      return why === null ? null : `the bare echo client gave up: ${why.slice(0, 200)}`;
    },
    close,
  };
}

async function runRate(
  rate: number,
  subject: LatencySubject,
  options: LatencyOptions,
): Promise<LatencyFigure> {
  const total = Math.round(rate * options.seconds);
  const answerer =
    subject === 'floor'
      ? await startFloor(total)
      : await startGateway(subject === 'gateway', options);
  const { fake } = answerer;
  try {
    const users = userPool(Math.min(20_000, Math.max(1000, rate * 2)));
    const payloadList = Array.from({ length: total }, (_, i) => c2cPayload(i, users));
    const index = new Map(payloadList.map((p, i) => [p.id, i]));
    const sentAt = new Float64Array(total).fill(NaN);
    const replyAt = new Float64Array(total).fill(NaN);
    let duplicates = 0;
    let replied = 0;
    const onSent = (record: SendRecord): void => {
      const now = performance.now();
      const msgId = (record.body as { msg_id?: unknown } | undefined)?.msg_id;
      const i = typeof msgId === 'string' ? index.get(msgId) : undefined;
      if (i === undefined) return;
      if (Number.isNaN(replyAt[i]!)) {
        replyAt[i] = now;
        replied += 1;
      } else duplicates += 1;
    };
    fake.on('message-sent', onSent);
    // The set-up's garbage (this run's payloads, the last run's arrays) collected now, not by
    // a major GC of this process, where the fake runs, in the middle of the timed run.
    collectGarbage();
    // A little traffic first, so the first measured events do not pay for lazy set-up.
    await sleep(200);
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const cpu0 = process.cpuUsage();
    const gwCpu0 = procCpuMs(answerer.pid);
    const t0 = performance.now();
    const { seconds } = await openLoop(rate, total, (i) => {
      sentAt[i] = performance.now();
      fake.dispatch('C2C_MESSAGE_CREATE', payloadList[i]);
      // Records nobody reads here: dropped young (0.2 s), not kept for 5-10 s and copied by
      // every scavenge of the fake's heap on the way to the old generation.
      if (i % 200 === 199) trimRecords(fake, 0);
    });
    // Replies still in flight: give them a bounded grace.
    const graceEnd = Date.now() + 10_000;
    while (replied < total && Date.now() < graceEnd) await sleep(5);
    const elapsed = (performance.now() - t0) / 1000;
    const gwCpu1 = procCpuMs(answerer.pid);
    const cpu = process.cpuUsage(cpu0);
    loop.disable();
    const rss = rssBytes(answerer.pid);
    fake.off('message-sent', onSent);
    const gatewayWarnings = answerer.warnings();
    const failure = answerer.failure();
    const warmupEnd = t0 + options.warmupSeconds * 1000;
    const latencies: number[] = [];
    const timed: Array<{ atSec: number; ms: number }> = [];
    const worstPerSecondMs: number[] = [];
    let missing = 0;
    let warmupMaxMs = 0;
    for (let i = 0; i < total; i++) {
      if (sentAt[i]! < warmupEnd) {
        if (!Number.isNaN(replyAt[i]!))
          warmupMaxMs = Math.max(warmupMaxMs, replyAt[i]! - sentAt[i]!);
        continue;
      }
      if (Number.isNaN(replyAt[i]!)) {
        missing += 1;
        continue;
      }
      const ms = replyAt[i]! - sentAt[i]!;
      const atSec = (sentAt[i]! - t0) / 1000;
      latencies.push(ms);
      timed.push({ atSec, ms });
      const second = Math.floor(atSec);
      worstPerSecondMs[second] = Math.max(worstPerSecondMs[second] ?? 0, ms);
    }
    const slowest = timed
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 10)
      .map((x) => ({ atSec: Math.round(x.atSec * 1000) / 1000, ms: Math.round(x.ms * 10) / 10 }));
    return {
      rate,
      subject,
      store: subject === 'gateway',
      sent: total,
      measured: latencies.length,
      replied,
      missing,
      duplicates,
      p50Ms: quantile(latencies, 0.5),
      p99Ms: quantile(latencies, 0.99),
      maxMs: max(latencies),
      achievedRate: total / seconds,
      gatewayCpuShare:
        gwCpu0 === null || gwCpu1 === null ? null : (gwCpu1 - gwCpu0) / 1000 / elapsed,
      gatewayRssMb: rss === null ? null : rss / 2 ** 20,
      fakeLoopDelayP99Ms: loop.percentile(99) / 1e6,
      fakeLoopDelayMaxMs: loop.max / 1e6,
      slowest,
      warmupMaxMs,
      gatewayWarnings,
      failure,
      worstPerSecondMs: Array.from(worstPerSecondMs, (v) => Math.round((v ?? 0) * 10) / 10),
      fakeCpuShare: (cpu.user + cpu.system) / 1e6 / elapsed,
    };
  } finally {
    await answerer.close();
  }
}

const SUBJECT_LABEL: Record<LatencySubject, string> = {
  gateway: '',
  'gateway-store-off': ' (store off)',
  floor: ' (bare echo floor)',
};

export async function runLatency(
  options: LatencyOptions,
): Promise<{ rows: Row[]; raw: LatencyFigure[] }> {
  const figures: LatencyFigure[] = [];
  for (const rate of options.rates) {
    const subjects: LatencySubject[] = ['gateway'];
    if (options.storeOffRates.includes(rate)) subjects.push('gateway-store-off');
    if (options.floorRates.includes(rate)) subjects.push('floor');
    for (const subject of subjects) {
      const label = `${rate}/s${SUBJECT_LABEL[subject]}`;
      options.log(`  ${label} for ${options.seconds} s`);
      const f = await runRate(rate, subject, options);
      figures.push(f);
      const who = subject === 'floor' ? 'bare client' : 'gateway';
      options.log(
        `  ${label}: p50 ${f.p50Ms.toFixed(2)} ms, p99 ${f.p99Ms.toFixed(2)} ms, max ${f.maxMs.toFixed(1)} ms, ` +
          `${f.missing} missing, ${f.duplicates} duplicate replies, ${who} CPU ${((f.gatewayCpuShare ?? NaN) * 100).toFixed(0)}%, ` +
          `fake loop delay p99 ${f.fakeLoopDelayP99Ms.toFixed(1)} ms (max ${f.fakeLoopDelayMaxMs.toFixed(0)} ms)`,
      );
      options.log(
        `  worst latency per second (ms): ${f.worstPerSecondMs.map((v) => v.toFixed(0)).join(' ')}`,
      );
      if (f.failure !== null) options.log(`  ${label}: ${f.failure}`);
    }
  }
  const rows: Row[] = [];
  for (const f of figures) {
    const tag = `@${f.rate}/s${SUBJECT_LABEL[f.subject]}`;
    const lost = f.missing > 0 || f.duplicates > 0 || f.failure !== null;
    const floor =
      f.subject === 'gateway'
        ? figures.find((g) => g.subject === 'floor' && g.rate === f.rate)
        : undefined;
    const who = f.subject === 'floor' ? 'bare echo client' : 'gateway';
    rows.push(
      {
        section: '2 echo latency',
        metric: `p50 ${tag}`,
        unit: 'ms',
        hermes: f.p50Ms,
        ...(floor !== undefined && {
          ceiling: floor.p50Ms,
          ratio: f.p50Ms / floor.p50Ms,
          ratioOf: 'bare echo',
        }),
      },
      {
        section: '2 echo latency',
        metric: `p99 ${tag}`,
        unit: 'ms',
        hermes: f.p99Ms,
        ...(floor !== undefined && {
          ceiling: floor.p99Ms,
          ratio: f.p99Ms / floor.p99Ms,
          ratioOf: 'bare echo',
        }),
        ...(f.rate === 1000 &&
          f.subject === 'gateway' && {
            target: '< 10 ms',
            pass: Number.isFinite(f.p99Ms) ? f.p99Ms < 10 && !lost : null,
          }),
        note:
          (f.subject === 'gateway-store-off'
            ? 'the same with delivery.enabled: false, run right after; '
            : f.subject === 'floor'
              ? 'a bare ws client answering each message with one keep-alive http.request (bench/clients/ceiling.ts, echo), run right after: the floor of this machine and fake; '
              : floor !== undefined
                ? 'ceiling column: the bare echo floor at the same rate; '
                : '') +
          `${f.measured} events measured (${f.sent} sent, first ${options.warmupSeconds} s not counted), ` +
          `${f.missing} without reply, ${f.duplicates} duplicate replies; ${who} CPU ` +
          `${((f.gatewayCpuShare ?? NaN) * 100).toFixed(0)}% of a core, RSS ${(f.gatewayRssMb ?? NaN).toFixed(0)} MB; ` +
          `the fake's own loop delay p99 ${f.fakeLoopDelayP99Ms.toFixed(1)} ms (included)` +
          (f.failure === null ? '' : `; NOT A FULL RUN: ${f.failure}`),
      },
      {
        section: '2 echo latency',
        metric: `max ${tag}`,
        unit: 'ms',
        hermes: f.maxMs,
      },
      {
        section: '2 echo latency',
        metric: `max in the first ${options.warmupSeconds} s ${tag}`,
        unit: 'ms',
        hermes: f.warmupMaxMs,
        note: `a freshly started ${who} under load: not in p50/p99/max`,
      },
    );
  }
  return { rows, raw: figures };
}
