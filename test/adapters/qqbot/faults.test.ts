/**
 * Faults before a session exists: refused connections, the token endpoint, the gateway
 * endpoint, the session start limit, handshake timeouts; and the reconnect budget itself,
 * including the original bug (every reconnect refused must end in a fatal, never silence).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readState } from '../../support/spawn-gateway.js';
import { trail, withHarness, type QQHarness } from './harness.js';

/** Waits for a reconnect attempt persisted with `code`, then lets the fake recover. */
async function expectRetried(h: QQHarness, code: string): Promise<void> {
  const doc = await h.waitForState(
    (d) =>
      d.platforms.qqbot?.state === 'reconnecting' && d.platforms.qqbot.last_error?.code === code,
    `reconnecting with ${code}`,
  );
  assert.equal(h.qq(doc).reconnect_attempt, 1);
  assert.equal(h.qq(doc).last_error?.retryable, true);
  await h.connected();
}

await test('refused WebSocket connections are retried with backoff, counted, then connect', async () => {
  await withHarness({ start: false }, async (h) => {
    h.fake.refuseConnections();
    h.startRunner();
    const second = await h.waitForState(
      (d) => d.platforms.qqbot?.reconnect_attempt === 2 && d.platforms.qqbot.detail === 'backoff',
      'attempt 2',
    );
    assert.equal(h.qq(second).state, 'reconnecting');
    assert.equal(h.qq(second).last_error?.code, 'GW_ERR_QQ_CONNECT_FAILED');
    assert.equal(h.qq(second).resumable, false);
    h.fake.refuseConnections(false);
    const doc = await h.connected();
    assert.equal(
      h.qq(doc).reconnect_attempt >= 2,
      true,
      'a quick success does not reset the count',
    );
    assert.equal(h.fake.identifies.length, 1);
  });
});

await test('the original bug: every reconnect refused → fatal GW_ERR_QQ_RECONNECT_EXHAUSTED, exit 1, within budget × steps', async () => {
  const steps = [20, 40];
  const budget = 3;
  await withHarness(
    { config: { reconnect: { backoff_ms: steps, max_attempts: budget } } },
    async (h) => {
      await h.connected();
      h.fake.refuseConnections();
      const closedAt = Date.now();
      h.fake.closeClient(4009);
      const outcome = await h.finished();
      const elapsed = Date.now() - closedAt;
      assert.equal(outcome.exitCode, 1);
      assert.equal(outcome.error?.code, 'GW_ERR_QQ_RECONNECT_EXHAUSTED');
      assert.equal(outcome.error?.retryable, true);
      const final = h.read();
      assert.equal(final.gateway.state, 'fatal');
      assert.equal(final.gateway.exit_code, 1);
      assert.equal(final.platforms.qqbot?.state, 'fatal');
      assert.equal(final.platforms.qqbot?.last_error?.code, 'GW_ERR_QQ_RECONNECT_EXHAUSTED');
      assert.equal(final.platforms.qqbot?.reconnect_attempt, budget);
      // Every attempt was persisted on the way, with the refusal as the reason.
      const attempts = trail(h)
        .filter((s) => s.state === 'reconnecting' && s.detail === 'backoff')
        .map((s) => s.attempt);
      assert.deepEqual(attempts, [1, 2, 3]);
      assert.ok(
        trail(h).some((s) => s.code === 'GW_ERR_QQ_CONNECT_FAILED'),
        'refusals persisted as GW_ERR_QQ_CONNECT_FAILED',
      );
      // Budget × steps: 20 + 40 + 40 ms of backoff, plus the refusals themselves.
      const bound = steps[0]! + steps[1]! * (budget - 1) + 1_000;
      assert.ok(elapsed < bound, `gave up after ${elapsed} ms (bound ${bound} ms)`);
      assert.equal(h.fake.connections.length, 1);
    },
  );
});

await test('quick disconnects right after READY do not reset the budget', async () => {
  await withHarness(
    { config: { reconnect: { max_attempts: 3, healthy_after_ms: 5_000 } } },
    async (h) => {
      // Every session dies right after READY / RESUMED.
      h.fake.on('ready', () => setImmediate(() => h.fake.closeClient(4009)));
      h.fake.on('resumed', () => setImmediate(() => h.fake.closeClient(4009)));
      const outcome = await h.finished();
      assert.equal(outcome.exitCode, 1);
      assert.equal(outcome.error?.code, 'GW_ERR_QQ_RECONNECT_EXHAUSTED');
      assert.ok(trail(h).filter((s) => s.state === 'connected').length >= 3);
      assert.equal(h.read().platforms.qqbot?.last_error?.code, 'GW_ERR_QQ_RECONNECT_EXHAUSTED');
    },
  );
});

await test('a connection healthy for healthy_after_ms resets the budget', async () => {
  await withHarness(
    { config: { reconnect: { max_attempts: 3, healthy_after_ms: 300 } } },
    async (h) => {
      await h.connected();
      // Two failed reconnects, then a healthy connection.
      const before = h.mark();
      h.fake.refuseConnections();
      h.fake.closeClient(4009);
      await h.waitForState((d) => d.platforms.qqbot?.reconnect_attempt === 2, 'attempt 2');
      h.fake.refuseConnections(false);
      const connectedDoc = await h.connected(before);
      assert.equal(h.qq(connectedDoc).reconnect_attempt >= 2, true);
      // Wait out healthy_after_ms on the fake's own heartbeat records (no blind sleep).
      const until = Date.now() + 350;
      await h.fake.until(() => Date.now() >= until, 3_000, 'healthy_after_ms to pass');
      const from = h.mark();
      h.fake.closeClient(4009);
      const doc = await h.waitForState(
        (d) => d.platforms.qqbot?.state === 'reconnecting',
        'reconnecting after a healthy connection',
        { from },
      );
      assert.equal(h.qq(doc).reconnect_attempt, 1, 'count started over');
      await h.connected(from);
    },
  );
});

await test('token endpoint 5xx → GW_ERR_QQ_TOKEN_FAILED, retried, then connects', async () => {
  await withHarness({ start: false }, async (h) => {
    h.fake.setTokenFault('http500', 1);
    h.startRunner();
    await expectRetried(h, 'GW_ERR_QQ_TOKEN_FAILED');
  });
});

await test('token endpoint timeout → GW_ERR_QQ_TOKEN_FAILED, retried, then connects', async () => {
  await withHarness({ start: false, config: { timeouts: { token_ms: 150 } } }, async (h) => {
    h.fake.setTokenFault('timeout', 1);
    h.startRunner();
    await expectRetried(h, 'GW_ERR_QQ_TOKEN_FAILED');
  });
});

await test('token endpoint malformed JSON → GW_ERR_QQ_TOKEN_FAILED, retried, then connects', async () => {
  await withHarness({ start: false }, async (h) => {
    h.fake.setTokenFault('malformed_json', 1);
    h.startRunner();
    await expectRetried(h, 'GW_ERR_QQ_TOKEN_FAILED');
  });
});

await test('token endpoint rejects the credentials → fatal GW_ERR_QQ_CREDENTIALS_REJECTED, exit 78, secret never written', async () => {
  await withHarness({ start: false }, async (h) => {
    h.fake.setTokenFault('bad_credentials');
    h.startRunner();
    const outcome = await h.finished();
    assert.equal(outcome.exitCode, 78);
    assert.equal(outcome.error?.code, 'GW_ERR_QQ_CREDENTIALS_REJECTED');
    const final = h.read();
    assert.equal(final.platforms.qqbot?.state, 'fatal');
    assert.equal(final.platforms.qqbot?.last_error?.code, 'GW_ERR_QQ_CREDENTIALS_REJECTED');
    assert.equal(final.gateway.exit_code, 78);
    // The platform's own words are in the log; the secret is nowhere.
    assert.ok(h.logs.raw.some((l) => l.includes('invalid appid or secret')));
    const secret = h.fake.settings.clientSecret;
    assert.ok(!h.logs.raw.some((l) => l.includes(secret)));
    assert.ok(!JSON.stringify(final).includes(secret));
    assert.equal(h.fake.connections.length, 0);
  });
});

await test('gateway endpoint 5xx → GW_ERR_QQ_GATEWAY_FAILED, retried, then connects', async () => {
  await withHarness({ start: false }, async (h) => {
    h.fake.setGatewayFault('http500', 1);
    h.startRunner();
    await expectRetried(h, 'GW_ERR_QQ_GATEWAY_FAILED');
  });
});

await test('gateway endpoint timeout → GW_ERR_QQ_GATEWAY_FAILED, retried, then connects', async () => {
  await withHarness({ start: false, config: { timeouts: { rest_ms: 150 } } }, async (h) => {
    h.fake.setGatewayFault('timeout', 1);
    h.startRunner();
    await expectRetried(h, 'GW_ERR_QQ_GATEWAY_FAILED');
  });
});

await test('gateway endpoint malformed JSON → GW_ERR_QQ_GATEWAY_FAILED, retried, then connects', async () => {
  await withHarness({ start: false }, async (h) => {
    h.fake.setGatewayFault('malformed_json', 1);
    h.startRunner();
    await expectRetried(h, 'GW_ERR_QQ_GATEWAY_FAILED');
  });
});

await test('gateway endpoint refusing both connections and discovery → attempts counted, then connects', async () => {
  await withHarness({ start: false }, async (h) => {
    h.fake.refuseConnections(true, { gateway: true });
    h.startRunner();
    await h.waitForState(
      (d) => d.platforms.qqbot?.last_error?.code === 'GW_ERR_QQ_GATEWAY_FAILED',
      'gateway failure persisted',
    );
    h.fake.refuseConnections(false);
    await h.connected();
  });
});

await test('session_start_limit remaining 0 → waits until its reset, without Identify or a counted attempt', async () => {
  await withHarness({ start: false }, async (h) => {
    h.fake.setSessionStartLimit({ remaining: 0, reset_after: 400 });
    const setAt = Date.now();
    h.startRunner();
    const waiting = await h.waitForState(
      (d) => d.platforms.qqbot?.detail === 'waiting_session_limit',
      'waiting_session_limit',
    );
    assert.equal(h.qq(waiting).state, 'connecting');
    assert.equal(h.qq(waiting).reconnect_attempt, 0);
    assert.equal(h.fake.connections.length, 0, 'no connection while no Identify is left');
    const ready = await h.fake.waitFor('identify', 2_000);
    assert.ok(ready.at - setAt >= 400, `identified ${ready.at - setAt} ms after the limit was set`);
    const doc = await h.connected();
    assert.equal(h.qq(doc).reconnect_attempt, 0);
    h.fake.assertNoViolations(); // no identify-over-limit
  });
});

await test('Resume does not wait for the session start limit', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    h.fake.setSessionStartLimit({ remaining: 0, reset_after: 60_000 });
    const resumed = h.fake.waitFor('resumed');
    h.fake.closeClient(4009);
    await resumed;
    h.fake.assertNoViolations();
  });
});

await test('no Hello within hello_ms → GW_ERR_QQ_HELLO_TIMEOUT, retried', async () => {
  await withHarness({ start: false, config: { timeouts: { hello_ms: 150 } } }, async (h) => {
    h.fake.settings.helloDelayMs = null;
    h.startRunner();
    await h.waitForState(
      (d) => d.platforms.qqbot?.last_error?.code === 'GW_ERR_QQ_HELLO_TIMEOUT',
      'hello timeout persisted',
    );
    h.fake.settings.helloDelayMs = 0;
    await h.connected();
  });
});

await test('no READY within ready_ms → GW_ERR_QQ_READY_TIMEOUT, retried', async () => {
  await withHarness(
    { start: false, fake: { heartbeatIntervalMs: 5_000 }, config: { timeouts: { ready_ms: 150 } } },
    async (h) => {
      // The first Identify goes unanswered: the link goes half-open as it arrives.
      let first = true;
      h.fake.on('frame', (f) => {
        if ((f.data as { op?: number }).op === 2 && first) {
          first = false;
          h.fake.goHalfOpen();
        }
      });
      h.startRunner();
      await h.waitForState(
        (d) => d.platforms.qqbot?.last_error?.code === 'GW_ERR_QQ_READY_TIMEOUT',
        'ready timeout persisted',
      );
      await h.connected();
    },
  );
});

await test('READY never comes → the state file never says connected, then the budget ends it', async () => {
  await withHarness(
    {
      start: false,
      fake: { heartbeatIntervalMs: 5_000 },
      config: { timeouts: { ready_ms: 150 }, reconnect: { max_attempts: 2 } },
    },
    async (h) => {
      // Every Identify goes unanswered: the link goes half-open as it arrives.
      h.fake.on('frame', (f) => {
        if ((f.data as { op?: number }).op === 2) h.fake.goHalfOpen();
      });
      // Besides the harness's read after every persisted transition, read the file on a tight
      // poll: whatever an operator could have seen at any moment.
      const polled: string[] = [];
      const poll = setInterval(() => {
        const doc = readState(h.path);
        const state = doc?.platforms.qqbot?.state;
        if (state !== undefined && polled.at(-1) !== state) polled.push(state);
      }, 1);
      try {
        h.startRunner();
        const outcome = await h.finished(10_000);
        assert.equal(outcome.exitCode, 1);
        assert.equal(outcome.error?.code, 'GW_ERR_QQ_RECONNECT_EXHAUSTED');
      } finally {
        clearInterval(poll);
      }
      assert.equal(h.fake.identifies.length, 3, 'one Identify per attempt');
      const written = trail(h).map((s) => s.state);
      assert.ok(!written.includes('connected'), `states written: ${written.join(', ')}`);
      assert.ok(!polled.includes('connected'), `states read: ${polled.join(', ')}`);
      // The fake wrote READY into a half-open link: the adapter never read it.
      assert.ok(!h.logs.lines.some((l) => l.msg === 'session ready (READY)'));
      assert.ok(
        trail(h).some((s) => s.code === 'GW_ERR_QQ_READY_TIMEOUT'),
        'the ready timeout was persisted',
      );
      assert.equal(h.read().platforms.qqbot?.state, 'fatal');
    },
  );
});

await test('intents the bot may not use → close 4014 → fatal, exit 78', async () => {
  await withHarness({ fake: { forbiddenIntents: 1 << 12 } }, async (h) => {
    const outcome = await h.finished();
    assert.equal(outcome.exitCode, 78);
    assert.equal(outcome.error?.code, 'GW_ERR_QQ_CLOSE_4014');
    assert.equal(h.read().platforms.qqbot?.state, 'fatal');
    assert.equal(h.fake.connections.length, 1);
  });
});
