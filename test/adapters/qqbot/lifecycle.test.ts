/**
 * The adapter's life against the fake: first connection, the state file at each step of the
 * handshake, heartbeats, the token, a clean stop.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TEST_HEARTBEAT_MS, trail, withHarness } from './harness.js';

await test('first connection: connecting (token, gateway, socket, identifying) then connected only after READY', async () => {
  await withHarness({}, async (h) => {
    const ready = h.fake.waitFor('ready');
    await h.connected();
    await ready;
    const steps = trail(h).map((s) => `${s.state}/${s.detail ?? '-'}`);
    // The runner's own `starting`, then ours, in order. The steps inside `connecting` are
    // no transitions: noted (in order, see the log) and written with the next write.
    assert.deepEqual(steps.slice(steps.indexOf('connecting/fetching_token')), [
      'connecting/fetching_token',
      'connected/-',
    ]);
    assert.deepEqual(
      h.logs.lines.flatMap((l) =>
        typeof l.detail === 'string' && l.msg === `connecting: ${l.detail}` ? [l.detail] : [],
      ),
      ['fetching_gateway', 'opening_socket', 'identifying'],
    );
    const connected = h.qq();
    assert.equal(connected.resumable, true);
    assert.equal(connected.reconnect_attempt, 0);
    assert.equal(connected.max_reconnect_attempts, 5);
    assert.equal(h.fake.identifies.length, 1);
    assert.equal(h.fake.identifies[0]!.accepted, true);
    // Default intents: GROUP_AND_C2C_EVENT | PUBLIC_GUILD_MESSAGES | DIRECT_MESSAGE.
    assert.equal(h.fake.identifies[0]!.intents, (1 << 25) | (1 << 30) | (1 << 12));
    assert.deepEqual(h.fake.identifies[0]!.shard, [0, 1]);
    // One token request shared by the refresh loop and the connection (singleflight).
    assert.equal(h.fake.tokenRequests.length, 1);
    assert.deepEqual(
      h.fake.gatewayRequests.map((r) => r.path),
      ['/gateway/bot'],
    );
    const outcome = await h.stop();
    assert.equal(outcome.exitCode, 0);
    const final = h.read();
    assert.equal(final.gateway.state, 'stopped');
    assert.equal(final.platforms.qqbot?.state, 'stopped');
    h.fake.assertNoViolations();
  });
});

await test('heartbeats run at the Hello interval and carry the last seq', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const sent = h.fake.dispatchC2CMessage({ content: 'one' });
    await h.waitForEvents(1);
    const beat = await h.fake.waitFor('heartbeat', TEST_HEARTBEAT_MS * 3);
    assert.equal(beat.seq, sent.s);
    assert.equal(beat.acked, true);
    const next = await h.fake.waitFor('heartbeat', TEST_HEARTBEAT_MS * 3);
    const gap = next.at - beat.at;
    assert.ok(gap >= TEST_HEARTBEAT_MS - 5 && gap < TEST_HEARTBEAT_MS + 100, `gap ${gap} ms`);
    h.fake.assertNoViolations();
  });
});

await test('the first heartbeat is jittered within one interval of Hello', async () => {
  // random() = 0.25: the first beat comes a quarter interval after Hello.
  await withHarness({ config: { jitter: true }, random: () => 0.25 }, async (h) => {
    const connection = await h.fake.waitFor('connection');
    const beat = await h.fake.waitFor('heartbeat', TEST_HEARTBEAT_MS * 3);
    const after = beat.at - connection.at;
    assert.ok(after < TEST_HEARTBEAT_MS * 0.25 + 80, `first beat ${after} ms after connect`);
    assert.ok(after >= TEST_HEARTBEAT_MS * 0.25 - 5, `first beat ${after} ms after connect`);
  });
});

await test('a server heartbeat request (op 1) is answered at once', async () => {
  await withHarness({ fake: { heartbeatIntervalMs: 5_000 } }, async (h) => {
    await h.connected();
    const beat = h.fake.waitFor('heartbeat', 1_000);
    h.fake.sendRaw(JSON.stringify({ op: 1, d: null }));
    const record = await beat;
    assert.equal(record.seq, 1);
  });
});

await test('stop is immediate while waiting in a long backoff', async () => {
  await withHarness({ config: { reconnect: { backoff_ms: [30_000] } } }, async (h) => {
    await h.connected();
    const from = h.mark();
    h.fake.refuseConnections();
    h.fake.closeClient(4009);
    await h.waitForState((d) => d.platforms.qqbot?.detail === 'backoff', 'backoff', { from });
    const started = Date.now();
    const outcome = await h.stop();
    assert.ok(Date.now() - started < 1_000, `stop took ${Date.now() - started} ms`);
    assert.equal(outcome.exitCode, 0);
    assert.equal(h.read().platforms.qqbot?.state, 'stopped');
  });
});

await test('stop while connected closes with 4000 (session left resumable) and ends the run', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const disconnect = h.fake.waitFor('disconnect');
    const outcome = await h.stop();
    assert.equal(outcome.exitCode, 0);
    const record = await disconnect;
    // Not 1000: a planned stop leaves the session resumable for the next process.
    assert.equal(record.code, 4000);
    assert.equal(record.by, 'client');
    assert.equal(h.fake.openConnections, 0);
  });
});
