/**
 * What a full answered set costs a gateway's memory: a delivery store holding `--ids` answered
 * event ids (default 200,000, `delivery.max_entries`' default) is written once, then opened by
 * fresh processes, each reporting its RSS growth over the open and its heap and array buffers
 * after a GC (the answered set's in-memory copy is loaded at every start: docs/delivery.md).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/store-open.js [--ids N] [--runs N]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { DeliveryStore, type DeliveryStoreOptions } from '../src/delivery/store.js';
import { median } from './lib/util.js';

const storeOptions = (path: string, ids: number): DeliveryStoreOptions => ({
  path,
  rememberMs: 24 * 3600_000,
  maxEntries: ids,
  sync: 'normal',
  resumeMaxAgeMs: 300_000,
  log: pino({ level: 'silent' }),
});

/** Ids in the shape of QQ's event ids (`ROBOT1.0_` and 24 letters), from a seeded generator. */
function* eventIds(count: number): Generator<string> {
  const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let seed = 7;
  for (let i = 0; i < count; i++) {
    let id = 'ROBOT1.0_';
    for (let k = 0; k < 24; k++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      id += letters[(seed >>> 16) % letters.length];
    }
    yield id;
  }
}

const { values } = parseArgs({
  options: {
    ids: { type: 'string', default: '200000' },
    runs: { type: 'string', default: '3' },
    open: { type: 'string' },
  },
});
const ids = Number(values.ids);

if (values.open !== undefined) {
  // The child: open the store, report what it took.
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage().rss;
  const store = DeliveryStore.open(storeOptions(values.open, ids));
  gc?.();
  const after = process.memoryUsage();
  process.stdout.write(
    JSON.stringify({
      rssMb: (after.rss - before) / 1e6,
      heapMb: after.heapUsed / 1e6,
      arrayBuffersMb: after.arrayBuffers / 1e6,
      held: store.isAnswered([...eventIds(1)][0]!),
    }),
  );
  store.close();
} else {
  const dir = mkdtempSync(join(tmpdir(), 'hgw-store-open-'));
  try {
    const path = join(dir, 'delivery.db');
    const store = DeliveryStore.open(storeOptions(path, ids));
    let n = 0;
    for (const id of eventIds(ids)) {
      store.markAnswered(id, false);
      if (++n % 1000 === 0) await store.flush();
    }
    await store.flush();
    store.close();
    const script = fileURLToPath(import.meta.url);
    const runs: Array<{ rssMb: number; heapMb: number; arrayBuffersMb: number; held: boolean }> =
      [];
    for (let r = 0; r < Number(values.runs); r++) {
      const out = execFileSync(
        process.execPath,
        ['--expose-gc', script, '--ids', String(ids), '--open', path],
        { encoding: 'utf8' },
      );
      runs.push(JSON.parse(out) as (typeof runs)[number]);
    }
    if (!runs.every((r) => r.held)) throw new Error('an answered id was not found after the open');
    const fmt = (pick: (r: (typeof runs)[number]) => number): string =>
      `${median(runs.map(pick)).toFixed(1)} MB (${runs.map((r) => pick(r).toFixed(1)).join(', ')})`;
    console.log(`a store holding ${ids} answered ids, opened by ${runs.length} fresh processes:`);
    console.log(`  RSS growth over the open  ${fmt((r) => r.rssMb)}`);
    console.log(`  heap after a GC           ${fmt((r) => r.heapMb)}`);
    console.log(`  array buffers             ${fmt((r) => r.arrayBuffersMb)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
