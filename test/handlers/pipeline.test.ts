import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { InboundEvent } from '../../src/adapters/contract.js';
import { GatewayError } from '../../src/errors.js';
import { parseHandlerConfig } from '../../src/handlers/config.js';
import type { Handler, Reply } from '../../src/handlers/handler.js';
import { createPipeline, type Pipeline } from '../../src/handlers/pipeline.js';
import { createMetrics, type GatewayMetrics } from '../../src/metrics.js';
import { captureLogger } from '../support/capture.js';
import { waitFor } from '../support/spawn-gateway.js';
import { GatedHandler, makeEvent, RecordingAdapter } from './helpers.js';

async function value(
  metrics: GatewayMetrics,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  assert.ok(metric, `metric ${name} exists`);
  const data = await metric.get();
  const match = data.values.filter((v) =>
    Object.entries(labels).every(([k, want]) => v.labels[k] === want),
  );
  return match.reduce((sum, v) => sum + v.value, 0);
}

interface Setup {
  pipeline: Pipeline;
  adapter: RecordingAdapter;
  metrics: GatewayMetrics;
  lines: ReturnType<typeof captureLogger>['lines'];
}

function setup(
  handler: Handler | undefined,
  extra: Record<string, unknown> = {},
  now?: () => number,
  overflowLogIntervalMs?: number,
): Setup {
  const { log, lines } = captureLogger('debug');
  const adapter = new RecordingAdapter('test');
  const metrics = createMetrics();
  const pipeline = createPipeline({
    config: { handler: parseHandlerConfig({ type: 'echo', ...extra }) },
    adapters: [adapter],
    log,
    metrics,
    ...(handler ? { handler } : {}),
    ...(now ? { now } : {}),
    ...(overflowLogIntervalMs !== undefined ? { overflowLogIntervalMs } : {}),
  });
  return { pipeline, adapter, metrics, lines };
}

/** Turns until `predicate` holds (bounded): lets the pipeline's promise chains run. */
async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`never happened: ${what}`);
}

await test('pipeline scheduling', async (t) => {
  await t.test('one conversation in order; two conversations interleave', async () => {
    const handler = new GatedHandler();
    const { pipeline, adapter } = setup(handler, { concurrency: 4 });
    const a1 = makeEvent({ chat: 'A', text: 'a1' });
    const a2 = makeEvent({ chat: 'A', text: 'a2' });
    const a3 = makeEvent({ chat: 'A', text: 'a3' });
    const b1 = makeEvent({ chat: 'B', text: 'b1' });
    const b2 = makeEvent({ chat: 'B', text: 'b2' });
    for (const event of [a1, a2, b1, a3, b2]) pipeline.dispatch(event);

    await handler.waitStarted(a1.id);
    await handler.waitStarted(b1.id);
    // A's next event waits for a1 even though slots are free.
    assert.equal(handler.isRunning(a2.id), false);
    assert.equal(handler.running, 2);

    // B finishes both of its events while a1 is still being handled.
    handler.release(b1.id);
    await handler.waitStarted(b2.id);
    handler.release(b2.id);
    await until(() => adapter.textsTo('B').length === 2, 'B answered');
    assert.deepEqual(adapter.textsTo('A'), []);

    handler.release(a1.id);
    await handler.waitStarted(a2.id);
    handler.release(a2.id);
    await handler.waitStarted(a3.id);
    handler.release(a3.id);
    await pipeline.idle();
    assert.deepEqual(adapter.textsTo('A'), ['re: a1', 're: a2', 're: a3']);
    assert.deepEqual(adapter.textsTo('B'), ['re: b1', 're: b2']);
    // Replies carry the event's reply context, for a passive reply.
    assert.deepEqual(adapter.sent[0]!.reply, b1.reply);
    await pipeline.close();
  });

  await t.test(
    'varying handler delays: per-chat order holds, chats overlap, concurrency is a global cap',
    async () => {
      let running = 0;
      let maxRunning = 0;
      const handler: Handler = {
        type: 'delays',
        async handle(event): Promise<Reply[]> {
          running += 1;
          maxRunning = Math.max(maxRunning, running);
          // Later events of a chat are faster, so a broken order would show.
          const n = Number(/(\d+)$/.exec(event.text)![1]);
          await new Promise((resolve) => setTimeout(resolve, Math.max(1, 12 - n * 2) + (n % 3)));
          running -= 1;
          return [{ text: event.text }];
        },
      };
      const { pipeline, adapter } = setup(handler, { concurrency: 3 });
      const chats = ['c1', 'c2', 'c3', 'c4', 'c5'];
      for (let n = 0; n < 6; n++) {
        for (const chat of chats) pipeline.dispatch(makeEvent({ chat, text: `${chat}-${n}` }));
      }
      await pipeline.idle();
      for (const chat of chats) {
        assert.deepEqual(
          adapter.textsTo(chat),
          [0, 1, 2, 3, 4, 5].map((n) => `${chat}-${n}`),
        );
      }
      assert.equal(maxRunning, 3);
      // Replies of different chats are interleaved, not one chat after the other.
      const firstSix = adapter.sent.slice(0, 6).map((m) => m.chat.id);
      assert.ok(new Set(firstSix).size > 1);
      await pipeline.close();
    },
  );

  await t.test('concurrency 1 serialises everything', async () => {
    const handler = new GatedHandler();
    const { pipeline } = setup(handler, { concurrency: 1 });
    const events = ['x', 'y', 'z'].map((chat) => makeEvent({ chat }));
    for (const event of events) pipeline.dispatch(event);
    for (const event of events) {
      await handler.waitStarted(event.id);
      assert.equal(handler.running, 1);
      handler.release(event.id);
    }
    await pipeline.idle();
    assert.equal(handler.maxRunning, 1);
    await pipeline.close();
  });

  await t.test(
    'events that end without an await (a handler throwing at once) drain in a loop, not a recursion',
    async () => {
      // The first event holds the only slot; 20,000 others queue behind it (one chat each).
      // When it ends, each queued event ends synchronously: if every end started the next
      // one from inside itself, the stack would be 20,000 levels deep.
      const gate = new GatedHandler();
      let calls = 0;
      const handler: Handler = {
        type: 'sync-throw',
        handle(event, signal) {
          calls += 1;
          if (calls === 1) return gate.handle(event, signal);
          throw new GatewayError('GW_ERR_HANDLER_FAILED', 'refused at once');
        },
      };
      const { pipeline, lines } = setup(handler, {
        concurrency: 1,
        max_queued_events: 30_000,
      });
      const first = makeEvent({ chat: 'first' });
      pipeline.dispatch(first);
      for (let i = 0; i < 20_000; i++) pipeline.dispatch(makeEvent({ chat: `c${i}` }));
      assert.equal(pipeline.load.waiting, 20_000);
      await gate.waitStarted(first.id);
      gate.release(first.id);
      await pipeline.idle();
      assert.equal(calls, 20_001);
      assert.equal(lines.filter((l) => l.code === 'GW_ERR_HANDLER_FAILED').length, 20_000);
      assert.equal(lines.filter((l) => l.code === 'GW_ERR_INTERNAL').length, 0);
      await pipeline.close();
    },
  );
});

await test('pipeline back-pressure', async (t) => {
  await t.test('a full conversation queue drops the event with a code and counts it', async () => {
    const handler = new GatedHandler();
    const { pipeline, adapter, metrics, lines } = setup(handler, {
      concurrency: 4,
      queue_limit: 2,
    });
    const events = [1, 2, 3, 4, 5].map((n) => makeEvent({ chat: 'busy', text: `e${n}` }));
    for (const event of events) pipeline.dispatch(event);
    // e1 runs, e2 and e3 wait, e4 and e5 overflow; another chat is not affected.
    const other = makeEvent({ chat: 'calm', text: 'c1' });
    pipeline.dispatch(other);
    assert.deepEqual(pipeline.load, { waiting: 2, running: 2 });
    assert.equal(await value(metrics, 'hermes_queue_overflow_total', { platform: 'test' }), 2);
    // The first drop is logged at once with its event; the second waits for the summary.
    const overflowLines = lines.filter((l) => l.code === 'GW_ERR_HANDLER_QUEUE_OVERFLOW');
    assert.deepEqual(
      overflowLines.map((l) => l.event_id),
      [events[3]!.id],
    );
    assert.ok(overflowLines.every((l) => l.level === 40));

    handler.release(other.id);
    for (const event of events.slice(0, 3)) {
      await handler.waitStarted(event.id);
      handler.release(event.id);
    }
    await pipeline.idle();
    assert.deepEqual(adapter.textsTo('busy'), ['re: e1', 're: e2', 're: e3']);
    assert.deepEqual(adapter.textsTo('calm'), ['re: c1']);
    // A dropped event was never "handled": its redelivery is accepted.
    pipeline.dispatch(events[3]!);
    await handler.waitStarted(events[3]!.id);
    handler.release(events[3]!.id);
    await pipeline.idle();
    assert.deepEqual(adapter.textsTo('busy').at(-1), 're: e4');
    await pipeline.close();
  });

  await t.test(
    'a flood of drops logs the first at once, then one summary per interval with the count',
    async () => {
      const handler = new GatedHandler();
      const intervalMs = 100;
      const { pipeline, metrics, lines } = setup(
        handler,
        { concurrency: 1, queue_limit: 1, max_queued_events: 2 },
        undefined,
        intervalMs,
      );
      const overflowLines = (): typeof lines =>
        lines.filter((l) => l.code === 'GW_ERR_HANDLER_QUEUE_OVERFLOW');
      const first = makeEvent({ chat: 'a' });
      pipeline.dispatch(first); // runs
      pipeline.dispatch(makeEvent({ chat: 'a' })); // waits
      pipeline.dispatch(makeEvent({ chat: 'b' })); // waits: 2 in all
      const dropped = makeEvent({ chat: 'a' });
      pipeline.dispatch(dropped); // conversation a full: logged at once
      for (let i = 0; i < 500; i++) pipeline.dispatch(makeEvent({ chat: `a` }));
      for (let i = 0; i < 300; i++) pipeline.dispatch(makeEvent({ chat: `c${i}` }));
      assert.equal(await value(metrics, 'hermes_queue_overflow_total'), 801);
      assert.equal(overflowLines().length, 1);
      assert.equal(overflowLines()[0]!.event_id, dropped.id);

      // One summary per interval while drops go on, with every drop not logged yet. Waited
      // for by polling on a short timer, not slept for: the poll that sees a summary is due
      // before the pipeline's next interval ends, so the drops below still fall into it
      // however late this process runs (a sleep that started late once let that interval end
      // first, in CI).
      const summaries = (n: number): Promise<unknown> =>
        waitFor(() => overflowLines().length >= n, `overflow line ${n}`, 5_000, 5);
      await summaries(2);
      assert.equal(overflowLines().length, 2);
      const summary = overflowLines()[1]!;
      assert.equal(summary.level, 40);
      assert.equal(summary.dropped, 800);
      assert.equal(summary.conversation_full, 500);
      assert.equal(summary.pipeline_full, 300);
      assert.equal(summary.event_id, undefined);
      for (let i = 0; i < 10; i++) pipeline.dispatch(makeEvent({ chat: 'a' }));
      assert.equal(overflowLines().length, 2, 'still summing up');
      await summaries(3);
      assert.equal(overflowLines().length, 3);
      assert.equal(overflowLines()[2]!.dropped, 10);

      // A quiet interval ends the summing: the next drop is logged at once, with its event.
      // The pipeline's timer is due before this one, so it has run when this one ends.
      await new Promise((resolve) => setTimeout(resolve, intervalMs * 2.5));
      assert.equal(overflowLines().length, 3, 'no summary of nothing');
      const later = makeEvent({ chat: 'a' });
      pipeline.dispatch(later);
      assert.equal(overflowLines().length, 4);
      assert.equal(overflowLines()[3]!.event_id, later.id);

      // Drops not logged yet are summed up on close.
      pipeline.dispatch(makeEvent({ chat: 'a' }));
      pipeline.dispatch(makeEvent({ chat: 'a' }));
      assert.equal(overflowLines().length, 4);
      await pipeline.close();
      assert.equal(overflowLines().length, 5);
      assert.equal(overflowLines()[4]!.dropped, 2);
      assert.equal(await value(metrics, 'hermes_queue_overflow_total'), 814);
    },
  );

  await t.test('max_queued_events caps the waiting events over all conversations', async () => {
    const handler = new GatedHandler();
    const { pipeline, metrics } = setup(handler, { concurrency: 1, max_queued_events: 3 });
    for (let i = 0; i < 6; i++) pipeline.dispatch(makeEvent({ chat: `chat${i}` }));
    assert.deepEqual(pipeline.load, { waiting: 3, running: 1 });
    assert.equal(await value(metrics, 'hermes_queue_overflow_total'), 2);
    await pipeline.close();
  });
});

await test('pipeline dedupe', async (t) => {
  await t.test(
    'an event id seen within the window is dropped, logged at debug and counted',
    async () => {
      const { pipeline, adapter, metrics, lines } = setup(undefined);
      const event = makeEvent({ text: 'once' });
      pipeline.dispatch(event);
      pipeline.dispatch({ ...event });
      await pipeline.idle();
      pipeline.dispatch({ ...event }); // a redelivery after a resume, long after handling
      await pipeline.idle();
      assert.deepEqual(adapter.textsTo(event.chat.id), ['once']);
      assert.equal(
        await value(metrics, 'hermes_duplicates_dropped_total', { platform: 'test' }),
        2,
      );
      assert.equal(await value(metrics, 'hermes_inbound_events_total', { platform: 'test' }), 3);
      const dropped = lines.filter((l) => l.msg === 'duplicate event dropped');
      assert.equal(dropped.length, 2);
      assert.ok(dropped.every((l) => l.level === 20 && l.event_id === event.id));
      await pipeline.close();
    },
  );

  await t.test('after dedupe_window_ms the same id is handled again', async () => {
    let now = 1_000_000;
    const { pipeline, adapter } = setup(undefined, { dedupe_window_ms: 500 }, () => now);
    const event = makeEvent({ text: 'again' });
    pipeline.dispatch(event);
    now += 499;
    pipeline.dispatch({ ...event });
    now += 1;
    pipeline.dispatch({ ...event });
    await pipeline.idle();
    assert.deepEqual(adapter.textsTo(event.chat.id), ['again', 'again']);
    await pipeline.close();
  });

  await t.test(
    'the window remembers at most dedupe_max_entries ids, oldest forgotten first',
    async () => {
      const { pipeline, adapter } = setup(undefined, { dedupe_max_entries: 2 });
      const [x, y, z] = ['x', 'y', 'z'].map((text) => makeEvent({ chat: 'd', text })) as [
        InboundEvent,
        InboundEvent,
        InboundEvent,
      ];
      for (const event of [x, y, z, x, z]) pipeline.dispatch({ ...event });
      await pipeline.idle();
      assert.deepEqual(adapter.textsTo('d'), ['x', 'y', 'z', 'x']);
      await pipeline.close();
    },
  );
});

await test('pipeline delivery', async (t) => {
  await t.test(
    'a reply waiting on the platform hands its handler slot on, up to send_concurrency; its chat waits',
    async () => {
      // One handler slot: with the slot held through the send, only one chat could be sending.
      const { pipeline, adapter } = setup(undefined, { concurrency: 1, send_concurrency: 2 });
      const gates: Array<() => void> = [];
      let inFlight = 0;
      adapter.behaviour = () => {
        inFlight += 1;
        return new Promise((resolve) =>
          gates.push(() => {
            inFlight -= 1;
            resolve({ ids: ['ok'] });
          }),
        );
      };
      for (const chat of ['a', 'b', 'c']) pipeline.dispatch(makeEvent({ chat, text: chat }));
      pipeline.dispatch(makeEvent({ chat: 'a', text: 'a2' }));
      // a and b send at once; c keeps the one handler slot while it sends (the bound is 2).
      await until(() => inFlight === 3, 'three sends in flight');
      assert.deepEqual(pipeline.load, { waiting: 1, running: 3 });
      // a2 waits for a's reply: a conversation's replies stay in order.
      assert.equal(adapter.sent.length, 0);
      gates.shift()!();
      await until(() => adapter.textsTo('a').length === 1, 'a sent');
      // a2 is next in line but needs the handler slot, which c holds while it sends.
      assert.equal(inFlight, 2);
      gates.splice(1, 1)[0]!(); // c's reply arrives: its slot goes to a2, which sends
      await until(() => inFlight === 2 && adapter.textsTo('c').length === 1, 'a2 sending');
      assert.deepEqual(adapter.textsTo('a'), ['a']);
      while (gates.length > 0) {
        gates.shift()!();
        await new Promise((resolve) => setImmediate(resolve));
      }
      await pipeline.idle();
      assert.deepEqual(adapter.textsTo('a'), ['a', 'a2']);
      assert.equal(adapter.sent.length, 4);
      await pipeline.close();
    },
  );

  await t.test(
    'many sends in flight at once are not reported as a listener leak (they are bounded)',
    async () => {
      const warnings: string[] = [];
      const onWarning = (w: Error): void => {
        warnings.push(w.name);
      };
      process.on('warning', onWarning);
      const { pipeline, adapter } = setup(undefined, { concurrency: 8, send_concurrency: 32 });
      const gates: Array<() => void> = [];
      adapter.behaviour = () =>
        new Promise((resolve) => gates.push(() => resolve({ ids: ['ok'] })));
      for (let i = 0; i < 40; i++) pipeline.dispatch(makeEvent({ chat: `c${i}`, text: 'x' }));
      await until(() => gates.length === 40, '40 sends in flight');
      for (const open of gates) open();
      await pipeline.idle();
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      process.off('warning', onWarning);
      assert.deepEqual(warnings, []);
      assert.equal(adapter.sent.length, 40);
      await pipeline.close();
    },
  );

  await t.test(
    'a failed send is logged with its code and counted; the conversation moves on',
    async () => {
      const { pipeline, adapter, metrics, lines } = setup(undefined);
      adapter.behaviour = (message) =>
        message.text === 'bad'
          ? Promise.reject(new GatewayError('GW_ERR_ADAPTER_FAILED', 'platform said no'))
          : Promise.resolve({ ids: ['ok'] });
      pipeline.dispatch(makeEvent({ chat: 'f', text: 'bad' }));
      pipeline.dispatch(makeEvent({ chat: 'f', text: 'good' }));
      await pipeline.idle();
      assert.deepEqual(adapter.textsTo('f'), ['good']);
      assert.ok(lines.some((l) => l.code === 'GW_ERR_ADAPTER_FAILED' && l.level === 40));
      assert.equal(await value(metrics, 'hermes_deliveries_total', { result: 'error' }), 1);
      assert.equal(await value(metrics, 'hermes_deliveries_total', { result: 'ok' }), 1);
      await pipeline.close();
    },
  );

  await t.test('an uncoded send failure gets GW_ERR_DELIVERY_FAILED', async () => {
    const { pipeline, adapter, lines } = setup(undefined);
    adapter.behaviour = () => Promise.reject(new Error('socket closed'));
    pipeline.dispatch(makeEvent({ text: 'x' }));
    await pipeline.idle();
    assert.ok(lines.some((l) => l.code === 'GW_ERR_DELIVERY_FAILED'));
    await pipeline.close();
  });

  await t.test(
    'a send that never settles times out and blocks neither its chat nor the others',
    async () => {
      const { pipeline, adapter, metrics, lines } = setup(undefined, { send_timeout_ms: 80 });
      let aborted = false;
      adapter.behaviour = (message, signal) =>
        message.text === 'stuck'
          ? new Promise(() => {
              signal?.addEventListener('abort', () => {
                aborted = true;
              });
            })
          : Promise.resolve({ ids: ['ok'] });
      pipeline.dispatch(makeEvent({ chat: 's', text: 'stuck' }));
      pipeline.dispatch(makeEvent({ chat: 's', text: 'after' }));
      pipeline.dispatch(makeEvent({ chat: 'other', text: 'meanwhile' }));
      await until(() => adapter.textsTo('other').length === 1, 'the other chat answered');
      assert.deepEqual(adapter.textsTo('s'), []);
      await pipeline.idle();
      assert.deepEqual(adapter.textsTo('s'), ['after']);
      assert.equal(aborted, true);
      assert.ok(lines.some((l) => l.code === 'GW_ERR_DELIVERY_TIMEOUT'));
      assert.equal(await value(metrics, 'hermes_deliveries_total', { result: 'timeout' }), 1);
      await pipeline.close();
    },
  );

  await t.test(
    'a handler failure is logged with its code and counted; the next event runs',
    async () => {
      const handler = new GatedHandler();
      const { pipeline, adapter, metrics, lines } = setup(handler);
      const e1 = makeEvent({ chat: 'h', text: 'h1' });
      const e2 = makeEvent({ chat: 'h', text: 'h2' });
      pipeline.dispatch(e1);
      pipeline.dispatch(e2);
      await handler.waitStarted(e1.id);
      handler.fail(e1.id, new GatewayError('GW_ERR_HANDLER_TIMEOUT', 'slow'));
      await handler.waitStarted(e2.id);
      handler.release(e2.id);
      await pipeline.idle();
      assert.deepEqual(adapter.textsTo('h'), ['re: h2']);
      const line = lines.find((l) => l.code === 'GW_ERR_HANDLER_TIMEOUT');
      assert.equal(line?.event_id, e1.id);
      assert.equal(
        await value(metrics, 'hermes_handler_errors_total', { code: 'GW_ERR_HANDLER_TIMEOUT' }),
        1,
      );
      assert.equal(
        (await value(metrics, 'hermes_handler_latency_seconds', { handler: 'gated' })) > 0,
        true,
      );
      await pipeline.close();
    },
  );
});

await test('pipeline close', async (t) => {
  await t.test(
    'cancels handlers in flight, drops waiting events, ignores later events',
    async () => {
      const handler = new GatedHandler();
      const { pipeline, adapter } = setup(handler, { concurrency: 1 });
      const first = makeEvent({ chat: 'q' });
      pipeline.dispatch(first);
      pipeline.dispatch(makeEvent({ chat: 'q' }));
      await handler.waitStarted(first.id);
      await pipeline.close();
      assert.equal(handler.running, 0);
      assert.equal(handler.started.length, 1);
      pipeline.dispatch(makeEvent({ chat: 'q' }));
      assert.deepEqual(pipeline.load, { waiting: 0, running: 0 });
      assert.deepEqual(adapter.sent, []);
    },
  );

  await t.test('dispatch never throws, even for an event of an unknown platform', async () => {
    const { pipeline, adapter, lines } = setup(undefined);
    assert.doesNotThrow(() => pipeline.dispatch(makeEvent({ platform: 'nowhere' })));
    await pipeline.idle();
    assert.deepEqual(adapter.sent, []);
    assert.ok(lines.some((l) => l.msg === 'event from an unknown platform'));
    await pipeline.close();
  });
});
