import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { DeliveryStore, deliveryStorePath, type PendingReply } from '../../src/delivery/store.js';
import { HandledWatermark } from '../../src/delivery/watermark.js';
import { captureLogger } from '../support/capture.js';
import { scratchRoot } from '../support/spawn-gateway.js';

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
