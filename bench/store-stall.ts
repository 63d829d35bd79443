/**
 * How long the delivery store holds the event loop at a steady reply rate: the echo path's
 * shape (an intent awaited, the resume point moved, the event marked answered a moment later)
 * paced at `--rate` per second through the product's `DeliveryStore`, with the time from each
 * `writeIntents` call to its commit. Most commits take a fraction of a millisecond; the tail
 * is the commits that also run SQLite's checkpoint (every 4 MiB of WAL), which a gateway near
 * its CPU limit then has to catch up on (docs/delivery.md, docs/performance.md).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/store-stall.js [--rate N] [--seconds N] [--sync normal|full]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { DeliveryStore } from '../src/delivery/store.js';
import { max, quantile } from './lib/util.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '15' },
    sync: { type: 'string', default: 'normal' },
  },
});
const rate = Number(values.rate);
const total = rate * Number(values.seconds);
const sync = values.sync === 'full' ? 'full' : 'normal';

const dir = mkdtempSync(join(tmpdir(), 'hgw-store-stall-'));
const store = DeliveryStore.open({
  path: join(dir, 'delivery.db'),
  rememberMs: 600_000,
  maxEntries: 200_000,
  sync,
  resumeMaxAgeMs: 300_000,
  log: pino({ level: 'silent' }),
});
const waits: number[] = [];
let sent = 0;
const t0 = performance.now();
await new Promise<void>((resolve) => {
  const tick = (): void => {
    const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
    while (sent < due) {
      const n = sent++;
      const eventId = `qqbot:ROBOT1.0_${n}_abcdefghijklmnop`;
      const start = performance.now();
      store.saveResumePoint('qqbot', { session_id: 'bench' }, n);
      void store
        .writeIntents([
          {
            eventId,
            instance: 'qqbot',
            chat: { type: 'c2c', id: `U${n % 2000}` },
            reply: { msg_id: eventId },
            ordinal: 0,
            text: 'hello there',
          },
        ])
        .then(() => {
          waits.push(performance.now() - start);
          // The reply's send takes about a millisecond; then the event is answered.
          setTimeout(() => store.markAnswered(eventId, true), 1);
          if (waits.length === total) resolve();
        });
    }
    if (sent < total) setTimeout(tick, 1);
  };
  tick();
});
await store.flush();
const commits = store.commitCount;
store.close();
rmSync(dir, { recursive: true, force: true });
const fmt = (ms: number): string => `${ms.toFixed(2)} ms`;
console.log(
  `${total} intents at ${rate}/s, sync ${sync}, ${commits} commits, ${store.walFlushCount} background WAL flushes`,
);
console.log(
  `intent → committed: p50 ${fmt(quantile(waits, 0.5))}, p99 ${fmt(quantile(waits, 0.99))}, ` +
    `p99.9 ${fmt(quantile(waits, 0.999))}, max ${fmt(max(waits))}, ` +
    `${waits.filter((w) => w > 10).length} over 10 ms`,
);
