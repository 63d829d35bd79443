/**
 * The access token: refreshed ahead of expiry by the background loop without touching the
 * connection, refreshed once on 4004 or a refused gateway request, and a background refresh
 * that meets rejected credentials ends the gateway (exit 78) instead of failing silently.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withHarness } from './harness.js';

await test('the token is refreshed before it expires, without dropping the connection', async () => {
  // 2 s tokens, renewed only in their last second (like the platform's last 60 s), refreshed
  // 700 ms before expiry.
  await withHarness(
    {
      fake: { tokenTtlSec: 2, renewWindowSec: 1, heartbeatIntervalMs: 300 },
      config: { token_refresh_margin_ms: 700 },
    },
    async (h) => {
      await h.connected();
      const first = h.fake.currentToken;
      const renewed = await h.fake.waitFor('token', 3_000, (t) => t.outcome === 'renewed');
      const firstAt = h.fake.tokenRequests[0]!.at;
      const age = renewed.at - firstAt;
      assert.ok(
        age >= 1_000 && age < 2_000,
        `renewed ${age} ms after the first token (expiry 2000 ms)`,
      );
      assert.notEqual(h.fake.currentToken, first);
      // Past the first token's expiry, a send uses the new token: no 401, no violation.
      await h.fake.until(() => Date.now() - firstAt > 2_100, 3_000, 'first token expired');
      h.fake.dispatchC2CMessage({ content: 'after expiry' });
      const [event] = await h.waitForEvents(1);
      await h.adapter.send({ chat: event!.chat, text: 'ok', reply: event!.reply });
      assert.equal(h.fake.sendRequests.at(-1)!.status, 200);
      assert.equal(h.fake.connections.length, 1, 'the connection was never dropped');
      assert.equal(h.fake.disconnects.length, 0);
      assert.equal(h.qq(h.read()).state, 'connected');
      h.fake.assertNoViolations();
    },
  );
});

await test('close 4004 after the token was revoked → one new token, Identify accepted', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const before = h.fake.tokenRequests.length;
    const ready = h.fake.waitFor('ready', 2_000, (r) => r.connectionId === 2);
    h.fake.revokeTokens();
    h.fake.closeClient(4004);
    await ready;
    assert.equal(h.fake.tokenRequests.length, before + 1);
    assert.equal(h.fake.tokenRequests.at(-1)!.outcome, 'issued');
    assert.equal(h.fake.identifies.at(-1)!.accepted, true);
    h.fake.assertNoViolations();
  });
});

await test('a gateway request refused for the token → one refresh within the same attempt', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const tokensBefore = h.fake.tokenRequests.length;
    h.fake.revokeTokens();
    const from = h.mark();
    const resumed = h.fake.waitFor('resumed');
    h.fake.closeClient(4009);
    await resumed;
    await h.connected(from);
    // Only the close counted as an attempt: the refused /gateway/bot was fixed in place.
    const attempts = h.states
      .slice(from)
      .filter((d) => d.platforms.qqbot?.detail === 'backoff')
      .map((d) => d.platforms.qqbot?.reconnect_attempt);
    assert.deepEqual(attempts, [1]);
    // The fake answers a refused token with 401 before it records gateway requests.
    assert.equal(h.fake.tokenRequests.length, tokensBefore + 1);
    assert.equal(h.fake.tokenRequests.at(-1)!.outcome, 'issued');
    assert.ok(h.logs.lines.some((l) => l.msg?.includes('refreshing it once')));
    h.fake.assertNoViolations();
  });
});

await test('credentials rejected during a background refresh → fatal GW_ERR_QQ_CREDENTIALS_REJECTED, exit 78', async () => {
  await withHarness(
    { fake: { tokenTtlSec: 2, renewWindowSec: 1 }, config: { token_refresh_margin_ms: 700 } },
    async (h) => {
      await h.connected();
      h.fake.setTokenFault('bad_credentials');
      const outcome = await h.finished();
      assert.equal(outcome.exitCode, 78);
      assert.equal(outcome.error?.code, 'GW_ERR_QQ_CREDENTIALS_REJECTED');
      const final = h.read();
      assert.equal(final.platforms.qqbot?.state, 'fatal');
      assert.equal(final.platforms.qqbot?.last_error?.code, 'GW_ERR_QQ_CREDENTIALS_REJECTED');
    },
  );
});

await test('a failing background refresh is retried and never drops the connection', async () => {
  await withHarness(
    { fake: { tokenTtlSec: 3, renewWindowSec: 2 }, config: { token_refresh_margin_ms: 1_500 } },
    async (h) => {
      await h.connected();
      h.fake.setTokenFault('http500', 1);
      const renewed = await h.fake.waitFor('token', 4_000, (t) => t.outcome === 'renewed');
      assert.ok(renewed);
      assert.ok(h.codes().includes('GW_ERR_QQ_TOKEN_FAILED'));
      assert.equal(h.fake.connections.length, 1);
      assert.equal(h.qq(h.read()).state, 'connected');
    },
  );
});
