/**
 * Tests of the fake Bot API server itself, driven by `fetch` over loopback: the protocol
 * violations it must catch (so a broken client fails its test) and the faults it scripts.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test, type TestContext } from 'node:test';
import { FakeTelegramServer, TEXTS } from '../../../src/fakes/telegram/server.js';
import { within } from '../../support/deadline.js';

const T = { timeout: 10_000 };

interface Answer {
  status: number;
  body: Record<string, unknown> | null;
  retryAfter: string | null;
}

async function call(
  fake: FakeTelegramServer,
  method: string,
  params: Record<string, unknown> = {},
  token = fake.token,
): Promise<Answer> {
  const res = await fetch(`${fake.apiBase}/bot${token}/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(params),
  });
  const text = await res.text();
  let body: Record<string, unknown> | null = null;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = null;
  }
  return { status: res.status, body, retryAfter: res.headers.get('retry-after') };
}

/** A fake closed after the test whatever happened (a second close is harmless). */
async function startFake(t: TestContext): Promise<FakeTelegramServer> {
  const fake = await FakeTelegramServer.start();
  t.after(() => fake.close().catch(() => undefined));
  return fake;
}

/** close() must reject naming the violation; the server is closed either way. */
async function closeExpectingViolation(fake: FakeTelegramServer, pattern: RegExp): Promise<void> {
  await assert.rejects(fake.close(), pattern);
}

await test('violation: two getUpdates in flight at once', T, async (t) => {
  const fake = await startFake(t);
  const first = call(fake, 'getUpdates', { timeout: 2 });
  await within(fake.waitFor('poll-waiting', 5_000), 5_000, 'the first poll to wait');
  const second = call(fake, 'getUpdates', { timeout: 0 });
  await within(second, 5_000, 'the second poll');
  fake.pushUpdate('message', { message_id: 1, date: 0, chat: { id: 1, type: 'private' } });
  await within(first, 5_000, 'the first poll');
  await closeExpectingViolation(fake, /two getUpdates in flight/);
});

/** getUpdates over one kept-alive connection (an agent with a single socket). */
async function pollOn(agent: http.Agent, fake: FakeTelegramServer, offset: number): Promise<void> {
  const body = JSON.stringify({ offset, timeout: 0 });
  await new Promise<void>((resolve, reject) => {
    const req = http.request(
      `${fake.apiBase}/bot${fake.token}/getUpdates`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', resolve);
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

await test('violation: the offset going backwards on one connection', T, async (t) => {
  const fake = await startFake(t);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const a = fake.message('one').updateId;
  const b = fake.message('two').updateId;
  await pollOn(agent, fake, b + 1);
  assert.equal(fake.violations.length, 0);
  await pollOn(agent, fake, a + 1);
  await closeExpectingViolation(fake, /offset went backwards on one connection/);
});

await test(
  'a lower offset from a new connection (a restarted client) is no violation',
  T,
  async (t) => {
    const fake = await startFake(t);
    const first = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const second = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => {
      first.destroy();
      second.destroy();
    });
    const a = fake.message('one').updateId;
    const b = fake.message('two').updateId;
    await pollOn(first, fake, b + 1);
    await pollOn(second, fake, a + 1);
    assert.deepEqual(fake.violations, []);
  },
);

await test(
  'violation: text over 4096 code points is refused (400 message is too long)',
  T,
  async (t) => {
    const fake = await startFake(t);
    fake.addChat({ id: 1001, type: 'private' });
    // 4096 emoji are 8192 UTF-16 units but 4096 code points: accepted, as the server does.
    assert.equal(
      (await call(fake, 'sendMessage', { chat_id: 1001, text: '😀'.repeat(4096) })).status,
      200,
    );
    const over = await call(fake, 'sendMessage', { chat_id: 1001, text: 'x'.repeat(4097) });
    assert.equal(over.status, 400);
    assert.equal(over.body?.description, TEXTS.tooLong);
    await closeExpectingViolation(fake, /sendMessage text of 4097 code points/);
  },
);

await test(
  'violation: a reply to an unknown message without allow_sending_without_reply',
  T,
  async (t) => {
    const fake = await startFake(t);
    fake.addChat({ id: 1001, type: 'private' });
    const allowed = await call(fake, 'sendMessage', {
      chat_id: 1001,
      text: 'fine',
      reply_parameters: { message_id: 999, allow_sending_without_reply: true },
    });
    assert.equal(allowed.status, 200);
    const refused = await call(fake, 'sendMessage', {
      chat_id: 1001,
      text: 'not fine',
      reply_parameters: { message_id: 999 },
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.body?.description, TEXTS.replyNotFound);
    await closeExpectingViolation(fake, /reply to unknown message 999/);
  },
);

await test(
  'scripted faults: 401, both 409s, 429 with retry_after, 5xx, malformed JSON, HTML, reset, lost answer',
  T,
  async () => {
    const fake = await FakeTelegramServer.start();
    try {
      assert.equal((await call(fake, 'getMe', {}, `${fake.botId}:wrong`)).status, 401);
      fake.fault('getUpdates', FakeTelegramServer.error(409, TEXTS.conflictPoller));
      assert.equal((await call(fake, 'getUpdates')).body?.description, TEXTS.conflictPoller);
      fake.setWebhookState('https://example.invalid/hook');
      const webhook = await call(fake, 'getUpdates');
      assert.deepEqual([webhook.status, webhook.body?.description], [409, TEXTS.conflictWebhook]);
      fake.setWebhookState(null);
      fake.fault('getUpdates', FakeTelegramServer.error(429, TEXTS.tooManyRequests(7), 7));
      const limited = await call(fake, 'getUpdates');
      assert.equal(limited.status, 429);
      assert.deepEqual(limited.body?.parameters, { retry_after: 7 });
      assert.equal(limited.retryAfter, '7');
      fake.fault('getMe', FakeTelegramServer.error(500, TEXTS.restart));
      assert.equal((await call(fake, 'getMe')).status, 500);
      fake.fault('getMe', { kind: 'malformed' });
      const malformed = await call(fake, 'getMe');
      assert.deepEqual([malformed.status, malformed.body], [200, null]);
      fake.fault('getMe', { kind: 'html', status: 502 });
      assert.deepEqual([(await call(fake, 'getMe')).status], [502]);
      fake.fault('getMe', { kind: 'reset' });
      await assert.rejects(call(fake, 'getMe'));
      // lost-answer: the message is posted, the client only sees a reset.
      fake.addChat({ id: 1001, type: 'private' });
      fake.fault('sendMessage', { kind: 'lost-answer' });
      await assert.rejects(call(fake, 'sendMessage', { chat_id: 1001, text: 'posted' }));
      assert.deepEqual(
        fake.sent.map((s) => s.text),
        ['posted'],
      );
      // slow: answered normally, late.
      fake.fault('getMe', { kind: 'slow', ms: 150 });
      const started = Date.now();
      assert.equal((await call(fake, 'getMe')).status, 200);
      assert.ok(Date.now() - started >= 140);
    } finally {
      await fake.close();
    }
  },
);

await test(
  'scripted: a token revoked mid-run answers the waiting poll 401; a migrated group answers migrate_to_chat_id',
  T,
  async () => {
    const fake = await FakeTelegramServer.start();
    try {
      fake.addChat({ id: -4001, type: 'group', title: 'Friends' });
      fake.migrate(-4001, -1004001);
      const moved = await call(fake, 'sendMessage', { chat_id: -4001, text: 'hi' });
      assert.equal(moved.status, 400);
      assert.deepEqual(moved.body?.parameters, { migrate_to_chat_id: -1004001 });
      assert.equal(
        (await call(fake, 'sendMessage', { chat_id: -1004001, text: 'hi' })).status,
        200,
      );
      const waiting = call(fake, 'getUpdates', { timeout: 5 });
      await within(fake.waitFor('poll-waiting', 5_000), 5_000, 'the poll to wait');
      fake.revokeToken();
      assert.equal((await within(waiting, 5_000, 'the poll answer')).status, 401);
      assert.equal((await call(fake, 'getMe')).status, 401);
    } finally {
      await fake.close();
    }
  },
);
