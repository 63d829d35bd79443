/**
 * `send()`: the endpoint per chat type, passive replies with an increasing msg_seq, text
 * split at the length limit, and the retry budget (429 with a hint, 5xx, expired token,
 * timeouts, business errors).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { InboundEvent, OutboundMessage } from '../../../src/adapters/contract.js';
import { isGatewayError } from '../../../src/errors.js';
import { withHarness, type QQHarness } from './harness.js';

function replyTo(event: InboundEvent, text: string): OutboundMessage {
  return { chat: event.chat, text, reply: event.reply };
}

async function c2cEvent(h: QQHarness): Promise<InboundEvent> {
  await h.connected();
  h.fake.dispatchC2CMessage({ content: 'hi', userOpenid: 'U1' });
  const events = await h.waitForEvents(1);
  return events[0]!;
}

async function rejection(
  promise: Promise<unknown>,
): Promise<{ code: string; details: Record<string, unknown> }> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isGatewayError(err), `a GatewayError, got ${String(err)}`);
    return { code: err.code, details: err.details };
  }
  assert.fail('expected a rejection');
}

type Body = { msg_type?: number; content?: string; msg_id?: string; msg_seq?: number };

await test('c2c replies are passive (msg_id) with msg_seq 1, 2, 3 per msg_id', async () => {
  await withHarness({}, async (h) => {
    const event = await c2cEvent(h);
    const results = [];
    for (const text of ['one', 'two', 'three'])
      results.push(await h.adapter.send(replyTo(event, text)));
    const bodies = h.fake.sentMessages.map((m) => m.body as Body);
    assert.deepEqual(
      bodies.map((b) => [b.msg_type, b.content, b.msg_id, b.msg_seq]),
      [
        [0, 'one', event.reply.msg_id, 1],
        [0, 'two', event.reply.msg_id, 2],
        [0, 'three', event.reply.msg_id, 3],
      ],
    );
    assert.equal(h.fake.sentMessages[0]!.path, '/v2/users/U1/messages');
    assert.ok(results.every((r) => r.ids.length === 1 && r.ids[0] !== ''));
    h.fake.assertNoViolations();
  });
});

await test('group, channel and DM replies go to their endpoints', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    h.fake.dispatchGroupAtMessage({ content: 'g', groupOpenid: 'G1' });
    h.fake.dispatchAtMessage({ content: 'c', channelId: 'C1', guildId: 'GU1' });
    h.fake.dispatchDirectMessage({ content: 'd', guildId: 'DMG1' });
    const events = await h.waitForEvents(3);
    for (const event of events) await h.adapter.send(replyTo(event, `re: ${event.text}`));
    assert.deepEqual(
      h.fake.sentMessages.map((m) => m.path),
      ['/v2/groups/G1/messages', '/channels/C1/messages', '/dms/DMG1/messages'],
    );
    const [group, channel, dm] = h.fake.sentMessages.map((m) => m.body as Body);
    assert.deepEqual(group, {
      msg_type: 0,
      content: 're: g',
      msg_id: events[0]!.reply.msg_id,
      msg_seq: 1,
    });
    assert.deepEqual(channel, { content: 're: c', msg_id: events[1]!.reply.msg_id });
    assert.deepEqual(dm, { content: 're: d', msg_id: events[2]!.reply.msg_id });
    h.fake.assertNoViolations();
  });
});

await test('long text is split at send.max_text_length, each part with the next msg_seq', async () => {
  await withHarness({ config: { send: { max_text_length: 20 } } }, async (h) => {
    const event = await c2cEvent(h);
    const text = 'first line is here\nsecond line here\nand a third one';
    const result = await h.adapter.send(replyTo(event, text));
    const bodies = h.fake.sentMessages.map((m) => m.body as Body);
    assert.equal(result.ids.length, 3);
    assert.deepEqual(
      bodies.map((b) => b.content),
      ['first line is here', 'second line here', 'and a third one'],
    );
    assert.deepEqual(
      bodies.map((b) => b.msg_seq),
      [1, 2, 3],
    );
    assert.ok(bodies.every((b) => [...(b.content ?? '')].length <= 20));
  });
});

await test('429 with a retry hint: waits the hint, retries with the same msg_seq, delivers', async () => {
  await withHarness({}, async (h) => {
    const event = await c2cEvent(h);
    h.fake.queueSendFaults({ kind: 'rate_limited', retryAfterSec: 0.3, hint: 'header' });
    const started = Date.now();
    const result = await h.adapter.send(replyTo(event, 'patient'));
    const [limited, delivered] = h.fake.sendRequests;
    assert.equal(limited!.status, 429);
    assert.equal(delivered!.status, 200);
    assert.ok(
      delivered!.at - limited!.at >= 295,
      `retried after ${delivered!.at - limited!.at} ms`,
    );
    assert.ok(Date.now() - started < 2_000);
    assert.equal((delivered!.body as Body).msg_seq, (limited!.body as Body).msg_seq);
    assert.equal(result.ids.length, 1);
    assert.ok(h.codes().includes('GW_ERR_QQ_SEND_RATE_LIMITED'));
  });
});

await test('429 with a body retry_after hint (code 22009) is honoured too', async () => {
  await withHarness({}, async (h) => {
    const event = await c2cEvent(h);
    h.fake.queueSendFaults({ kind: 'rate_limited', retryAfterSec: 0.2, hint: 'body', code: 22009 });
    await h.adapter.send(replyTo(event, 'patient'));
    const [limited, delivered] = h.fake.sendRequests;
    assert.ok(delivered!.at - limited!.at >= 195);
  });
});

await test('rate limited on every attempt → GW_ERR_QQ_SEND_RATE_LIMITED after send.max_attempts', async () => {
  await withHarness({ config: { send: { max_attempts: 3 } } }, async (h) => {
    const event = await c2cEvent(h);
    h.fake.queueSendFaults(
      { kind: 'rate_limited', retryAfterSec: 0.01 },
      { kind: 'rate_limited', retryAfterSec: 0.01 },
      { kind: 'rate_limited', retryAfterSec: 0.01 },
    );
    const error = await rejection(h.adapter.send(replyTo(event, 'no luck')));
    assert.equal(error.code, 'GW_ERR_QQ_SEND_RATE_LIMITED');
    assert.equal(h.fake.sendRequests.length, 3);
    assert.equal(h.fake.sentMessages.length, 0);
  });
});

await test('a retry hint above send.max_retry_delay_ms fails at once instead of waiting', async () => {
  await withHarness({ config: { send: { max_retry_delay_ms: 1_000 } } }, async (h) => {
    const event = await c2cEvent(h);
    h.fake.queueSendFaults({ kind: 'rate_limited', retryAfterSec: 60 });
    const started = Date.now();
    const error = await rejection(h.adapter.send(replyTo(event, 'later')));
    assert.equal(error.code, 'GW_ERR_QQ_SEND_RATE_LIMITED');
    assert.equal(error.details.retry_after_ms, 60_000);
    assert.ok(Date.now() - started < 500);
    assert.equal(h.fake.sendRequests.length, 1);
  });
});

await test('5xx is retried with backoff and then delivered', async () => {
  await withHarness({}, async (h) => {
    const event = await c2cEvent(h);
    h.fake.queueSendFaults({ kind: 'server_error', status: 502 }, { kind: 'server_error' });
    const result = await h.adapter.send(replyTo(event, 'eventually'));
    assert.deepEqual(
      h.fake.sendRequests.map((r) => r.status),
      [502, 500, 200],
    );
    assert.equal(result.ids.length, 1);
    assert.equal(h.fake.sentMessages.length, 1);
  });
});

await test('5xx on every attempt → GW_ERR_QQ_SEND_FAILED after send.max_attempts', async () => {
  await withHarness({ config: { send: { max_attempts: 2 } } }, async (h) => {
    const event = await c2cEvent(h);
    h.fake.queueSendFaults({ kind: 'server_error' }, { kind: 'server_error' });
    const error = await rejection(h.adapter.send(replyTo(event, 'doomed')));
    assert.equal(error.code, 'GW_ERR_QQ_SEND_FAILED');
    assert.equal(h.fake.sendRequests.length, 2);
  });
});

await test('a send timeout is retried within the budget', async () => {
  await withHarness({ config: { timeouts: { rest_ms: 150 } } }, async (h) => {
    const event = await c2cEvent(h);
    h.fake.queueSendFaults({ kind: 'timeout' });
    const result = await h.adapter.send(replyTo(event, 'slow'));
    assert.equal(result.ids.length, 1);
    assert.equal(h.fake.sendRequests.length, 2);
  });
});

await test('expired token (401 / 11244) → one token refresh, then delivered', async () => {
  await withHarness({}, async (h) => {
    const event = await c2cEvent(h);
    const tokensBefore = h.fake.tokenRequests.length;
    h.fake.queueSendFaults({ kind: 'token_expired' });
    const result = await h.adapter.send(replyTo(event, 'fresh token'));
    assert.equal(result.ids.length, 1);
    assert.equal(h.fake.tokenRequests.length, tokensBefore + 1, 'exactly one refresh');
    assert.equal(h.fake.tokenRequests.at(-1)!.outcome, 'issued');
    assert.deepEqual(
      h.fake.sendRequests.map((r) => r.status),
      [401, 200],
    );
  });
});

await test('a second expired-token answer after the refresh → GW_ERR_QQ_SEND_UNAUTHORIZED', async () => {
  await withHarness({}, async (h) => {
    const event = await c2cEvent(h);
    h.fake.queueSendFaults({ kind: 'token_expired' }, { kind: 'token_expired' });
    const error = await rejection(h.adapter.send(replyTo(event, 'no')));
    assert.equal(error.code, 'GW_ERR_QQ_SEND_UNAUTHORIZED');
    assert.equal(h.fake.sendRequests.length, 2);
  });
});

await test('a business error is not retried: GW_ERR_QQ_SEND_REJECTED with the platform code', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const error = await rejection(
      h.adapter.send({
        chat: { type: 'c2c', id: 'U1' },
        text: 'x',
        reply: { msg_id: 'unknown-id' },
      }),
    );
    assert.equal(error.code, 'GW_ERR_QQ_SEND_REJECTED');
    assert.equal(error.details.platform_code, 40034024);
    assert.equal(h.fake.sendRequests.length, 1);
  });
});

await test('a msg_seq already used (40054005) takes the next msg_seq', async () => {
  await withHarness({}, async (h) => {
    const event = await c2cEvent(h);
    h.fake.queueSendFaults({
      kind: 'business',
      code: 40054005,
      message: '消息被去重，请检查请求msgseq',
    });
    await h.adapter.send(replyTo(event, 'again'));
    assert.deepEqual(
      h.fake.sendRequests.map((r) => (r.body as Body).msg_seq),
      [1, 2],
    );
  });
});

await test('an idempotent reply re-sent after a restart: same msg_id + msg_seq, 40054005 = delivered', async () => {
  await withHarness({}, async (h) => {
    const event = await c2cEvent(h);
    const reply = (ordinal: number, text: string): OutboundMessage => ({
      ...replyTo(event, text),
      idempotency: { key: `${event.id}#${ordinal}`, ordinal },
    });
    // The previous process sent reply 1 (msg_seq 101) and died before recording it.
    await h.adapter.send(reply(1, 'second'));
    // The next process re-sends it: the platform refuses the pair, which means delivered.
    assert.deepEqual(await h.adapter.send(reply(1, 'second')), { ids: [''] });
    await h.adapter.send(reply(0, 'first'));
    assert.deepEqual(
      h.fake.sendRequests.map((r) => [(r.body as Body).msg_seq, r.status]),
      [
        [101, 200],
        [101, 400],
        [1, 200],
      ],
    );
    assert.equal(h.fake.sentMessages.length, 2, 'no reply went out twice');
  });
});

await test('empty or whitespace-only text sends nothing', async () => {
  await withHarness({}, async (h) => {
    const event = await c2cEvent(h);
    assert.deepEqual(await h.adapter.send(replyTo(event, '  \n ')), { ids: [] });
    assert.equal(h.fake.sendRequests.length, 0);
  });
});

await test('chat ids the platform cannot have are refused before any request: GW_ERR_QQ_CHAT_ID_INVALID', async () => {
  await withHarness({ fake: { allowActiveSends: true } }, async (h) => {
    await h.connected();
    const bad = ['..', '.', 'a/b', '../users/U1', 'a?b', 'a#b', '', 'a\nb', 'a\u0000b', 'a\u007fb'];
    for (const id of bad) {
      for (const type of ['c2c', 'group', 'channel', 'dm'] as const) {
        const error = await rejection(h.adapter.send({ chat: { type, id }, text: 'x' }));
        assert.equal(error.code, 'GW_ERR_QQ_CHAT_ID_INVALID', JSON.stringify(id));
      }
    }
    assert.equal(h.fake.sendRequests.length, 0);
  });
});

await test('a chat id is one encoded path segment: the fake sees the id unchanged', async () => {
  await withHarness({ fake: { allowActiveSends: true } }, async (h) => {
    await h.connected();
    const id = 'a b%2F+;@é..x';
    await h.adapter.send({ chat: { type: 'c2c', id }, text: 'x' });
    const [request] = h.fake.sendRequests;
    assert.equal(request!.path, `/v2/users/${encodeURIComponent(id)}/messages`);
    assert.equal(request!.targetId, id);
    assert.equal(request!.scene, 'c2c');
  });
});

await test('22009 (msg limit exceed) is given up at once: 1,000 replies past the quota take seconds, not minutes', async () => {
  // The fake allows 5 replies per msg_id, then answers 400 / 22009 (fact sheet §7.3).
  const count = 1_000;
  const boundMs = 20_000;
  // Production retry timings: a retried 22009 would wait 1 + 2 + 4 + 8 s per reply.
  const send = { max_attempts: 5, retry_delay_ms: 1_000, max_retry_delay_ms: 30_000 };
  await withHarness({ config: { send } }, async (h) => {
    const event = await c2cEvent(h);
    const started = Date.now();
    const codes: Array<string | number | null> = [];
    const all = (async () => {
      for (let i = 0; i < count; i++) {
        try {
          await h.adapter.send(replyTo(event, `reply ${i}`));
          codes.push('ok');
        } catch (err) {
          assert.ok(isGatewayError(err));
          assert.equal(err.code, 'GW_ERR_QQ_SEND_REJECTED');
          codes.push(err.details.platform_code as number);
        }
      }
    })();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${codes.length} of ${count} replies settled within ${boundMs} ms`)),
        boundMs,
      );
    });
    try {
      await Promise.race([all, deadline]);
    } finally {
      clearTimeout(timer);
      // Past the deadline the loop is cut short by the harness closing: its end is moot.
      all.catch(() => undefined);
    }
    assert.ok(Date.now() - started < boundMs);
    assert.equal(codes.filter((c) => c === 'ok').length, 5);
    assert.equal(codes.filter((c) => c === 22009).length, count - 5);
    // One request per reply: nothing was retried.
    assert.equal(h.fake.sendRequests.length, count);
  });
});
