/**
 * Sending through the real adapter to the fake: plain text, replies, splitting, pacing and
 * one action per failure (fact sheet §6-§8). The fake fails the test on text over 4096 code
 * points or a reply to an unknown message without allow_sending_without_reply.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { OutboundMessage } from '../../../src/adapters/contract.js';
import { GatewayError } from '../../../src/errors.js';
import { TEXTS } from '../../../src/fakes/telegram/server.js';
import { splitText, utf16Length } from '../../../src/util/split-text.js';
import { withHarness } from './harness.js';

const GROUP = { id: -4001, type: 'group', title: 'Friends' } as const;

async function rejection(promise: Promise<unknown>): Promise<GatewayError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof GatewayError, String(err));
    return err;
  }
  assert.fail('expected a rejection');
}

await test('splitText: at most the limit in UTF-16 units, never inside a surrogate pair, line breaks first', () => {
  const emoji = '😀'; // two UTF-16 units
  const split = (text: string, max: number): string[] => splitText(text, max, utf16Length);
  const chunks = split('a' + emoji.repeat(10), 4);
  for (const c of chunks) assert.ok(c.length <= 4, `${c} within the limit`);
  assert.equal(chunks.join(''), 'a' + emoji.repeat(10), 'nothing lost, no half pairs');
  assert.ok(chunks.every((c) => !/[\uD800-\uDBFF]$/.test(c)));
  assert.deepEqual(split('aaaa bbbb\ncccc dddd', 12), ['aaaa bbbb', 'cccc dddd']);
  assert.deepEqual(split('aaaaaa bbbbbb', 8), ['aaaaaa', 'bbbbbb']);
  assert.deepEqual(split('abcdefghij', 4), ['abcd', 'efgh', 'ij']);
  assert.deepEqual(split('   ', 4), []);
  // A flag is two surrogate pairs (4 units): never cut between its regional indicators.
  assert.deepEqual(split('ab🇩🇪🇫🇷', 6), ['ab🇩🇪', '🇫🇷']);
});

await test('send: plain text (no parse_mode), the reply with allow_sending_without_reply, the message id returned', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    h.fake.message('hello *world*');
    const [event] = await h.waitForEvents(1);
    const result = await h.adapter.send({
      chat: event!.chat,
      text: 'echo: *world* <b>',
      reply: event!.reply,
    });
    const sent = h.fake.sent[0]!;
    assert.deepEqual(result.ids, [String(sent.messageId)]);
    assert.equal(sent.text, 'echo: *world* <b>');
    assert.equal(sent.params.parse_mode, undefined);
    assert.deepEqual(sent.params.reply_parameters, {
      message_id: event!.reply.message_id,
      allow_sending_without_reply: true,
    });
    assert.equal(sent.replyTo, event!.reply.message_id);
  });
});

await test('send: a reply to a deleted message still goes out (allow_sending_without_reply)', async () => {
  await withHarness({}, async (h) => {
    h.fake.addChat({ id: 1001, type: 'private', first_name: 'Ada' });
    await h.connected();
    const message: OutboundMessage = {
      chat: { type: 'c2c', id: '1001' },
      text: 'late answer',
      reply: { chat_id: 1001, chat_type: 'private', message_id: 999, kind: 'message' },
    };
    await h.adapter.send(message);
    assert.equal(h.fake.sent[0]!.replyTo, null);
  });
});

await test('send: 10,000 characters with emoji are split under 4096 per message, the reply on the first only', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    h.fake.message('long please');
    const [event] = await h.waitForEvents(1);
    const line = 'x'.repeat(97) + '😀\n'; // 100 UTF-16 units per line
    const text = line.repeat(100);
    const result = await h.adapter.send({ chat: event!.chat, text, reply: event!.reply });
    assert.equal(result.ids.length, 3);
    assert.ok(h.fake.sent.every((s) => s.text.length <= 4096));
    assert.ok(h.fake.sent[0]!.params.reply_parameters !== undefined);
    assert.equal(h.fake.sent[1]!.params.reply_parameters, undefined);
    assert.equal(
      h.fake.sent.map((s) => s.text).join('\n'),
      text.trimEnd(),
      'cut at line breaks, nothing lost but the trailing line break',
    );
  });
});

for (const [name, chat, description, status] of [
  ['403 blocked', 1001, TEXTS.blocked, 403],
  ['403 kicked', GROUP.id, TEXTS.kicked, 403],
] as const) {
  await test(`send: ${name} fails that message for good with GW_ERR_TELEGRAM_SEND_REJECTED, never retried`, async () => {
    await withHarness({}, async (h) => {
      h.fake.addChat(chat === 1001 ? { id: 1001, type: 'private' } : GROUP);
      h.fake.forbid(chat, description);
      await h.connected();
      const err = await rejection(
        h.adapter.send({
          chat: { type: chat === 1001 ? 'c2c' : 'group', id: String(chat) },
          text: 'hi',
        }),
      );
      assert.equal(err.code, 'GW_ERR_TELEGRAM_SEND_REJECTED');
      assert.equal(err.retryable, false);
      assert.equal(err.details.error_code, status);
      assert.equal(h.fake.requests.filter((r) => r.method === 'sendmessage').length, 1);
      assert.ok(
        h.logs.lines.some(
          (l) => l.code === 'GW_ERR_TELEGRAM_SEND_REJECTED' && l.error_code === status,
        ),
      );
    });
  });
}

await test('send: 400 chat not found fails for good, never retried', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const err = await rejection(
      h.adapter.send({ chat: { type: 'c2c', id: '424242' }, text: 'hi' }),
    );
    assert.equal(err.code, 'GW_ERR_TELEGRAM_SEND_REJECTED');
    assert.equal(err.details.error_code, 400);
    assert.equal(h.fake.requests.filter((r) => r.method === 'sendmessage').length, 1);
  });
});

await test('send: a group migrated to a supergroup → resent to migrate_to_chat_id, logged, remembered', async () => {
  await withHarness({}, async (h) => {
    h.fake.addChat(GROUP);
    h.fake.migrate(GROUP.id, -1005001);
    await h.connected();
    await h.adapter.send({ chat: { type: 'group', id: String(GROUP.id) }, text: 'one' });
    await h.adapter.send({ chat: { type: 'group', id: String(GROUP.id) }, text: 'two' });
    assert.deepEqual(
      h.fake.sent.map((s) => [s.chatId, s.text]),
      [
        [-1005001, 'one'],
        [-1005001, 'two'],
      ],
    );
    assert.equal(
      h.fake.requests.filter((r) => r.method === 'sendmessage').length,
      3,
      'the second send goes straight there',
    );
    assert.ok(h.logs.lines.some((l) => l.migrate_to_chat_id === -1005001));
  });
});

await test('send: 429 waits retry_after then delivers; a retry_after above the cap fails at once', async () => {
  await withHarness({}, async (h) => {
    h.fake.addChat({ id: 1001, type: 'private' });
    await h.connected();
    h.fake.fault('sendMessage', {
      kind: 'error',
      code: 429,
      description: TEXTS.tooManyRequests(1),
      retryAfter: 1,
    });
    const started = Date.now();
    await h.adapter.send({ chat: { type: 'c2c', id: '1001' }, text: 'patient' });
    assert.ok(Date.now() - started >= 1_000);
    assert.equal(h.fake.sent.length, 1);
    h.fake.fault('sendMessage', {
      kind: 'error',
      code: 429,
      description: TEXTS.tooManyRequests(60),
      retryAfter: 60,
    });
    const err = await rejection(
      h.adapter.send({ chat: { type: 'c2c', id: '1001' }, text: 'hurry' }),
    );
    assert.equal(err.code, 'GW_ERR_TELEGRAM_SEND_RATE_LIMITED');
  });
});

await test('send: 5xx is retried; a reset after sending is uncertain and not resent', async () => {
  await withHarness({}, async (h) => {
    h.fake.addChat({ id: 1001, type: 'private' });
    await h.connected();
    h.fake.fault('sendMessage', { kind: 'error', code: 502, description: TEXTS.badGateway });
    await h.adapter.send({ chat: { type: 'c2c', id: '1001' }, text: 'again' });
    assert.equal(h.fake.sent.length, 1);
    h.fake.fault('sendMessage', { kind: 'hang' });
    const err = await rejection(
      h.adapter.send({ chat: { type: 'c2c', id: '1001' }, text: 'lost?' }),
    );
    assert.equal(err.code, 'GW_ERR_TELEGRAM_SEND_UNCERTAIN');
    assert.equal(h.fake.requests.filter((r) => r.method === 'sendmessage').length, 3, 'not resent');
  });
});

await test('send: a reset of a reused keep-alive socket after the request was written is uncertain, never posted twice', async () => {
  await withHarness({}, async (h) => {
    h.fake.addChat({ id: 1001, type: 'private' });
    await h.connected();
    const to = (text: string): Promise<unknown> =>
      h.adapter.send({ chat: { type: 'c2c', id: '1001' }, text });
    // The first send leaves its socket in the keep-alive pool; the second reuses it.
    await to('warm');
    h.fake.fault('sendMessage', { kind: 'lost-answer' });
    const err = await rejection(to('once only'));
    assert.equal(err.code, 'GW_ERR_TELEGRAM_SEND_UNCERTAIN');
    assert.deepEqual(
      h.fake.sent.map((s) => s.text),
      ['warm', 'once only'],
      'the message the server took is not sent again',
    );
    // The pool is still usable afterwards.
    await to('after');
    assert.equal(h.fake.sent.at(-1)!.text, 'after');
  });
});

await test('pacer: a burst to one private chat is spaced by private_interval_ms, other chats are not held back', async () => {
  const config = {
    send: { private_interval_ms: 150, group_interval_ms: 150, global_interval_ms: 0 },
  };
  await withHarness({ config }, async (h) => {
    h.fake.addChat({ id: 1001, type: 'private' });
    h.fake.addChat({ id: 1002, type: 'private' });
    await h.connected();
    const to = (id: string, text: string): Promise<unknown> =>
      h.adapter.send({ chat: { type: 'c2c', id }, text });
    await Promise.all([to('1001', 'a'), to('1001', 'b'), to('1001', 'c'), to('1002', 'x')]);
    const times = (chat: number): number[] =>
      h.fake.sent.filter((s) => s.chatId === chat).map((s) => s.at);
    const a = times(1001);
    assert.ok(a[1]! - a[0]! >= 140 && a[2]! - a[1]! >= 140, `spaced: ${a.join(',')}`);
    assert.ok(times(1002)[0]! - a[0]! < 140, 'another chat does not wait for the first');
  });
});

await test('pacer: groups are spaced by group_interval_ms, and every chat shares the global interval', async () => {
  const config = {
    send: { private_interval_ms: 0, group_interval_ms: 300, global_interval_ms: 100 },
  };
  await withHarness({ config }, async (h) => {
    h.fake.addChat(GROUP);
    for (const id of [1001, 1002, 1003]) h.fake.addChat({ id, type: 'private' });
    await h.connected();
    const group = (text: string): Promise<unknown> =>
      h.adapter.send({ chat: { type: 'group', id: String(GROUP.id) }, text });
    let start = Date.now();
    await Promise.all([group('g1'), group('g2')]);
    const g = h.fake.sent.map((s) => s.at - start);
    assert.ok(g[1]! >= 300, `the second group send at ${g[1]} ms, not before its slot`);
    const before = h.fake.sent.length;
    start = Date.now();
    await Promise.all(
      ['1001', '1002', '1003'].map((id) =>
        h.adapter.send({ chat: { type: 'c2c', id }, text: 'x' }),
      ),
    );
    const t = h.fake.sent.slice(before).map((s) => s.at - start);
    assert.ok(
      t[1]! >= 100 && t[2]! >= 200,
      `different chats share the global slot: ${t.join(',')}`,
    );
  });
});

await test('send: an HTML 502 from a proxy is retried; a 200 that is not the envelope is uncertain, not resent', async () => {
  await withHarness({}, async (h) => {
    h.fake.addChat({ id: 1001, type: 'private' });
    await h.connected();
    const to = (text: string): Promise<unknown> =>
      h.adapter.send({ chat: { type: 'c2c', id: '1001' }, text });
    h.fake.fault('sendMessage', { kind: 'html', status: 502 });
    await to('through the proxy');
    assert.deepEqual(
      h.fake.sent.map((s) => s.text),
      ['through the proxy'],
    );
    h.fake.fault('sendMessage', { kind: 'malformed' });
    const err = await rejection(to('garbled answer'));
    assert.equal(err.code, 'GW_ERR_TELEGRAM_SEND_UNCERTAIN');
    const tries = h.fake.requests.filter((r) => r.method === 'sendmessage');
    assert.equal(tries.length, 3, 'the garbled answer was not followed by a resend');
  });
});
