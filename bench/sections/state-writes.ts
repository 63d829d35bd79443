/**
 * Section 5, state writes: the gateway persists every transition with write-file-atomic
 * (temp file, fsync, rename) before going on. Drives `StateStore` directly, committing one
 * transition after the other for a few seconds, and compares with the bare syscalls
 * (open, write, fsync, close, rename) as the ceiling of what this disk allows.
 */
import { mkdtemp, open, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { StateStore } from '../../src/state/store.js';
import type { Row } from '../lib/report.js';
import { max, quantile, wallNow } from '../lib/util.js';

export interface StateWriteOptions {
  seconds: number;
  log: (line: string) => void;
}

interface Series {
  writes: number;
  perSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

function summarize(latencies: number[], elapsedMs: number): Series {
  return {
    writes: latencies.length,
    perSec: latencies.length / (elapsedMs / 1000),
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    maxMs: max(latencies),
  };
}

const STATES = ['connecting', 'connected', 'reconnecting'] as const;

async function storeLoop(dir: string, seconds: number): Promise<Series> {
  const store = new StateStore({
    path: join(dir, 'gateway_state.json'),
    heartbeatIntervalMs: 30_000,
    log: pino({ level: 'silent' }),
  });
  store.setGateway({ state: 'running', since: store.iso(), reason: null, exit_code: null });
  store.setPlatform('qqbot', {
    state: 'starting',
    since: store.iso(),
    max_reconnect_attempts: 100,
  });
  await store.commit();
  const latencies: number[] = [];
  const start = wallNow();
  const end = start + seconds * 1000;
  let i = 0;
  while (wallNow() < end) {
    // What the runner does for one adapter transition: change the document, persist, wait.
    store.setPlatform('qqbot', {
      state: STATES[i % STATES.length]!,
      since: store.iso(),
      reconnect_attempt: i % 7,
      last_event_at: store.iso(),
    });
    const t0 = wallNow();
    await store.commit();
    latencies.push(wallNow() - t0);
    i += 1;
  }
  return summarize(latencies, wallNow() - start);
}

/** The same document written with the bare syscalls write-file-atomic makes. */
async function syscallLoop(dir: string, seconds: number): Promise<Series> {
  const path = join(dir, 'bare.json');
  const body = JSON.stringify({ schema_version: 1, platforms: { qqbot: { state: 'x' } } }, null, 2);
  const latencies: number[] = [];
  const start = wallNow();
  const end = start + seconds * 1000;
  let i = 0;
  while (wallNow() < end) {
    const t0 = wallNow();
    const tmp = `${path}.${process.pid}.${i}`;
    const handle = await open(tmp, 'w', 0o600);
    await handle.writeFile(body);
    await handle.sync();
    await handle.close();
    await rename(tmp, path);
    latencies.push(wallNow() - t0);
    i += 1;
  }
  return summarize(latencies, wallNow() - start);
}

export async function runStateWrites(
  options: StateWriteOptions,
): Promise<{ rows: Row[]; raw: unknown }> {
  const dir = await mkdtemp(join(tmpdir(), 'hgw-bench-state-'));
  try {
    const hermes = await storeLoop(dir, options.seconds);
    options.log(
      `  StateStore: ${hermes.perSec.toFixed(0)} transitions/s, p99 ${hermes.p99Ms.toFixed(2)} ms`,
    );
    const bare = await syscallLoop(dir, options.seconds);
    options.log(`  bare open/write/fsync/rename: ${bare.perSec.toFixed(0)} writes/s`);
    const rows: Row[] = [
      {
        section: '5 state writes',
        metric: 'transitions/s (sequential)',
        unit: '/s',
        hermes: hermes.perSec,
        ceiling: bare.perSec,
        ratio: hermes.perSec / bare.perSec,
        ratioOf: 'ceiling',
        note: `ceiling = bare open/write/fsync/close/rename of a small JSON file in ${tmpdir()} (same disk)`,
      },
      {
        section: '5 state writes',
        metric: 'write latency p50',
        unit: 'ms',
        hermes: hermes.p50Ms,
        ceiling: bare.p50Ms,
      },
      {
        section: '5 state writes',
        metric: 'write latency p99',
        unit: 'ms',
        hermes: hermes.p99Ms,
        ceiling: bare.p99Ms,
      },
      {
        section: '5 state writes',
        metric: 'write latency max',
        unit: 'ms',
        hermes: hermes.maxMs,
        ceiling: bare.maxMs,
      },
    ];
    return { rows, raw: { stateStore: hermes, bareSyscalls: bare, dir: tmpdir() } };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
