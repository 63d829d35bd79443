import assert from 'node:assert/strict';
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  DeliveryStore,
  WAL_FLUSH_EVERY_COMMITS,
  deliveryStorePath,
  type PendingReply,
} from '../../src/delivery/store.js';
import { HandledWatermark } from '../../src/delivery/watermark.js';
import { captureLogger } from '../support/capture.js';
import { scratchRoot, waitFor } from '../support/spawn-gateway.js';

const root = await scratchRoot('hgw-delivery-');
let counter = 0;

async function freshPath(): Promise<string> {
  const dir = join(root, `d${++counter}`);
  await mkdir(dir);
  return deliveryStorePath(join(dir, 'gateway_state.json'));
}

function open(
  path: string,
  over: Partial<Parameters<typeof DeliveryStore.open>[0]> = {},
): DeliveryStore {
  return DeliveryStore.open({
    path,
    rememberMs: 60_000,
    maxEntries: 1_000,
    sync: 'normal',
    resumeMaxAgeMs: 300_000,
    log: captureLogger().log,
    ...over,
  });
}

/** The `answered_groups` rows on disk (read by a second connection, as after a crash). */
function groupRows(path: string): Array<{ at: number; ids: string[] }> {
  const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
  const db = new Database(path, { readonly: true });
  try {
    const rows = db.prepare('SELECT at, ids FROM answered_groups ORDER BY id').all() as Array<{
      at: number;
      ids: string;
    }>;
    return rows.map((r) => ({ at: r.at, ids: JSON.parse(r.ids) as string[] }));
  } finally {
    db.close();
  }
}

/** Descriptors of this process open on `file`, or on what was `file` before it was deleted. */
function openDescriptors(file: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target === file || target === `${file} (deleted)`) n += 1;
    } catch {
      // Closed between the listing and the read (the listing's own descriptor).
    }
  }
  return n;
}

function reply(eventId: string, ordinal: number, text: string): PendingReply {
  return {
    eventId,
    instance: 'qqbot',
    chat: { type: 'c2c', id: 'U1' },
    reply: { msg_id: eventId.split(':')[1] },
    ordinal,
    text,
  };
}

await test('delivery store', async (t) => {
  await t.test('lives next to the state file, mode 0600 (database, WAL and shm)', async () => {
    assert.equal(deliveryStorePath('/x/gateway_state.json'), '/x/gateway_state.delivery.db');
    const path = await freshPath();
    const store = open(path);
    store.markAnswered('qqbot:m1');
    await store.flush();
    for (const file of [path, `${path}-wal`, `${path}-shm`]) {
      assert.equal(statSync(file).mode & 0o777, 0o600, file);
    }
    store.close();
  });

  await t.test('answered ids, resume points and unsent replies survive a reopen', async () => {
    const path = await freshPath();
    let now = 1_000_000;
    const first = open(path, { now: () => now });
    assert.equal(first.resumePoint('qqbot'), null);
    await first.writeIntents([reply('qqbot:m1', 0, 'a'), reply('qqbot:m1', 1, 'b')]);
    await first.writeIntents([reply('qqbot:m2', 0, 'c')]);
    first.markAnswered('qqbot:m2');
    first.saveResumePoint('qqbot', { session_id: 'S1' }, 41);
    await first.flush();
    // No close(): what a SIGKILL leaves behind.
    now += 5_000;
    const second = open(path, { now: () => now });
    assert.equal(second.isAnswered('qqbot:m2'), true);
    assert.equal(second.isAnswered('qqbot:m1'), false);
    assert.deepEqual(second.resumePoint('qqbot'), {
      session: { session_id: 'S1' },
      position: 41,
      ageMs: 5_000,
      stale: false,
    });
    // m2 was answered: its outbox rows went with it; m1's replies are left, in order.
    assert.deepEqual(
      second.takePending().map((p) => [p.eventId, p.ordinal, p.text]),
      [
        ['qqbot:m1', 0, 'a'],
        ['qqbot:m1', 1, 'b'],
      ],
    );
    second.close();
    first.close();
  });

  await t.test('a resume point older than resume_max_age_ms is stale', async () => {
    const path = await freshPath();
    let now = 1_000_000;
    const a = open(path, { now: () => now });
    a.saveResumePoint('qqbot', { session_id: 'S' }, 3);
    a.close();
    now += 301_000;
    const b = open(path, { now: () => now });
    assert.equal(b.resumePoint('qqbot')?.stale, true);
    b.close();
  });

  await t.test('answered ids are forgotten after remember_ms and beyond max_entries', async () => {
    const path = await freshPath();
    let now = 1_000_000;
    const store = open(path, { now: () => now, rememberMs: 10_000, maxEntries: 3 });
    for (const id of ['a', 'b', 'c', 'd']) store.markAnswered(id);
    await store.flush();
    // In memory: bounded at 3 entries, the oldest forgotten first.
    assert.deepEqual(
      ['a', 'b', 'c', 'd'].map((id) => store.isAnswered(id)),
      [false, true, true, true],
    );
    now += 10_001;
    assert.equal(store.isAnswered('d'), false);
    store.close();
    // On disk: pruned by count at the first commit, by age later.
    const reopened = open(path, { now: () => now - 10_001, rememberMs: 10_000, maxEntries: 3 });
    assert.deepEqual(
      ['a', 'b', 'c', 'd'].map((id) => reopened.isAnswered(id)),
      [false, true, true, true],
    );
    reopened.close();
  });

  await t.test(
    'answered ids are one row per group commit; a restart after many commits drops every one',
    async () => {
      const path = await freshPath();
      const store = open(path, { maxEntries: 10_000 });
      for (let c = 0; c < 50; c++) {
        for (let i = 0; i < 20; i++) store.markAnswered(`qqbot:c${c}-${i}`, false);
        await store.flush();
      }
      // No close(): what a SIGKILL leaves behind.
      assert.equal(groupRows(path).length, 50);
      const reopened = open(path, { maxEntries: 10_000 });
      for (let c = 0; c < 50; c++) {
        for (let i = 0; i < 20; i++) {
          assert.equal(reopened.isAnswered(`qqbot:c${c}-${i}`), true, `qqbot:c${c}-${i}`);
        }
      }
      assert.equal(reopened.isAnswered('qqbot:never'), false);
      reopened.close();
      store.close();
    },
  );

  await t.test('expiry deletes whole groups once all their ids are past remember_ms', async () => {
    const path = await freshPath();
    let now = 1_000_000;
    const store = open(path, { now: () => now, rememberMs: 10_000 });
    store.markAnswered('old1');
    store.markAnswered('old2');
    await store.flush();
    now += 6_000;
    store.markAnswered('young');
    await store.flush();
    assert.equal(groupRows(path).length, 2);
    now += 4_001; // the first group is past remember_ms, the second is not
    store.markAnswered('later');
    await store.flush();
    assert.deepEqual(
      groupRows(path).map((g) => g.ids),
      [['young'], ['later']],
    );
    store.close();
    const reopened = open(path, { now: () => now, rememberMs: 10_000 });
    assert.deepEqual(
      ['old1', 'old2', 'young', 'later'].map((id) => reopened.isAnswered(id)),
      [false, false, true, true],
    );
    reopened.close();
  });

  await t.test(
    'max_entries: groups wholly beyond the newest ids go, the one straddling the bound stays',
    async () => {
      const path = await freshPath();
      let now = 1_000_000;
      const store = open(path, { now: () => now, maxEntries: 5 });
      for (const group of [
        ['a', 'b', 'c'],
        ['d', 'e', 'f'],
        ['g', 'h'],
      ]) {
        for (const id of group) store.markAnswered(id);
        await store.flush();
        now += 1_000; // one prune per commit
      }
      // The newest 5 are d..h: [a b c] holds none of them, [d e f] holds two.
      assert.deepEqual(
        groupRows(path).map((g) => g.ids),
        [
          ['d', 'e', 'f'],
          ['g', 'h'],
        ],
      );
      store.close();
      const reopened = open(path, { now: () => now, maxEntries: 5 });
      assert.deepEqual(
        ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((id) => reopened.isAnswered(id)),
        [false, false, false, true, true, true, true, true],
      );
      reopened.close();
      const smaller = open(path, { now: () => now, maxEntries: 4 });
      assert.deepEqual(
        ['d', 'e', 'f', 'g', 'h'].map((id) => smaller.isAnswered(id)),
        [false, true, true, true, true],
      );
      smaller.close();
    },
  );

  await t.test('a database with the old one-row-per-id table keeps every answered id', async () => {
    const path = await freshPath();
    const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
    const old = new Database(path);
    old.exec(
      'CREATE TABLE answered (event_id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID',
    );
    const insert = old.prepare('INSERT INTO answered (event_id, at) VALUES (?, ?)');
    insert.run('qqbot:m2', 1_000_200);
    insert.run('qqbot:m1', 1_000_100);
    old.close();
    const store = open(path, { now: () => 1_005_000 });
    assert.equal(store.isAnswered('qqbot:m1'), true);
    assert.equal(store.isAnswered('qqbot:m2'), true);
    assert.equal(store.isAnswered('qqbot:m3'), false);
    store.close();
    assert.deepEqual(
      groupRows(path).map((g) => g.ids),
      [['qqbot:m1', 'qqbot:m2']],
    );
  });

  await t.test(
    'a database with rowid outbox and resume_points tables keeps their rows in the new layout',
    async () => {
      const path = await freshPath();
      const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
      const old = new Database(path);
      old.pragma('journal_mode = WAL');
      old.exec(`
CREATE TABLE answered_groups (
  id INTEGER PRIMARY KEY, at INTEGER NOT NULL, n INTEGER NOT NULL, ids TEXT NOT NULL);
CREATE TABLE outbox (
  event_id TEXT NOT NULL, ordinal INTEGER NOT NULL, instance TEXT NOT NULL,
  chat_type TEXT NOT NULL, chat_id TEXT NOT NULL, reply TEXT NOT NULL, text TEXT NOT NULL,
  at INTEGER NOT NULL, PRIMARY KEY (event_id, ordinal));
CREATE TABLE resume_points (
  instance TEXT PRIMARY KEY, session TEXT NOT NULL, position INTEGER, at INTEGER NOT NULL);`);
      old
        .prepare('INSERT INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run('qqbot:m1', 0, 'qqbot', 'c2c', 'U1', '{"msg_id":"m1"}', 'left in flight', 1_000_000);
      old
        .prepare('INSERT INTO resume_points VALUES (?, ?, ?, ?)')
        .run('qqbot', '{"session_id":"S1"}', 7, 1_000_000);
      old.close();
      const store = open(path, { now: () => 1_001_000 });
      assert.deepEqual(
        store.takePending().map((p) => [p.eventId, p.ordinal, p.text]),
        [['qqbot:m1', 0, 'left in flight']],
      );
      assert.equal(store.resumePoint('qqbot')?.position, 7);
      await store.writeIntents([reply('qqbot:m2', 0, 'new')]);
      store.close();
      const check = new Database(path, { readonly: true });
      try {
        const tables = check
          .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name")
          .all() as Array<{ name: string; sql: string }>;
        assert.deepEqual(
          tables.map((t) => [t.name, /WITHOUT ROWID/.test(t.sql)]),
          [
            ['answered_groups', false],
            ['outbox', true],
            ['resume_points', true],
          ],
        );
        assert.equal(
          (check.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n,
          2,
        );
      } finally {
        check.close();
      }
    },
  );

  await t.test('a new database has 1 KiB pages', async () => {
    const path = await freshPath();
    open(path).close();
    const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
    const check = new Database(path, { readonly: true });
    try {
      assert.equal(check.pragma('page_size', { simple: true }), 1024);
    } finally {
      check.close();
    }
  });

  await t.test('group commit: many writes in one turn are one transaction', async () => {
    const path = await freshPath();
    const store = open(path);
    const before = store.commitCount;
    const writes = [];
    for (let i = 0; i < 100; i++) {
      writes.push(store.writeIntents([reply(`qqbot:m${i}`, 0, 'x')]));
      store.markAnswered(`qqbot:n${i}`);
    }
    await Promise.all(writes);
    assert.equal(store.commitCount - before, 1);
    store.close();
  });

  await t.test(
    'answered ids nobody waits for reach the disk without flush, many turns in one commit',
    async () => {
      const path = await freshPath();
      const store = open(path);
      const before = store.commitCount;
      for (let i = 0; i < 50; i++) {
        store.markAnswered(`qqbot:a${i}`, false);
        await new Promise((resolve) => setImmediate(resolve));
      }
      // Read by a second connection while the store stays open, as a crash would leave it.
      await waitFor(
        () => groupRows(path).flatMap((g) => g.ids).length >= 50,
        'the 50 answered ids committed',
        5_000,
        5,
      );
      // One commit per turn would be 50.
      assert.ok(store.commitCount - before < 25, `${store.commitCount - before} commits`);
      store.close();
    },
  );

  await t.test(
    'a store that cannot be written fails for good with GW_ERR_DELIVERY_STORE_WRITE',
    async () => {
      const path = await freshPath();
      const failures: string[] = [];
      const store = open(path, { onFailure: (e) => failures.push(e.code) });
      await store.writeIntents([reply('qqbot:m1', 0, 'a')]);
      // Another process holds the database's write lock: our commit cannot happen.
      const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
      const other = new Database(path);
      other.exec('BEGIN EXCLUSIVE');
      try {
        await assert.rejects(store.writeIntents([reply('qqbot:m2', 0, 'b')]), {
          code: 'GW_ERR_DELIVERY_STORE_WRITE',
        });
      } finally {
        other.exec('ROLLBACK');
        other.close();
      }
      assert.deepEqual(failures, ['GW_ERR_DELIVERY_STORE_WRITE']);
      assert.equal(store.health, 'failed');
      // It sticks: the lock is gone, the store stays broken (exit 70 is on its way).
      await assert.rejects(store.writeIntents([reply('qqbot:m3', 0, 'c')]), {
        code: 'GW_ERR_DELIVERY_STORE_WRITE',
      });
      store.markAnswered('qqbot:m4');
      await assert.rejects(store.flush(), { code: 'GW_ERR_DELIVERY_STORE_WRITE' });
      store.close();
    },
  );

  await t.test(
    'sync normal: the WAL is fsynced in the background every WAL_FLUSH_EVERY_COMMITS commits',
    async () => {
      const path = await freshPath();
      const store = open(path);
      let n = 0;
      for (let round = 1; round <= 2; round++) {
        const before = store.commitCount;
        while (store.commitCount - before < WAL_FLUSH_EVERY_COMMITS) {
          await store.writeIntents([reply(`qqbot:w${n++}`, 0, 'x')]);
        }
        await waitFor(() => store.walFlushCount === round, `background flush ${round}`);
      }
      // Fewer commits than the interval since the last flush: none more.
      await store.writeIntents([reply(`qqbot:w${n++}`, 0, 'x')]);
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(store.walFlushCount, 2);
      // SQLite's own and the store's.
      assert.equal(openDescriptors(`${path}-wal`), 2);
      store.close();
      assert.equal(openDescriptors(`${path}-wal`), 0);
    },
  );

  await t.test('sync full: no background flush (every commit fsyncs the WAL itself)', async () => {
    const path = await freshPath();
    const store = open(path, { sync: 'full' });
    for (let i = 0; i < WAL_FLUSH_EVERY_COMMITS + 1; i++) {
      await store.writeIntents([reply(`qqbot:f${i}`, 0, 'x')]);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(store.walFlushCount, 0);
    // SQLite's own only.
    assert.equal(openDescriptors(`${path}-wal`), 1);
    store.close();
  });

  await t.test(
    'closed during a background flush: the WAL descriptor closes when it ends',
    async () => {
      const path = await freshPath();
      const store = open(path);
      for (let i = 0; i < WAL_FLUSH_EVERY_COMMITS; i++) {
        await store.writeIntents([reply(`qqbot:c${i}`, 0, 'x')]);
      }
      // The last commit started the flush; it is on the thread pool now.
      store.close();
      await waitFor(() => openDescriptors(`${path}-wal`) === 0, 'the WAL descriptor closed');
      assert.equal(store.health, 'ok');
    },
  );

  await t.test('a path that cannot be opened: GW_ERR_DELIVERY_STORE_OPEN', async () => {
    const path = await freshPath();
    await mkdir(path); // a directory where the database file should be
    assert.throws(() => open(path), { code: 'GW_ERR_DELIVERY_STORE_OPEN' });
  });
});

await test('handled watermark', async (t) => {
  await t.test('is the lowest unfinished position minus one, not the last received', () => {
    const w = new HandledWatermark();
    assert.equal(w.value, null);
    for (const p of [5, 6, 7, 8]) w.begin(p);
    assert.equal(w.value, 4);
    assert.equal(w.end(7), false);
    assert.equal(w.end(6), false);
    assert.equal(w.value, 4);
    assert.equal(w.end(5), true);
    assert.equal(w.value, 7);
    assert.equal(w.end(8), true);
    assert.equal(w.value, 8);
  });

  await t.test('starts from a floor; an out-of-order position is kept sorted', () => {
    const w = new HandledWatermark(10);
    assert.equal(w.value, 10);
    w.begin(13);
    w.begin(12);
    assert.equal(w.value, 11);
    w.end(12);
    assert.equal(w.value, 12);
    w.end(13);
    assert.equal(w.value, 13);
  });

  await t.test('a position begun twice ends twice', () => {
    const w = new HandledWatermark();
    w.begin(3);
    w.begin(3);
    w.end(3);
    assert.equal(w.value, 2);
    w.end(3);
    assert.equal(w.value, 3);
  });
});
