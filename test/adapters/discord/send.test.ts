/**
 * Sending to the fake Discord REST: the body (nonce + enforce_nonce, allowed_mentions, the
 * reply reference), splitting at 2000 preferring line breaks, rate limits from the headers
 * (per bucket, global, 429 retry_after), retries that cannot post twice, permanent refusals
 * never retried, a dead token, and the invalid-request pause before an IP ban.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { OutboundMessage } from '../../../src/adapters/contract.js';
import { isGatewayError } from '../../../src/errors.js';
import { type DiscordHarness, withHarness } from './harness.js';

const CHANNEL = '300000000000000001';

function reply(text: string, key?: string): OutboundMessage {
  return {
    chat: { type: 'channel', id: CHANNEL },
    text,
    reply: { message_id: '700000000000000001', channel_id: CHANNEL },
    ...(key === undefined ? {} : { idempotency: { key, ordinal: 0 } }),
  };
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
  assert.fail('the send was expected to fail');
}

async function ready(h: DiscordHarness): Promise<void> {
  await h.connected();
}

await test('body: nonce + enforce_nonce, allowed_mentions parse [] by default, reply reference that never fails', async () => {
  await withHarness({}, async (h) => {
    await ready(h);
    const result = await h.adapter.send(reply('@everyone hello', 'discord:1#0'));
    assert.equal(result.ids.length, 1);
    const body = h.fake.sent[0]!.body;
    assert.equal(body.enforce_nonce, true);
    assert.equal(typeof body.nonce, 'string');
    assert.ok((body.nonce as string).length <= 25);
    assert.deepEqual(body.allowed_mentions, { parse: [], replied_user: false });
    assert.deepEqual(body.message_reference, {
      message_id: '700000000000000001',
      fail_if_not_exists: false,
    });
  });
});

await test('the same idempotency key gives the same nonce: a re-send after a restart posts nothing new', async () => {
  await withHarness({}, async (h) => {
    await ready(h);
    const first = await h.adapter.send(reply('once', 'discord:42#0'));
    const again = await h.adapter.send(reply('once', 'discord:42#0'));
    assert.deepEqual(again.ids, first.ids);
    assert.equal(h.fake.sent.length, 1, 'one message created');
  });
});

await test('split: 4500 chars with line breaks → chunks ≤ 2000 cut at line ends, only the first is a reply', async () => {
  await withHarness({ fake: { bucketLimit: { count: 50, windowMs: 1_000 } } }, async (h) => {
    await ready(h);
    const line = 'x'.repeat(99);
    const text = Array.from({ length: 45 }, () => line).join('\n');
    const result = await h.adapter.send(reply(text, 'discord:split#0'));
    assert.equal(result.ids.length, 3);
    const contents = h.fake.sent.map((m) => m.body.content as string);
    for (const c of contents) {
      assert.ok(c.length <= 2000);
      assert.ok(c.endsWith(line), 'cut at a line end');
    }
    assert.equal(contents.join('\n'), text);
    assert.ok(h.fake.sent[0]!.body.message_reference !== undefined);
    assert.equal(h.fake.sent[1]!.body.message_reference, undefined);
    const nonces = new Set(h.fake.sent.map((m) => m.body.nonce));
    assert.equal(nonces.size, 3, 'one nonce per chunk');
  });
});

await test('rate limit per bucket from the headers: the 6th message in 5 s waits for the reset, no 429', async () => {
  await withHarness({ fake: { bucketLimit: { count: 5, windowMs: 600 } } }, async (h) => {
    await ready(h);
    const start = Date.now();
    for (let i = 0; i < 6; i++) await h.adapter.send(reply(`m${i}`));
    assert.equal(h.fake.sent.length, 6);
    assert.ok(Date.now() - start >= 500, 'the 6th waited for the bucket reset');
    assert.equal(
      h.fake.records.sendRequests.filter((r) => r.status === 429).length,
      0,
      'no 429 provoked',
    );
  });
});

for (const scope of ['user', 'global', 'shared'] as const) {
  await test(`fault: 429 (${scope}) → waits retry_after, then delivered`, async () => {
    await withHarness({}, async (h) => {
      await ready(h);
      h.fake.queueSendFaults({ kind: '429', scope, retryAfterS: 0.3 });
      const start = Date.now();
      await h.adapter.send(reply('after the limit', `discord:429-${scope}#0`));
      assert.ok(Date.now() - start >= 280, 'waited retry_after');
      assert.equal(h.fake.sent.length, 1);
      assert.deepEqual(
        h.fake.records.sendRequests.map((r) => r.status),
        [429, 200],
      );
    });
  });
}

await test('fault: 429 with retry_after above send.max_retry_delay_ms → fails rate limited, no wait', async () => {
  await withHarness({ config: { send: { max_retry_delay_ms: 200 } } }, async (h) => {
    await ready(h);
    h.fake.queueSendFaults({ kind: '429', scope: 'user', retryAfterS: 60 });
    const failed = await rejection(h.adapter.send(reply('x')));
    assert.equal(failed.code, 'GW_ERR_DISCORD_SEND_RATE_LIMITED');
    assert.equal(h.fake.records.sendRequests.length, 1);
  });
});

for (const status of [500, 502, 503] as const) {
  await test(`fault: ${status} → retried with the same nonce, delivered once`, async () => {
    await withHarness({}, async (h) => {
      await ready(h);
      h.fake.queueSendFaults({ kind: 'status', status });
      await h.adapter.send(reply('retry me', `discord:${status}#0`));
      const nonces = h.fake.records.sendRequests.map((r) => r.nonce);
      assert.equal(nonces.length, 2);
      assert.equal(nonces[0], nonces[1], 'the same nonce on the retry');
      assert.equal(h.fake.sent.length, 1);
    });
  });
}

await test('fault: connection reset after the message was created → the retry posts nothing new', async () => {
  await withHarness({}, async (h) => {
    await ready(h);
    h.fake.queueSendFaults({ kind: 'reset-after-commit' });
    const result = await h.adapter.send(reply('lost answer', 'discord:reset#0'));
    assert.equal(h.fake.sent.length, 1, 'enforce_nonce returned the original');
    assert.equal(result.ids[0], h.fake.sent[0]!.id);
    assert.equal(h.fake.records.sendRequests.length, 2);
  });
});

for (const [state, code] of [
  ['unknown', 10003],
  ['no_access', 50001],
  ['no_permission', 50013],
  ['dm_refused', 50007],
] as const) {
  await test(`permanent: ${state} (${code}) → rejected with the code, never retried`, async () => {
    await withHarness({ fake: { channels: { [CHANNEL]: state } } }, async (h) => {
      await ready(h);
      const failed = await rejection(h.adapter.send(reply('nope')));
      assert.equal(failed.code, 'GW_ERR_DISCORD_SEND_REJECTED');
      assert.equal(failed.details.platform_code, code);
      assert.equal(h.fake.records.sendRequests.length, 1, 'one request, no retry');
      const line = h.logs.lines.find((l) => l.code === 'GW_ERR_DISCORD_SEND_REJECTED');
      assert.equal(line?.platform_code, code);
    });
  });
}

await test('fault: 401 on a send → unauthorized, and no further request is made', async () => {
  await withHarness({}, async (h) => {
    await ready(h);
    h.fake.queueSendFaults({ kind: 'unauthorized' });
    assert.equal(
      (await rejection(h.adapter.send(reply('a')))).code,
      'GW_ERR_DISCORD_SEND_UNAUTHORIZED',
    );
    assert.equal(
      (await rejection(h.adapter.send(reply('b')))).code,
      'GW_ERR_DISCORD_SEND_UNAUTHORIZED',
    );
    assert.equal(h.fake.records.sendRequests.length, 1);
  });
});

await test('invalid requests: at send.invalid_request_limit, sends pause (logged at error once)', async () => {
  await withHarness(
    {
      fake: { channels: { [CHANNEL]: 'no_access' } },
      config: { send: { invalid_request_limit: 3 } },
    },
    async (h) => {
      await ready(h);
      for (let i = 0; i < 3; i++) await rejection(h.adapter.send(reply(`x${i}`)));
      const paused = await rejection(h.adapter.send(reply('y')));
      assert.equal(paused.code, 'GW_ERR_DISCORD_INVALID_REQUEST_LIMIT');
      await rejection(h.adapter.send(reply('z')));
      assert.equal(h.fake.records.sendRequests.length, 3, 'nothing sent once paused');
      const loud = h.logs.lines.filter((l) => l.code === 'GW_ERR_DISCORD_INVALID_REQUEST_LIMIT');
      assert.equal(loud.length, 1);
      assert.equal(loud[0]!.level, 50);
    },
  );
});

await test('a chat id that is not a snowflake is refused before any request', async () => {
  await withHarness({}, async (h) => {
    await ready(h);
    const failed = await rejection(
      h.adapter.send({ chat: { type: 'channel', id: '../gateway' }, text: 'x' }),
    );
    assert.equal(failed.code, 'GW_ERR_DISCORD_CHAT_ID_INVALID');
    assert.equal(h.fake.records.sendRequests.length, 0);
  });
});

await test('global limit: the client paces itself to send.global_per_second, no 429 provoked', async () => {
  await withHarness(
    {
      fake: { globalPerSecond: 5, bucketLimit: { count: 100, windowMs: 1_000 } },
      config: { send: { global_per_second: 5 } },
    },
    async (h) => {
      await ready(h);
      const start = Date.now();
      await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          h.adapter.send({
            chat: { type: 'channel', id: `3000000000000001${10 + i}` },
            text: `g${i}`,
          }),
        ),
      );
      assert.equal(h.fake.sent.length, 12);
      assert.ok(Date.now() - start >= 1_900, '12 requests at 5/s take two windows');
      assert.equal(h.fake.records.sendRequests.filter((r) => r.status === 429).length, 0);
    },
  );
});
