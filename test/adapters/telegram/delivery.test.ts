/**
 * Telegram's side of zero-loss restarts (docs/delivery.md): events carry their update_id as
 * position, getUpdates never confirms past an update that is not handled, and a restarted
 * gateway continues after the last update the previous one handled, from its delivery store.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serverId } from '../../../src/adapters/telegram/adapter.js';
import { DeliveryStore, deliveryStorePath } from '../../../src/delivery/store.js';
import type { FakeChat } from '../../../src/fakes/telegram/server.js';
import { captureLogger } from '../../support/capture.js';
import { TelegramHarness } from './harness.js';

const chat = (id: number): FakeChat => ({ id, type: 'private', first_name: `U${id}` });
/** Tiny timings: a poll waits at most this long for the updates handed on. */
const config = { polling: { timeout_s: 1, handled_wait_ms: 100 } };

function openStore(h: TelegramHarness): DeliveryStore {
  return DeliveryStore.open({
    path: deliveryStorePath(h.path),
    rememberMs: 60_000,
    maxEntries: 1_000,
    sync: 'normal',
    resumeMaxAgeMs: 300_000,
    log: captureLogger().log,
  });
}

/** Offsets of the getUpdates calls made from request index `from` on (0: none given). */
function offsets(h: TelegramHarness, from = 0): number[] {
  return h.fake.requests
    .slice(from)
    .filter((r) => r.method === 'getupdates')
    .map((r) => Number(r.params.offset ?? 0));
}

/** Resolves at the next poll carrying `offset`; rejects naming it after 5 s. */
function pollAt(h: TelegramHarness, offset: number): Promise<unknown> {
  return h.fake.waitFor<{ offset: number }>('poll', 5_000, (p) => p.offset === offset);
}

await test('position = update_id; getUpdates never confirms past an update not yet handled', async () => {
  const h = await TelegramHarness.start({ config, hold: true });
  try {
    await h.connected();
    const a = h.fake.message('one', { chat: chat(1) });
    const b = h.fake.message('two', { chat: chat(2) });
    const c = h.fake.message('three', { chat: chat(3) });
    const events = await h.waitForEvents(3);
    assert.deepEqual(
      events.map((e) => e.position),
      [a.updateId, b.updateId, c.updateId],
    );
    // Unhandled: polls come back at the first unhandled update, never above it, and the
    // copies the server sends again are not emitted twice.
    const since = h.fake.requests.length;
    await pollAt(h, a.updateId);
    await pollAt(h, a.updateId);
    assert.ok(
      offsets(h, since).every((o) => o <= a.updateId),
      `offsets ${offsets(h, since).join(',')}`,
    );
    assert.equal(h.fake.pendingUpdates, 3, 'nothing confirmed');
    // b handled first (another chat finished sooner): a still holds the offset.
    h.handle([events[1]!.id]);
    await pollAt(h, a.updateId);
    assert.equal(h.fake.pendingUpdates, 3);
    h.handle([events[0]!.id]);
    await pollAt(h, b.updateId + 1);
    assert.equal(h.fake.pendingUpdates, 1, 'a and b confirmed, c not');
    h.handle();
    await pollAt(h, c.updateId + 1);
    assert.equal(h.fake.pendingUpdates, 0);
    assert.equal(h.events.length, 3, 'no update emitted twice');
  } finally {
    await h.close();
  }
});

await test('restart: the next gateway continues after the last handled update; the unhandled ones come again', async () => {
  const h = await TelegramHarness.start({ config, hold: true, start: false });
  let store = openStore(h);
  try {
    h.delivery = store;
    h.startRunner();
    await h.connected();
    const m1 = h.fake.message('one', { chat: chat(1) });
    h.fake.message('two', { chat: chat(2) });
    h.fake.message('three', { chat: chat(3) });
    const events = await h.waitForEvents(3);
    h.handle([events[0]!.id]);
    await pollAt(h, m1.updateId + 1);
    await h.stop();
    await store.flush();
    assert.equal(h.fake.pendingUpdates, 2, 'the stop confirmed only the handled update');
    store.close();

    store = openStore(h);
    assert.equal(store.resumePoint('telegram')?.position, m1.updateId);
    h.delivery = store;
    h.hold = false;
    h.events.length = 0;
    const since = h.fake.requests.length;
    h.startRunner();
    const again = await h.waitForEvents(2);
    assert.deepEqual(
      again.map((e) => e.text),
      ['two', 'three'],
    );
    assert.equal(offsets(h, since)[0], m1.updateId + 1, 'the first poll resumes at the point');
    assert.ok(
      h.logs.lines.some((l) => l.update_id === m1.updateId && l.resume_point_age_ms !== undefined),
    );
  } finally {
    await h.close();
    store.close();
  }
});

await test('a resume point of another bot is not used: fresh start at the queue head, counted refused', async () => {
  const h = await TelegramHarness.start({ config, start: false });
  let store = openStore(h);
  try {
    store.saveResumePoint('telegram', { bot_id: '42', server: serverId(h.fake.apiBase) }, 7);
    await store.flush();
    store.close();
    store = openStore(h);
    h.delivery = store;
    h.fake.message('waiting since before the start');
    h.startRunner();
    await h.waitForEvents(1);
    const first = h.fake.requests.find((r) => r.method === 'getupdates');
    assert.equal(first?.params.offset, undefined, 'no offset: the oldest unconfirmed update');
    await h.waitForLog((l) => l.level === 40 && l.resume_point_age_ms !== undefined, 'refused');
  } finally {
    await h.close();
    store.close();
  }
});

await test('update ids restarted below the resume point (§3.3 rule 1): a new stream from the head, nothing skipped', async () => {
  const h = await TelegramHarness.start({ config, start: false });
  let store = openStore(h);
  try {
    // The previous process handled up to an id far above what the server now counts from.
    store.saveResumePoint(
      'telegram',
      { bot_id: String(h.fake.botId), server: serverId(h.fake.apiBase) },
      900_000_000,
    );
    await store.flush();
    store.close();
    store = openStore(h);
    h.delivery = store;
    const m = h.fake.message('after the restart of the ids');
    h.startRunner();
    const [event] = await h.waitForEvents(1);
    assert.equal(event!.position, m.updateId);
    await pollAt(h, m.updateId + 1);
    assert.equal(h.fake.pendingUpdates, 0);
    assert.equal(store.resumePoint('telegram')?.position, 900_000_000, 'read at open only');
    await store.flush();
  } finally {
    await h.close();
    store.close();
  }
});
