/**
 * The basic life of the Discord adapter against the fake: `connected` only after READY, the
 * Identify it sends, heartbeats with the last seq, events normalized, a planned stop that
 * closes with 4000 (never 1000 / 1001) and leaves the session resumable.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withHarness } from './harness.js';

await test('connects: Identify with intents, shard and properties; connected only after READY', async () => {
  await withHarness({ fake: { helloDelayMs: 150 } }, async (h) => {
    await h.connected();
    const before = h.states.filter((d) => d.platforms.discord?.state === 'connected');
    assert.equal(before.length, 1);
    assert.equal(h.fake.acceptedIdentifies, 1);
    const identify = h.fake.records.identifies[0]!;
    // GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES | MESSAGE_CONTENT
    assert.equal(identify.intents, 37377);
    assert.deepEqual(identify.shard, [0, 1]);
    assert.equal(h.fake.records.connections[0]!.path, '/gateway');
    assert.equal(h.fake.records.gatewayBotRequests, 1);
    // Before READY the state said connecting, never connected (Hello came 150 ms late).
    const index = h.states.findIndex((d) => d.platforms.discord?.state === 'connected');
    assert.equal(h.states[index - 1]?.platforms.discord?.state, 'connecting');
    h.fake.assertNoViolations();
  });
});

await test('heartbeats carry the last dispatch seq; the fake sees no violation', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    h.fake.dispatchMessage({ content: 'one', mentionsBot: true });
    const seq = h.fake.session!.seq;
    await h.fake.until(
      () => h.fake.records.heartbeats.some((b) => b.d === seq),
      `a heartbeat with d=${seq}`,
      3_000,
    );
    h.fake.assertNoViolations();
  });
});

await test('a planned stop closes with 4000 and keeps the session resumable', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const outcome = await h.stop();
    assert.equal(outcome.exitCode, 0);
    await h.fake.until(() => h.fake.records.clientCloses.length === 1, 'the client close');
    assert.deepEqual(h.fake.records.clientCloses, [4000]);
    assert.equal(h.fake.session?.invalid, false, 'the session is still resumable');
    h.fake.assertNoViolations();
  });
});
