/**
 * What one delivery-store commit costs in the shape the echo path makes at a moderate rate:
 * one reply's intent, the previous event's outbox delete and answered group, the resume
 * point, as one transaction (docs/delivery.md). Compares the store's table layout and page
 * size with the first layout (rowid tables, 4 KiB pages), interleaved, CPU and wall time per
 * commit (the wall time includes the checkpoints' writes and fsyncs). A third row runs the same
 * echo shape through the product's `DeliveryStore` itself (an intent awaited, then the event
 * marked answered: its JavaScript included). `--group N` adds a commit shape of the
 * throughput bench instead: N answered ids and the resume point (raw layouts only).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/store-commit.js [--commits N] [--rounds N] [--group N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type BetterSqlite3 from 'better-sqlite3';
import { pino } from 'pino';
import { DeliveryStore, STORE_PAGE_SIZE, STORE_TABLES } from '../src/delivery/store.js';
import { median } from './lib/util.js';

const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;

const FIRST_LAYOUT: Record<string, string> = {
  answered_groups:
    '(id INTEGER PRIMARY KEY, at INTEGER NOT NULL, n INTEGER NOT NULL, ids TEXT NOT NULL)',
  outbox:
    '(event_id TEXT NOT NULL, ordinal INTEGER NOT NULL, instance TEXT NOT NULL, ' +
    'chat_type TEXT NOT NULL, chat_id TEXT NOT NULL, reply TEXT NOT NULL, text TEXT NOT NULL, ' +
    'at INTEGER NOT NULL, PRIMARY KEY (event_id, ordinal))',
  resume_points:
    '(instance TEXT PRIMARY KEY, session TEXT NOT NULL, position INTEGER, at INTEGER NOT NULL)',
};

const LAYOUTS = [
  { name: 'first layout (rowid tables, 4 KiB pages)', tables: FIRST_LAYOUT, pageSize: 4096 },
  {
    name: 'store layout (WITHOUT ROWID, 1 KiB pages)',
    tables: STORE_TABLES,
    pageSize: STORE_PAGE_SIZE,
  },
];

const { values } = parseArgs({
  options: {
    commits: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '5' },
    group: { type: 'string', default: '0' },
  },
});
const commits = Number(values.commits);
const rounds = Number(values.rounds);
const group = Number(values.group);
const id = (i: number): string => `qqbot:ROBOT1.0_${i}_abcdefghijklmnopqrstuvwxyz0123456789`;
const bigGroup = JSON.stringify(Array.from({ length: group }, (_, i) => id(i)));

/** CPU and wall time per commit since `cpu0` and `t0`. */
function perCommit(cpu0: NodeJS.CpuUsage, t0: number): { cpuUs: number; wallUs: number } {
  const cpu = process.cpuUsage(cpu0);
  return {
    cpuUs: (cpu.user + cpu.system) / commits,
    wallUs: ((performance.now() - t0) * 1000) / commits,
  };
}

function run(layout: (typeof LAYOUTS)[number]): { cpuUs: number; wallUs: number } {
  const dir = mkdtempSync(join(tmpdir(), 'hgw-store-commit-'));
  const db = new Database(join(dir, 'bench.db'), { timeout: 0 });
  try {
    db.pragma(`page_size = ${layout.pageSize}`);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    // The same WAL size between checkpoints in bytes for both.
    db.pragma(`wal_autocheckpoint = ${(4096 * 1000) / layout.pageSize}`);
    for (const [name, columns] of Object.entries(layout.tables)) {
      db.exec(`CREATE TABLE ${name} ${columns}`);
    }
    const intent = db.prepare('INSERT OR REPLACE INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    const drop = db.prepare('DELETE FROM outbox WHERE event_id = ?');
    const answered = db.prepare('INSERT INTO answered_groups (at, n, ids) VALUES (?, ?, ?)');
    const resume = db.prepare('INSERT OR REPLACE INTO resume_points VALUES (?, ?, ?, ?)');
    const commit = db.transaction((i: number) => {
      const now = Date.now();
      if (group > 0) {
        answered.run(now, group, bigGroup);
      } else {
        const reply = JSON.stringify({ msg_id: id(i).slice(6) });
        intent.run(
          id(i),
          0,
          'qqbot',
          'c2c',
          'U0123456789ABCDEF0123456789ABCDEF',
          reply,
          'hello there',
          now,
        );
        drop.run(id(i - 1));
        answered.run(now, 1, JSON.stringify([id(i - 1)]));
      }
      resume.run('qqbot', JSON.stringify({ session_id: 'S1', seq: i }), i, now);
    });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 1; i <= commits; i++) commit(i);
    return perCommit(cpu0, t0);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One echo's store work through DeliveryStore, per echo (its lazy answered commits included). */
async function runStore(): Promise<{ cpuUs: number; wallUs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'hgw-store-commit-'));
  const store = DeliveryStore.open({
    path: join(dir, 'delivery.db'),
    rememberMs: 24 * 3600_000,
    maxEntries: 200_000,
    sync: 'normal',
    resumeMaxAgeMs: 300_000,
    log: pino({ level: 'silent' }),
  });
  try {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 1; i <= commits; i++) {
      await store.writeIntents([
        {
          eventId: id(i),
          instance: 'qqbot',
          chat: { type: 'c2c', id: 'U0123456789ABCDEF0123456789ABCDEF' },
          reply: { msg_id: id(i).slice(6) },
          ordinal: 0,
          text: 'hello there',
        },
      ]);
      store.markAnswered(id(i));
    }
    await store.flush();
    return perCommit(cpu0, t0);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const cases = [
  ...LAYOUTS.map((layout) => ({ name: layout.name, run: () => Promise.resolve(run(layout)) })),
  ...(group > 0 ? [] : [{ name: 'DeliveryStore, one echo (product code)', run: runStore }]),
];
const results = cases.map(() => ({ cpu: [] as number[], wall: [] as number[] }));
for (let r = 0; r < rounds; r++) {
  for (const [k, c] of cases.entries()) {
    const { cpuUs, wallUs } = await c.run();
    results[k]!.cpu.push(cpuUs);
    results[k]!.wall.push(wallUs);
  }
}
const shape =
  group > 0 ? `${group} answered ids + resume point` : 'intent + answered + resume point';
console.log(`${commits} commits of ${shape}, median of ${rounds} interleaved rounds`);
cases.forEach((c, k) => {
  const { cpu, wall } = results[k]!;
  console.log(
    `${c.name.padEnd(44)} CPU ${median(cpu).toFixed(1)} µs/commit, wall ${median(wall).toFixed(1)} µs/commit`,
  );
});
