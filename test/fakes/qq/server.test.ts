/**
 * Tests of the fake QQ server itself, driven by a raw `ws` client and `fetch` over loopback.
 * Every test closes its fake in `t.after`; the process must exit by itself.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { FakeQQServer } from '../../../src/fakes/qq/server.js';
import type { FakeQQServerOptions } from '../../../src/fakes/qq/options.js';
import { within } from '../../support/deadline.js';
import { RawClient, fetchToken } from './raw-client.js';

/** The client's close, bounded: a socket the fake never closes fails the test by name. */
function closeOf(client: RawClient): RawClient['closed'] {
  return within(client.closed, 5_000, 'the client socket to close');
}

const C2C_INTENT = 1 << 25;
/** No test may hang the run, whatever the fake does wrong. */
const T = { timeout: 10_000 };

async function startFake(t: TestContext, options: FakeQQServerOptions = {}): Promise<FakeQQServer> {
  const fake = await FakeQQServer.start(options);
  t.after(() => fake.close());
  return fake;
}

async function tokenOf(fake: FakeQQServer): Promise<string> {
  const { body } = await fetchToken(fake.tokenUrl, fake.settings.appId, fake.settings.clientSecret);
  assert.equal(typeof body.access_token, 'string');
  return body.access_token as string;
}

async function api(
  fake: FakeQQServer,
  path: string,
  token: string | null,
  body?: unknown,
): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const res = await fetch(`${fake.apiBase}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      'content-type': 'application/json',
      'x-union-appid': fake.settings.appId,
      ...(token !== null && { authorization: `QQBot ${token}` }),
    },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  return {
    status: res.status,
    headers: res.headers,
    json: (await res.json()) as Record<string, unknown>,
  };
}

// ---- token endpoint ----------------------------------------------------------------------

await test(
  'token endpoint: string expires_in, same token on re-request, 100016 with status 200',
  T,
  async (t) => {
    const fake = await startFake(t);
    const first = await fetchToken(fake.tokenUrl, fake.settings.appId, fake.settings.clientSecret);
    assert.equal(first.status, 200);
    assert.equal(first.body.expires_in, '7200');
    const again = await fetchToken(fake.tokenUrl, fake.settings.appId, fake.settings.clientSecret);
    assert.equal(again.body.access_token, first.body.access_token);
    assert.ok(Number(again.body.expires_in) <= 7200);
    assert.deepEqual(
      fake.tokenRequests.map((r) => r.outcome),
      ['issued', 'reused'],
    );

    const wrong = await fetchToken(fake.tokenUrl, fake.settings.appId, 'not-the-secret');
    assert.equal(wrong.status, 200);
    assert.deepEqual(wrong.body, { code: 100016, message: 'invalid appid or secret' });
    fake.assertNoViolations();
  },
);

await test(
  'token endpoint: renews inside the window, old token valid until its end, then expired',
  T,
  async (t) => {
    const fake = await startFake(t, { tokenTtlSec: 0.3, renewWindowSec: 60 });
    const old = await tokenOf(fake);
    const renewed = await tokenOf(fake);
    assert.notEqual(renewed, old);
    assert.equal(fake.tokenRequests[1]?.outcome, 'renewed');
    assert.equal((await api(fake, '/gateway', old)).status, 200);
    await sleep(350); // the token lifetime itself is what is under test
    const expired = await api(fake, '/gateway', old);
    assert.equal(expired.status, 401);
    assert.equal(expired.json.code, 11244);
    assert.deepEqual(
      fake.violations.map((v) => v.kind),
      ['rest-expired-token'],
    );
  },
);

await test(
  'token faults: http500 once, malformed JSON, bad credentials, timeout released by close',
  T,
  async (t) => {
    const fake = await startFake(t);
    fake.setTokenFault('http500', 1);
    const failed = await fetch(fake.tokenUrl, { method: 'POST', body: '{}' });
    assert.equal(failed.status, 500);
    await failed.body?.cancel();
    fake.clearViolations(); // the '{}' body above is a deliberate malformed request
    assert.equal(typeof (await tokenOf(fake)), 'string');

    fake.setTokenFault('malformed_json', 1);
    const res = await fetch(fake.tokenUrl, {
      method: 'POST',
      body: JSON.stringify({
        appId: fake.settings.appId,
        clientSecret: fake.settings.clientSecret,
      }),
    });
    await assert.rejects(res.json(), SyntaxError);

    fake.setTokenFault('bad_credentials', 1);
    const refused = await fetchToken(
      fake.tokenUrl,
      fake.settings.appId,
      fake.settings.clientSecret,
    );
    assert.equal(refused.body.code, 100016);

    fake.setTokenFault('timeout');
    const hanging = fetchToken(fake.tokenUrl, fake.settings.appId, fake.settings.clientSecret);
    await fake.waitFor('token', 1000, (r) => r.outcome === 'timeout');
    await fake.close();
    await assert.rejects(hanging);
    fake.assertNoViolations();
  },
);

// ---- gateway discovery ---------------------------------------------------------------------

await test(
  'GET /gateway and /gateway/bot need a token; remaining decrements on Identify',
  T,
  async (t) => {
    const fake = await startFake(t);
    const denied = await api(fake, '/gateway', null);
    assert.equal(denied.status, 401);
    assert.equal(denied.json.code, 11244);
    assert.equal(denied.json.err_code, 11244);
    assert.equal(typeof denied.json.trace_id, 'string');
    assert.equal(fake.violations[0]?.kind, 'rest-bad-token');
    fake.clearViolations();

    const token = await tokenOf(fake);
    assert.deepEqual((await api(fake, '/gateway', token)).json, { url: fake.wsUrl });
    const bot = await api(fake, '/gateway/bot', token);
    assert.equal(bot.json.url, fake.wsUrl);
    assert.equal(bot.json.shards, 1);
    const limit = bot.json.session_start_limit as Record<string, number>;
    assert.equal(limit.remaining, 1000);

    await RawClient.identified(fake.wsUrl, token);
    const after = (await api(fake, '/gateway/bot', token)).json.session_start_limit as Record<
      string,
      number
    >;
    assert.equal(after.remaining, 999);

    fake.setSessionStartLimit({ remaining: 0, reset_after: 5000 });
    const empty = (await api(fake, '/gateway/bot', token)).json.session_start_limit as Record<
      string,
      number
    >;
    assert.equal(empty.remaining, 0);
    assert.ok(empty.reset_after !== undefined && empty.reset_after <= 5000);

    fake.setGatewayFault('http500', 1);
    assert.equal((await api(fake, '/gateway', token)).status, 500);
    assert.equal((await api(fake, '/gateway', token)).status, 200);
    fake.assertNoViolations();
  },
);

// ---- WebSocket: handshake, dispatch, resume ---------------------------------------------------

await test('Hello, Identify → READY with session, bot user and echoed shard', T, async (t) => {
  const fake = await startFake(t, { heartbeatIntervalMs: 1234 });
  const token = await tokenOf(fake);
  const client = await RawClient.connect(fake.wsUrl);
  assert.deepEqual(await client.next(), { op: 10, d: { heartbeat_interval: 1234 } });
  const identified = fake.waitFor('identify');
  client.send({
    op: 2,
    d: { token: `QQBot ${token}`, intents: C2C_INTENT, shard: [0, 1], properties: {} },
  });
  const ready = await client.next();
  assert.equal(ready.op, 0);
  assert.equal(ready.t, 'READY');
  assert.equal(ready.s, 1);
  assert.match(ready.id ?? '', /^READY:/);
  const d = ready.d as {
    version: number;
    session_id: string;
    user: { bot: boolean };
    shard: number[];
  };
  assert.equal(d.version, 1);
  assert.match(d.session_id, /^[0-9a-f-]{36}$/);
  assert.equal(d.user.bot, true);
  assert.deepEqual(d.shard, [0, 1]);
  const record = await identified;
  assert.equal(record.accepted, true);
  assert.equal(record.sessionId, d.session_id);
  assert.equal(fake.currentSessionId, d.session_id);
  fake.assertNoViolations();
});

await test(
  'dispatch seqs increase by one and realistic message payloads are sent',
  T,
  async (t) => {
    const fake = await startFake(t);
    const client = await RawClient.identified(fake.wsUrl, await tokenOf(fake));
    const c2c = fake.dispatchC2CMessage({ content: 'hello', userOpenid: 'USER1' });
    const group = fake.dispatchGroupAtMessage({ content: 'hi', groupOpenid: 'G1' });
    const at = fake.dispatchAtMessage({ content: 'ping', channelId: 'C1', guildId: 'GUILD1' });
    assert.deepEqual([c2c.s, group.s, at.s], [2, 3, 4]);

    const first = await client.next();
    assert.equal(first.t, 'C2C_MESSAGE_CREATE');
    assert.equal(first.s, 2);
    const msg = first.d as {
      id: string;
      author: { user_openid: string; id: string };
      content: string;
      timestamp: string;
    };
    assert.equal(msg.author.user_openid, 'USER1');
    assert.equal(msg.author.id, 'USER1');
    assert.match(msg.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$/);
    const second = await client.next();
    assert.equal((second.d as { group_openid: string }).group_openid, 'G1');
    assert.equal((second.d as { content: string }).content, ' hi');
    const third = await client.next();
    assert.equal((third.d as { content: string }).content, `<@!${fake.settings.bot.id}> ping`);
    assert.deepEqual(fake.deliveredSeqs, [1, 2, 3, 4]);
    fake.assertNoViolations();
  },
);

await test(
  'Resume replays exactly the missed dispatches, then RESUMED with the next seq',
  T,
  async (t) => {
    const fake = await startFake(t);
    const token = await tokenOf(fake);
    const first = await RawClient.identified(fake.wsUrl, token);
    const sessionId = (first.ready.d as { session_id: string }).session_id;
    fake.dispatch('C2C_MESSAGE_CREATE', { id: 'm2', content: 'a' });
    assert.equal((await first.next()).s, 2);
    fake.terminateClient();
    await closeOf(first);

    // Sent while nobody is connected: buffered for the session.
    const missed = [
      fake.dispatch('C2C_MESSAGE_CREATE', { id: 'm3' }),
      fake.dispatch('C2C_MESSAGE_CREATE', { id: 'm4' }),
    ];
    assert.deepEqual(
      missed.map((m) => m.delivered),
      [false, false],
    );

    const second = await RawClient.connect(fake.wsUrl);
    await second.next(); // Hello
    second.send({ op: 6, d: { token: `QQBot ${token}`, session_id: sessionId, seq: 2 } });
    const frames = [await second.next(), await second.next(), await second.next()];
    assert.deepEqual(
      frames.map((f) => [f.s, f.t]),
      [
        [3, 'C2C_MESSAGE_CREATE'],
        [4, 'C2C_MESSAGE_CREATE'],
        [5, 'RESUMED'],
      ],
    );
    assert.equal(frames[2]?.d, '');
    assert.equal(fake.resumes[0]?.replayed, 2);
    assert.equal(fake.dispatch('C2C_MESSAGE_CREATE', { id: 'm6' }).s, 6);
    assert.equal((await second.next()).s, 6);
    assert.equal(await second.silentFor(50), true);
    fake.assertNoViolations();
  },
);

await test(
  'resumeWindowMs: a session is resumable within the window after a disconnect, not after it',
  T,
  async (t) => {
    const fake = await startFake(t, { resumeWindowMs: 150, invalidSessionCloseDelayMs: 0 });
    const token = await tokenOf(fake);
    const resumeAfter = async (waitMs: number): Promise<{ op: number; t: unknown }> => {
      const first = await RawClient.identified(fake.wsUrl, token);
      const sessionId = (first.ready.d as { session_id: string }).session_id;
      fake.terminateClient();
      await first.closed;
      fake.dispatch('C2C_MESSAGE_CREATE', { id: `m${waitMs}` });
      await sleep(waitMs);
      const second = await RawClient.connect(fake.wsUrl);
      t.after(() => second.terminate());
      await second.next(); // Hello
      second.send({ op: 6, d: { token: `QQBot ${token}`, session_id: sessionId, seq: 1 } });
      const frame = await second.next();
      return { op: frame.op, t: frame.t };
    };
    // Within the window: the missed dispatch is replayed.
    assert.deepEqual(await resumeAfter(0), { op: 0, t: 'C2C_MESSAGE_CREATE' });
    // Past it: op 9 (not resumable), the session is gone.
    assert.deepEqual(await resumeAfter(300), { op: 9, t: undefined });
    assert.deepEqual(
      fake.resumes.map((r) => r.accepted),
      [true, false],
    );
  },
);

await test(
  'Resume of an unknown session: op 9 false then 4006; seq ahead: 4007 and a violation',
  T,
  async (t) => {
    const fake = await startFake(t, { invalidSessionCloseDelayMs: 0 });
    const token = await tokenOf(fake);
    const unknown = await RawClient.connect(fake.wsUrl);
    await unknown.next();
    unknown.send({ op: 6, d: { token: `QQBot ${token}`, session_id: 'nope', seq: 1 } });
    assert.deepEqual(await unknown.next(), { op: 9, d: false });
    assert.equal((await closeOf(unknown)).code, 4006);
    fake.assertNoViolations();

    const first = await RawClient.identified(fake.wsUrl, token);
    const sessionId = (first.ready.d as { session_id: string }).session_id;
    await first.terminate();
    const ahead = await RawClient.connect(fake.wsUrl);
    await ahead.next();
    ahead.send({ op: 6, d: { token: `QQBot ${token}`, session_id: sessionId, seq: 99 } });
    assert.equal((await closeOf(ahead)).code, 4007);
    assert.deepEqual(
      fake.violations.map((v) => v.kind),
      ['resume-seq-ahead'],
    );
  },
);

// ---- heartbeats -----------------------------------------------------------------------------

await test(
  'heartbeats are acked (d or s field) until stopAcking; a seq ahead is a violation',
  T,
  async (t) => {
    const fake = await startFake(t);
    const client = await RawClient.identified(fake.wsUrl, await tokenOf(fake));
    client.send({ op: 1, d: 1 });
    assert.deepEqual(await client.next(), { op: 11 });
    client.send({ op: 1, s: 1 });
    assert.deepEqual(await client.next(), { op: 11 });
    assert.deepEqual(
      fake.heartbeats.map((h) => [h.seq, h.acked]),
      [
        [1, true],
        [1, true],
      ],
    );
    fake.assertNoViolations();

    fake.stopAcking();
    const beat = fake.waitFor('heartbeat');
    client.send({ op: 1, d: 1 });
    assert.equal((await beat).acked, false);
    assert.equal(await client.silentFor(50), true);

    fake.stopAcking(false);
    client.send({ op: 1, d: 7 });
    assert.deepEqual(await client.next(), { op: 11 });
    assert.deepEqual(
      fake.violations.map((v) => v.kind),
      ['heartbeat-seq-ahead'],
    );
  },
);

await test(
  'a client that stops heartbeating is closed 4009 with a heartbeat-missed violation',
  T,
  async (t) => {
    const fake = await startFake(t, { heartbeatIntervalMs: 20, heartbeatDeadlineMs: 80 });
    const client = await RawClient.identified(fake.wsUrl, await tokenOf(fake));
    const closed = await closeOf(client);
    assert.equal(closed.code, 4009);
    assert.deepEqual(
      fake.violations.map((v) => v.kind),
      ['heartbeat-missed'],
    );
  },
);

await test(
  'goHalfOpen: nothing acked or sent; a Resume elsewhere gets the buffered dispatches',
  T,
  async (t) => {
    const fake = await startFake(t);
    const token = await tokenOf(fake);
    const zombie = await RawClient.identified(fake.wsUrl, token);
    const sessionId = (zombie.ready.d as { session_id: string }).session_id;
    fake.goHalfOpen();
    zombie.send({ op: 1, d: 1 });
    const buffered = fake.dispatch('C2C_MESSAGE_CREATE', { id: 'late' });
    assert.equal(buffered.delivered, false);
    assert.equal(await zombie.silentFor(60), true);

    const fresh = await RawClient.connect(fake.wsUrl);
    await fresh.next();
    fresh.send({ op: 6, d: { token: `QQBot ${token}`, session_id: sessionId, seq: 1 } });
    assert.equal((await fresh.next()).s, buffered.s);
    assert.equal((await fresh.next()).t, 'RESUMED');
    assert.equal((await closeOf(zombie)).code, 1006); // the fake drops the abandoned socket
    fake.assertNoViolations();
  },
);

// ---- close codes and scripted closes ------------------------------------------------------------

await test(
  'Identify refusals: 4004 bad or revoked token, 4014 intents, 4001 opcode, 4002 JSON, 4005 twice',
  T,
  async (t) => {
    const fake = await startFake(t, { forbiddenIntents: 1 << 9 });
    const token = await tokenOf(fake);
    const attempt = async (frames: unknown[]): Promise<number> => {
      const client = await RawClient.connect(fake.wsUrl);
      await client.next();
      for (const frame of frames) client.send(frame);
      return (await closeOf(client)).code;
    };
    const identify = (d: Record<string, unknown>): unknown => ({
      op: 2,
      d: { token: `QQBot ${token}`, intents: C2C_INTENT, shard: [0, 1], ...d },
    });

    assert.equal(await attempt([identify({ token: 'QQBot forged' })]), 4004);
    assert.equal(await attempt([identify({ intents: 'all' })]), 4014);
    assert.equal(await attempt([identify({ intents: 1 << 9 })]), 4014);
    assert.equal(await attempt([{ op: 3, d: null }]), 4001);
    assert.equal(await attempt(['{not json']), 4002);
    assert.equal(await attempt([identify({}), identify({})]), 4005);
    assert.deepEqual(
      fake.violations.map((v) => v.kind),
      ['bad-token', 'bad-intents', 'unknown-opcode', 'malformed-frame', 'duplicate-auth'],
    );

    // Revoked behind the client's back: refused, but not the client's fault.
    fake.clearViolations();
    fake.revokeTokens();
    assert.equal(await attempt([identify({})]), 4004);
    assert.equal((await api(fake, '/gateway', token)).status, 401);
    fake.assertNoViolations();
    assert.notEqual(await tokenOf(fake), token);
  },
);

await test(
  'scripted closes: closeClient, terminateClient, op 7 then 4009, op 9 then 4903',
  T,
  async (t) => {
    const fake = await startFake(t, { reconnectCloseDelayMs: 10, invalidSessionCloseDelayMs: 10 });
    const token = await tokenOf(fake);

    let client = await RawClient.identified(fake.wsUrl, token);
    fake.closeClient(4009, 'Session timed out');
    assert.deepEqual(await closeOf(client), { code: 4009, reason: 'Session timed out' });

    client = await RawClient.identified(fake.wsUrl, token);
    fake.terminateClient();
    assert.equal((await closeOf(client)).code, 1006);

    client = await RawClient.identified(fake.wsUrl, token);
    fake.sendReconnect();
    assert.deepEqual(await client.next(), { op: 7 });
    assert.equal((await closeOf(client)).code, 4009);

    client = await RawClient.identified(fake.wsUrl, token);
    const sessionId = fake.currentSessionId;
    fake.sendInvalidSession(false);
    assert.deepEqual(await client.next(), { op: 9, d: false });
    assert.equal((await closeOf(client)).code, 4903);
    assert.equal(fake.currentSessionId, null);
    assert.throws(() => fake.dispatch('X', {}), /no gateway session/);
    assert.notEqual(sessionId, null);

    await fake.until(() => fake.disconnects.length === 4);
    const server = fake.disconnects.map((d) => d.by);
    assert.deepEqual(server, ['server', 'server', 'server', 'server']);
    fake.assertNoViolations();
  },
);

await test(
  'refuseConnections: upgrades get 503, optionally /gateway too; sendRaw and sendOversized',
  T,
  async (t) => {
    const fake = await startFake(t);
    const token = await tokenOf(fake);
    fake.refuseConnections(true, { gateway: true });
    await assert.rejects(RawClient.connect(fake.wsUrl), /503/);
    assert.equal((await api(fake, '/gateway', token)).status, 503);
    fake.refuseConnections(false);

    const client = await RawClient.identified(fake.wsUrl, token);
    fake.sendRaw('{"op":42}');
    assert.deepEqual(await client.next(), { op: 42 });
    fake.sendOversized(4096);
    const big = await client.next();
    assert.equal(JSON.stringify(big).length, 4096);
    fake.assertNoViolations();
  },
);

// ---- message sending ------------------------------------------------------------------------------

await test(
  'sends are recorded; (msg_id, msg_seq) must be unique; bodies are validated',
  T,
  async (t) => {
    const fake = await startFake(t);
    const token = await tokenOf(fake);
    await RawClient.identified(fake.wsUrl, token);
    const inbound = fake.dispatchC2CMessage({ content: 'hi', userOpenid: 'U1' });
    const path = '/v2/users/U1/messages';
    const body = { msg_type: 0, content: 'echo: hi', msg_id: inbound.d.id, msg_seq: 1 };

    const sent = fake.waitFor('message-sent');
    const ok = await api(fake, path, token, body);
    assert.equal(ok.status, 200);
    assert.equal(typeof ok.json.id, 'string');
    assert.ok(Number.isInteger(ok.json.timestamp));
    const record = await sent;
    assert.equal(record.scene, 'c2c');
    assert.equal(record.targetId, 'U1');
    assert.deepEqual(record.body, body);
    assert.equal(record.headers.authorization, undefined);
    assert.equal(record.headers['x-union-appid'], fake.settings.appId);

    const dup = await api(fake, path, token, body);
    assert.equal(dup.status, 400);
    assert.equal(dup.json.code, 40054005);
    assert.equal(dup.json.message, '消息被去重，请检查请求msgseq');
    assert.equal((await api(fake, path, token, { ...body, msg_seq: 2 })).status, 200);
    assert.equal(fake.sentMessages.length, 2);
    assert.equal(fake.sendRequests.length, 3);
    fake.assertNoViolations();

    const noType = await api(fake, path, token, { content: 'x', msg_id: inbound.d.id, msg_seq: 3 });
    assert.equal(noType.status, 400);
    const empty = await api(fake, path, token, {
      msg_type: 0,
      content: '',
      msg_id: inbound.d.id,
      msg_seq: 4,
    });
    assert.equal(empty.json.code, 50006);
    const active = await api(fake, '/v2/groups/G1/messages', token, {
      msg_type: 0,
      content: 'push',
    });
    assert.equal(active.json.code, 40034102);
    assert.equal((await api(fake, path, null, body)).status, 401);
    assert.deepEqual(
      fake.violations.map((v) => v.kind),
      ['send-invalid-body', 'send-invalid-body', 'rest-bad-token'],
    );
    assert.equal(fake.sendRequests.length, 7);
  },
);

await test(
  'guild sends answer a Message object; scripted send faults come in order',
  T,
  async (t) => {
    const fake = await startFake(t);
    const token = await tokenOf(fake);
    await RawClient.identified(fake.wsUrl, token);
    const at = fake.dispatchAtMessage({ content: 'ping', channelId: 'C1', guildId: 'GUILD1' });
    const body = { content: 'pong', msg_id: at.d.id };

    fake.queueSendFaults(
      { kind: 'rate_limited', retryAfterSec: 3, hint: 'both' },
      { kind: 'server_error' },
      { kind: 'token_expired' },
    );
    const limited = await api(fake, '/channels/C1/messages', token, body);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '3');
    assert.equal(limited.json.retry_after, 3);
    assert.equal((await api(fake, '/channels/C1/messages', token, body)).status, 500);
    const expired = await api(fake, '/channels/C1/messages', token, body);
    assert.equal(expired.status, 401);
    assert.equal(expired.json.code, 11244);

    const fresh = await tokenOf(fake);
    assert.notEqual(fresh, token);
    const ok = await api(fake, '/channels/C1/messages', fresh, body);
    assert.equal(ok.status, 200);
    assert.equal(ok.json.channel_id, 'C1');
    assert.equal(ok.json.guild_id, 'GUILD1');
    assert.equal(ok.json.content, 'pong');
    const dm = await api(fake, '/dms/DMGUILD/messages', fresh, { content: 'hi there' });
    assert.equal(dm.json.guild_id, 'DMGUILD');
    assert.deepEqual(
      fake.sentMessages.map((m) => m.scene),
      ['channel', 'dm'],
    );
    fake.assertNoViolations();
  },
);

// ---- violations and lifecycle ---------------------------------------------------------------------

await test(
  'violations: frames before Hello and binary frames; assertNoViolations lists them',
  T,
  async (t) => {
    const fake = await startFake(t, { helloDelayMs: 100 });
    const early = await RawClient.connect(fake.wsUrl);
    early.send({ op: 1, d: null });
    await fake.waitFor('violation');
    assert.equal((await early.next()).op, 10);
    early.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    assert.equal((await closeOf(early)).code, 4002);
    assert.deepEqual(
      fake.violations.map((v) => v.kind),
      ['frame-before-hello', 'binary-frame'],
    );
    assert.throws(() => fake.assertNoViolations(), /frame-before-hello[\s\S]*binary-frame/);
  },
);

await test('close() rejects pending waits and leaves the port closed', T, async (t) => {
  const fake = await startFake(t);
  const client = await RawClient.connect(fake.wsUrl);
  const pending = fake.waitFor('identify', 10_000);
  await fake.close();
  await assert.rejects(pending, (err: Error & { code?: string }) => err.code === 'FAKE_QQ_CLOSED');
  assert.equal((await closeOf(client)).code, 1006);
  await assert.rejects(fetch(fake.tokenUrl, { method: 'POST' }));
  await assert.rejects(
    fake.waitFor('token', 10),
    (err: Error & { code?: string }) => err.code === 'FAKE_QQ_CLOSED',
  );
});

await test(
  'standalone main: prints its addresses, serves the control API, exits 0 on SIGTERM',
  T,
  async (t) => {
    const entry = fileURLToPath(new URL('../../../src/fakes/qq/main.js', import.meta.url));
    const child = spawn(process.execPath, [entry, '--port', '0', '--app-id', '42'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
    const info = JSON.parse(line) as Record<string, string>;
    assert.equal(info.appId, '42');
    assert.match(info.tokenUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+\/app\/getAppAccessToken$/);

    const token = await fetchToken(info.tokenUrl ?? '', '42', 'demo-secret-0123456789');
    assert.equal(typeof token.body.access_token, 'string');
    const client = await RawClient.identified(info.wsUrl ?? '', token.body.access_token as string);
    const control = await fetch(`${info.controlUrl ?? ''}/message`, {
      method: 'POST',
      body: JSON.stringify({ scene: 'c2c', content: 'from control' }),
    });
    assert.equal(control.status, 200);
    await control.body?.cancel();
    assert.equal(((await client.next()).d as { content: string }).content, 'from control');

    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
    await closeOf(client);
  },
);

// ---- webhook side: what the chaos soak's webhook lane uses ----------------------------------

/** A bot stand-in: answers 200 op 12 to a whole body, 408 to one that stops for 150 ms. */
async function webhookBot(t: TestContext): Promise<{ url: string; aborted: () => number }> {
  let aborted = 0;
  const server = createServer((req, res) => {
    const cut = setTimeout(() => {
      res.writeHead(408, { connection: 'close' }).end();
      res.once('finish', () => req.destroy());
    }, 150);
    req.on('error', () => {
      clearTimeout(cut);
      aborted += 1;
    });
    req.resume();
    req.on('end', () => {
      clearTimeout(cut);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"op":12,"d":0}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/qqbot/test`, aborted: () => aborted };
}

await test('webhook: a lost answer is recorded as lost and the callback retried', T, async (t) => {
  const fake = await startFake(t);
  fake.webhook.target = (await webhookBot(t)).url;
  fake.webhook.retry = { attempts: 3, delayMs: 10 };
  fake.webhook.loseAnswers = 1;
  const record = await fake.webhook.dispatch('C2C_MESSAGE_CREATE', { id: 'm-1' });
  assert.deepEqual(record.attempts, [
    { status: 0, body: '', lost: 200 },
    { status: 200, body: '{"op":12,"d":0}' },
  ]);
  assert.equal(record.acked, true);
  assert.equal(fake.webhook.loseAnswers, 0);
});

await test('webhook: partial requests hang, trickle or are reset mid-body', T, async (t) => {
  const fake = await startFake(t);
  const bot = await webhookBot(t);
  fake.webhook.target = bot.url;
  const body = JSON.stringify({ op: 0, d: { id: 'm-2' } });
  const headers = fake.webhook.signedHeaders(body);
  const hang = await fake.webhook.partial({ body, headers }, 5, 'hang', 5_000);
  assert.equal(hang.status, 408);
  const trickle = await fake.webhook.partial({ body, headers }, 5, 'trickle', 5_000, 20);
  assert.equal(trickle.status, 408);
  const reset = await fake.webhook.partial({ body, headers }, 5, 'reset', 5_000);
  assert.equal(reset.status, 0);
  await within(
    (async () => {
      while (bot.aborted() < 1) await sleep(10);
    })(),
    5_000,
    'the bot to see the reset request aborted',
  );
});

await test('webhook: forged headers carry a signature of another key', T, async (t) => {
  const fake = await startFake(t);
  const body = '{"op":0}';
  const real = fake.webhook.signedHeaders(body);
  const forged = fake.webhook.forgedHeaders(body, 'another-secret-entirely-0000');
  assert.match(forged['x-signature-ed25519']!, /^[0-9a-f]{128}$/);
  assert.notEqual(forged['x-signature-ed25519'], real['x-signature-ed25519']);
  assert.equal(forged['x-bot-appid'], fake.settings.appId);
});
