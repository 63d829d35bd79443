/**
 * The pipeline with a real delivery store (docs/delivery.md): events end (`done`) only when
 * handled, replies are on disk before their first send attempt, a restart neither answers
 * twice nor forgets a reply that was in flight.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { InboundEvent, OutboundMessage } from '../../src/adapters/contract.js';
import { DeliveryStore, deliveryStorePath } from '../../src/delivery/store.js';
import { parseHandlerConfig } from '../../src/handlers/config.js';
import type { Handler } from '../../src/handlers/handler.js';
import { createPipeline, type Pipeline } from '../../src/handlers/pipeline.js';
import { createMetrics, type GatewayMetrics } from '../../src/metrics.js';
import { captureLogger } from '../support/capture.js';
import { scratchRoot } from '../support/spawn-gateway.js';
import { GatedHandler, makeEvent, RecordingAdapter } from '../handlers/helpers.js';

const root = await scratchRoot('hgw-delivery-pipeline-');
let counter = 0;

async function freshPath(): Promise<string> {
  const dir = join(root, `p${++counter}`);
  await mkdir(dir);
  return deliveryStorePath(join(dir, 'gateway_state.json'));
}

function openStore(path: string): DeliveryStore {
  return DeliveryStore.open({
    path,
    rememberMs: 60_000,
    maxEntries: 1_000,
    sync: 'normal',
    resumeMaxAgeMs: 300_000,
    log: captureLogger().log,
  });
}

function start(store: DeliveryStore, adapter: RecordingAdapter, handler?: Handler): Pipeline {
  return createPipeline({
    config: { handler: parseHandlerConfig({ type: 'echo' }) },
    adapters: [adapter],
    log: captureLogger('debug').log,
    metrics: createMetrics(),
    delivery: store,
    ...(handler ? { handler } : {}),
  });
}

async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`never happened: ${what}`);
}

async function counterValue(metrics: GatewayMetrics, name: string): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  assert.ok(metric, `metric ${name} exists`);
  const data = await metric.get();
  return data.values
    .filter((v) => v.labels.platform === 'test' && v.labels.type === 'test')
    .reduce((sum, v) => sum + v.value, 0);
}

function tracked(event: InboundEvent, ended: string[]): [InboundEvent, () => void] {
  return [event, () => ended.push(event.id)];
}

await test('pipeline with the delivery store', async (t) => {
  await t.test(
    'replies are committed before the first send attempt, with idempotency keys',
    async () => {
      const path = await freshPath();
      const store = openStore(path);
      const adapter = new RecordingAdapter('test');
      const seenOnDisk: string[][] = [];
      adapter.behaviour = (message: OutboundMessage) => {
        // Another connection to the file: what a process started after a crash here would see.
        const other = openStore(path);
        seenOnDisk.push(other.takePending().map((p) => `${p.eventId}#${p.ordinal}:${p.text}`));
        other.close();
        return Promise.resolve({ ids: [message.text] });
      };
      const pipeline = start(store, adapter);
      const ended: string[] = [];
      const event = makeEvent({ text: 'hi' });
      pipeline.dispatch(...tracked(event, ended));
      await until(() => ended.length === 1, 'the event ended');
      assert.deepEqual(seenOnDisk, [[`${event.id}#0:hi`]]);
      assert.deepEqual(adapter.sent[0]?.idempotency, { key: `${event.id}#0`, ordinal: 0 });
      await store.flush();
      // Answered: the outbox row is gone, the id is remembered.
      const after = openStore(path);
      assert.deepEqual(after.takePending(), []);
      assert.equal(after.isAnswered(event.id), true);
      after.close();
      await pipeline.close();
      store.close();
    },
  );

  await t.test('after a restart an answered event is dropped, and it ends', async () => {
    const path = await freshPath();
    const event = makeEvent();
    const first = openStore(path);
    const p1 = start(first, new RecordingAdapter('test'));
    const ended1: string[] = [];
    p1.dispatch(...tracked(event, ended1));
    await until(() => ended1.length === 1, 'answered once');
    await first.flush();
    first.close(); // a SIGKILL would leave the same committed rows

    const second = openStore(path);
    const adapter = new RecordingAdapter('test');
    const p2 = start(second, adapter);
    const ended2: string[] = [];
    p2.dispatch(...tracked(event, ended2)); // the platform replays it
    await until(() => ended2.length === 1, 'the replay ended');
    assert.equal(adapter.sent.length, 0);
    await p1.close();
    await p2.close();
    second.close();
  });

  await t.test(
    'replies left in flight are re-sent verbatim before the replayed event, which ends',
    async () => {
      const path = await freshPath();
      const event = makeEvent({ text: 'question', chat: 'bob' });
      const first = openStore(path);
      const stuck = new RecordingAdapter('test');
      stuck.behaviour = () => new Promise(() => undefined); // the process dies mid-send
      const handler = new GatedHandler();
      const p1 = start(first, stuck, handler);
      p1.dispatch(event, () => assert.fail('a reply that never went out cannot end its event'));
      await handler.waitStarted(event.id);
      handler.release(event.id, [{ text: 'answer one' }, { text: 'answer two' }]);
      await until(() => stuck.sent.length === 0 && first.commitCount > 0, 'intents committed');
      await first.flush();
      // SIGKILL here: no close of anything.

      const second = openStore(path);
      const adapter = new RecordingAdapter('test');
      const neverCalled = new GatedHandler();
      const p2 = start(second, adapter, neverCalled);
      const ended: string[] = [];
      const later = makeEvent({ text: 'next', chat: 'bob' });
      p2.dispatch(...tracked(event, ended)); // replayed by the platform
      p2.dispatch(...tracked(later, ended));
      await neverCalled.waitStarted(later.id);
      neverCalled.release(later.id);
      await until(() => ended.length === 2, 'both ended');
      assert.deepEqual(adapter.textsTo('bob'), ['answer one', 'answer two', 're: next']);
      assert.deepEqual(
        adapter.sent.slice(0, 2).map((m) => m.idempotency),
        [
          { key: `${event.id}#0`, ordinal: 0 },
          { key: `${event.id}#1`, ordinal: 1 },
        ],
      );
      assert.equal(neverCalled.started.length, 1, 'the handler saw only the new event');
      assert.deepEqual(ended, [event.id, later.id]);
      await p1.close();
      await p2.close();
      second.close();
      first.close();
    },
  );

  await t.test(
    'a re-send without an idempotency key counts as a possible duplicate and is logged; with a key it does not',
    async () => {
      for (const idempotent of [false, true]) {
        const path = await freshPath();
        const first = openStore(path);
        await first.writeIntents(
          ['answer one', 'answer two'].map((text, ordinal) => ({
            eventId: 'test:left',
            instance: 'test',
            chat: { type: 'c2c' as const, id: 'bob' },
            reply: {},
            ordinal,
            text,
          })),
        );
        first.close(); // the process died mid-send
        const second = openStore(path);
        const adapter = Object.assign(new RecordingAdapter('test'), {
          idempotentSends: idempotent,
        });
        const metrics = createMetrics();
        const logs = captureLogger('debug');
        const pipeline = createPipeline({
          config: { handler: parseHandlerConfig({ type: 'echo' }) },
          adapters: [adapter],
          log: logs.log,
          metrics,
          delivery: second,
        });
        await until(() => adapter.sent.length === 2, 'both replies re-sent');
        const counted = await counterValue(metrics, 'hermes_possible_duplicate_replies_total');
        const warned = logs.lines.filter((l) => l.level === 40 && l.event_id === 'test:left');
        if (idempotent) {
          assert.equal(counted, 0, 'a re-send with an idempotency key is no duplicate');
          assert.equal(warned.length, 0);
        } else {
          assert.equal(counted, 2, 'each re-sent reply may arrive twice');
          assert.equal(warned.length, 1);
          assert.equal(warned[0]!.replies, 2);
        }
        await pipeline.close();
        second.close();
      }
    },
  );

  await t.test('a duplicate of an event in flight ends when the original does', async () => {
    const store = openStore(await freshPath());
    const handler = new GatedHandler();
    const pipeline = start(store, new RecordingAdapter('test'), handler);
    const ended: string[] = [];
    const event = makeEvent();
    pipeline.dispatch(event, () => ended.push('original'));
    await handler.waitStarted(event.id);
    pipeline.dispatch(event, () => ended.push('copy'));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(ended, []);
    handler.release(event.id);
    await until(() => ended.length === 2, 'both ended');
    assert.deepEqual(ended, ['original', 'copy']);
    await pipeline.close();
    store.close();
  });

  await t.test(
    'close cuts events short without ending them; drain stops taking new ones',
    async () => {
      const path = await freshPath();
      const store = openStore(path);
      const handler = new GatedHandler();
      const pipeline = start(store, new RecordingAdapter('test'), handler);
      const ended: string[] = [];
      const a = makeEvent({ chat: 'a' });
      const b = makeEvent({ chat: 'b' });
      pipeline.dispatch(...tracked(a, ended));
      pipeline.dispatch(...tracked(b, ended));
      await handler.waitStarted(b.id);
      const draining = pipeline.drain(60_000);
      const late = makeEvent({ chat: 'c' });
      pipeline.dispatch(...tracked(late, ended));
      handler.release(a.id);
      await until(() => ended.length === 1, 'a ended');
      assert.equal(handler.started.length, 2, 'nothing new was taken while draining');
      assert.equal(await pipeline.drain(1), false, 'b is still running');
      await pipeline.close(); // b is cut short
      assert.deepEqual(ended, [a.id]);
      await store.flush();
      assert.equal(store.isAnswered(b.id), false);
      assert.equal(await draining, true);
      store.close();
    },
  );
});

await test('the answered set as the dedupe window (a store that covers it)', async (t) => {
  /** A store that, unless `over` says otherwise, covers the pipeline's default dedupe window. */
  function storeWith(
    path: string,
    over: Partial<Parameters<typeof DeliveryStore.open>[0]> = {},
  ): DeliveryStore {
    return DeliveryStore.open({
      path,
      rememberMs: 3_600_000,
      maxEntries: 100_000,
      sync: 'normal',
      resumeMaxAgeMs: 300_000,
      log: captureLogger().log,
      ...over,
    });
  }

  await t.test('covers() compares time and count with the window it would replace', async () => {
    const store = storeWith(await freshPath());
    assert.equal(store.covers(3_600_000, 100_000), true);
    assert.equal(store.covers(3_600_001, 100_000), false);
    assert.equal(store.covers(600_000, 100_001), false);
    store.close();
  });

  await t.test(
    'a copy of an event in flight, with or without done, is dropped and counted',
    async () => {
      const store = storeWith(await freshPath());
      const handler = new GatedHandler();
      const metrics = createMetrics();
      const pipeline = createPipeline({
        config: { handler: parseHandlerConfig({ type: 'echo' }) },
        adapters: [new RecordingAdapter('test')],
        log: captureLogger('debug').log,
        metrics,
        delivery: store,
        handler,
      });
      const withDone = makeEvent({ chat: 'a' });
      const withoutDone = makeEvent({ chat: 'b' });
      const ended: string[] = [];
      pipeline.dispatch(withDone, () => ended.push('original'));
      pipeline.dispatch(withoutDone);
      await handler.waitStarted(withDone.id);
      await handler.waitStarted(withoutDone.id);
      pipeline.dispatch(withDone, () => ended.push('copy'));
      pipeline.dispatch(withoutDone);
      assert.equal(await counterValue(metrics, 'hermes_duplicates_dropped_total'), 2);
      handler.release(withDone.id);
      handler.release(withoutDone.id);
      await until(() => ended.length === 2, 'both copies ended');
      assert.deepEqual(ended, ['original', 'copy']);
      await pipeline.idle();
      assert.equal(handler.started.length, 2, 'no copy reached the handler');
      await pipeline.close();
      store.close();
    },
  );

  await t.test(
    'an answered event is dropped while the store remembers it, handled again after',
    async () => {
      let now = 1_000_000;
      const store = storeWith(await freshPath(), { now: () => now });
      const adapter = new RecordingAdapter('test');
      const pipeline = start(store, adapter);
      const event = makeEvent();
      const ended: string[] = [];
      pipeline.dispatch(...tracked(event, ended));
      await until(() => ended.length === 1, 'answered');
      pipeline.dispatch(...tracked(event, ended));
      await until(() => ended.length === 2, 'the copy ended');
      assert.equal(adapter.sent.length, 1, 'answered once');
      now += 3_600_000; // remember_ms later: neither window holds it any more
      pipeline.dispatch(...tracked(event, ended));
      await until(() => ended.length === 3, 'handled again');
      assert.equal(adapter.sent.length, 2);
      await pipeline.close();
      store.close();
    },
  );

  await t.test('a store that does not cover the window leaves the pipeline its own', async () => {
    let storeNow = 1_000_000;
    // remember_ms 60 s is shorter than the default dedupe_window_ms of 10 min.
    const store = storeWith(await freshPath(), { rememberMs: 60_000, now: () => storeNow });
    const adapter = new RecordingAdapter('test');
    const pipeline = start(store, adapter);
    const event = makeEvent();
    const ended: string[] = [];
    pipeline.dispatch(...tracked(event, ended));
    await until(() => ended.length === 1, 'answered');
    storeNow += 120_000; // the store forgot it; the pipeline's window (real clock) did not
    assert.equal(store.isAnswered(event.id), false);
    pipeline.dispatch(...tracked(event, ended));
    await until(() => ended.length === 2, 'the copy ended');
    assert.equal(adapter.sent.length, 1, 'the copy was not answered');
    await pipeline.close();
    store.close();
  });
});
