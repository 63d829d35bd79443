/**
 * The failure table, one named test per row, in-process: the real runner and state store,
 * the fake Bot API on loopback. Expected actions are written out by hand from the fact sheet
 * (§2, §3.3, §7), not read from the adapter's own table.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeTelegramServer, TEXTS, type Fault } from '../../../src/fakes/telegram/server.js';
import { trail, withHarness } from './harness.js';

const E = (code: number, description: string, retryAfter?: number): Fault =>
  FakeTelegramServer.error(code, description, retryAfter);

await test('start: getMe then a short first poll → connected; the first poll carries no offset and timeout 0', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const methods = h.fake.requests.map((r) => r.method);
    assert.deepEqual(methods.slice(0, 2), ['getme', 'getupdates']);
    const first = h.fake.requests[1]!.params;
    assert.equal(first.timeout, 0);
    assert.equal(first.offset, undefined);
    assert.deepEqual(first.allowed_updates, [
      'message',
      'edited_message',
      'channel_post',
      'callback_query',
    ]);
    assert.deepEqual(
      trail(h).map((t) => t.state),
      ['starting', 'connecting', 'connected'],
    );
  });
});

await test('row 401 on getMe: fatal, not retried, GW_ERR_TELEGRAM_UNAUTHORIZED (exit 78)', async () => {
  await withHarness({ start: false }, async (h) => {
    h.fake.fault('getMe', E(401, TEXTS.unauthorized));
    h.startRunner();
    const outcome = await h.finished('the runner to end');
    assert.equal(outcome.exitCode, 78);
    assert.equal(h.tg().state, 'fatal');
    assert.equal(h.tg().last_error?.code, 'GW_ERR_TELEGRAM_UNAUTHORIZED');
    assert.equal(h.tg().last_error?.retryable, false);
    assert.equal(
      h.fake.requests.filter((r) => r.method === 'getme').length,
      1,
      'getMe is not retried',
    );
    assert.equal(h.fake.polls, 0);
  });
});

await test('row 404 on getMe (wrong api_base or token): fatal GW_ERR_TELEGRAM_UNAUTHORIZED (exit 78)', async () => {
  await withHarness({ start: false }, async (h) => {
    h.fake.fault('getMe', E(404, TEXTS.notFound));
    h.startRunner();
    const outcome = await h.finished('the runner to end');
    assert.equal(outcome.exitCode, 78);
    assert.equal(h.tg().last_error?.code, 'GW_ERR_TELEGRAM_UNAUTHORIZED');
  });
});

await test('row 409 other poller: retried with backoff, reconnecting persisted, logged once per burst', async () => {
  await withHarness({ start: false, config: { reconnect: { max_attempts: 10 } } }, async (h) => {
    h.fake.fault('getUpdates', E(409, TEXTS.conflictPoller), 3);
    h.startRunner();
    await h.connected();
    const t = trail(h);
    assert.deepEqual(
      t.map((s) => [s.state, s.code, s.attempt]),
      [
        ['starting', null, 0],
        ['connecting', null, 0],
        ['reconnecting', 'GW_ERR_TELEGRAM_CONFLICT', 1],
        ['reconnecting', 'GW_ERR_TELEGRAM_CONFLICT', 2],
        ['reconnecting', 'GW_ERR_TELEGRAM_CONFLICT', 3],
        ['connected', 'GW_ERR_TELEGRAM_CONFLICT', 3],
      ],
    );
    const warnings = h.logs.lines.filter(
      (l) => l.code === 'GW_ERR_TELEGRAM_CONFLICT' && l.level === 40,
    );
    assert.equal(warnings.length, 1, 'one warning for the burst');
    assert.equal(typeof warnings[0]!.hint, 'string');
    // A new burst after a successful poll is logged again.
    h.fake.fault('getUpdates', E(409, TEXTS.conflictPoller), 1);
    const mark = h.states.length;
    await h.waitForState((s) => s.state === 'reconnecting', 'second burst', { from: mark });
    await h.connected(mark);
    assert.equal(
      h.logs.lines.filter((l) => l.code === 'GW_ERR_TELEGRAM_CONFLICT' && l.level === 40).length,
      2,
    );
  });
});

await test('row 409 from a real second poller displacing the waiting long poll: retried, connected again', async () => {
  await withHarness({ config: { polling: { timeout_s: 5 } } }, async (h) => {
    await h.connected();
    await h.fake.waitFor('poll-waiting', 5_000, () => h.fake.pollWaiting);
    assert.ok(h.fake.pollFromElsewhere());
    const doc = await h.waitForState((s) => s.state === 'reconnecting', 'reconnecting');
    assert.equal(h.tg(doc).last_error?.code, 'GW_ERR_TELEGRAM_CONFLICT');
    await h.connected(h.states.indexOf(doc));
  });
});

await test('row 409 webhook set, delete_webhook_on_start false: fatal GW_ERR_TELEGRAM_WEBHOOK_ACTIVE (exit 78)', async () => {
  await withHarness({ start: false }, async (h) => {
    h.fake.setWebhookState('https://example.invalid/hook');
    h.startRunner();
    const outcome = await h.finished('the runner to end');
    assert.equal(outcome.exitCode, 78);
    assert.equal(h.tg().last_error?.code, 'GW_ERR_TELEGRAM_WEBHOOK_ACTIVE');
    assert.equal(h.fake.webhookUrl, 'https://example.invalid/hook', 'the webhook is left alone');
  });
});

await test('row 409 webhook set, delete_webhook_on_start true: deleteWebhook at start, then connected', async () => {
  await withHarness({ start: false, config: { delete_webhook_on_start: true } }, async (h) => {
    h.fake.setWebhookState('https://example.invalid/hook');
    h.startRunner();
    await h.connected();
    assert.equal(h.fake.webhookUrl, null);
    const methods = h.fake.requests.map((r) => r.method);
    assert.deepEqual(methods.slice(0, 3), ['getme', 'deletewebhook', 'getupdates']);
  });
});

await test('row 409 webhook set while running, delete_webhook_on_start true: deleteWebhook again, connected', async () => {
  await withHarness(
    { config: { delete_webhook_on_start: true, polling: { timeout_s: 5 } } },
    async (h) => {
      await h.connected();
      await h.fake.waitFor('poll-waiting', 5_000, () => h.fake.pollWaiting);
      h.fake.setWebhookState('https://example.invalid/hook');
      const doc = await h.waitForState((s) => s.state === 'reconnecting', 'reconnecting');
      assert.equal(h.tg(doc).last_error?.code, 'GW_ERR_TELEGRAM_WEBHOOK_ACTIVE');
      await h.connected(h.states.indexOf(doc));
      assert.equal(h.fake.webhookUrl, null);
    },
  );
});

await test('row 429 on getUpdates: waits exactly retry_after (not the backoff step)', async () => {
  // Backoff steps of 5 s: a wait near 1 s can only come from retry_after.
  await withHarness({ start: false, config: { reconnect: { backoff_ms: [5_000] } } }, async (h) => {
    h.fake.fault('getUpdates', E(429, TEXTS.tooManyRequests(1), 1));
    h.startRunner();
    await h.connected(0, 8_000);
    const polls = h.fake.requests.filter((r) => r.method === 'getupdates');
    const gap = polls[1]!.at - polls[0]!.at;
    assert.ok(gap >= 1_000, `waited ${gap} ms, at least retry_after`);
    assert.ok(gap < 2_500, `waited ${gap} ms, not much more than retry_after`);
    assert.deepEqual(
      trail(h).map((t) => [t.state, t.code, t.detail]),
      [
        ['starting', null, null],
        ['connecting', null, 'get_me'],
        ['reconnecting', 'GW_ERR_TELEGRAM_RATE_LIMITED', 'rate_limited'],
        ['connected', 'GW_ERR_TELEGRAM_RATE_LIMITED', null],
      ],
    );
  });
});

for (const [name, fault, code] of [
  ['500 restart', E(500, TEXTS.restart), 'GW_ERR_TELEGRAM_SERVER_ERROR'],
  ['502 as JSON', E(502, TEXTS.badGateway), 'GW_ERR_TELEGRAM_SERVER_ERROR'],
  ['502 as an HTML page', { kind: 'html', status: 502 }, 'GW_ERR_TELEGRAM_SERVER_ERROR'],
  ['malformed JSON', { kind: 'malformed' }, 'GW_ERR_TELEGRAM_BAD_RESPONSE'],
] as const) {
  await test(`row ${name} on getUpdates: backoff, reconnecting with ${code}, then connected`, async () => {
    await withHarness({ start: false }, async (h) => {
      h.fake.fault('getUpdates', fault, 2);
      h.startRunner();
      await h.connected();
      assert.deepEqual(
        trail(h).map((t) => [t.state, t.code, t.attempt]),
        [
          ['starting', null, 0],
          ['connecting', null, 0],
          ['reconnecting', code, 1],
          ['reconnecting', code, 2],
          ['connected', code, 2],
        ],
      );
      const polls = h.fake.requests.filter((r) => r.method === 'getupdates');
      // backoff_ms [20, 40] without jitter.
      assert.ok(polls[1]!.at - polls[0]!.at >= 20);
      assert.ok(polls[2]!.at - polls[1]!.at >= 40);
    });
  });
}

await test('row 5xx on getMe: retried with backoff (only 401/404 are fatal there)', async () => {
  await withHarness({ start: false }, async (h) => {
    h.fake.fault('getMe', E(502, TEXTS.badGateway), 1);
    h.startRunner();
    await h.connected();
    assert.equal(h.fake.requests.filter((r) => r.method === 'getme').length, 2);
  });
});

await test('row hanging poll (half-open): aborted after timeout_s + poll_slack_ms, GW_ERR_TELEGRAM_POLL_TIMEOUT, then connected', async () => {
  // timeout_s 1 + slack 300 ms: the bound is 1.3 s from the moment the poll went silent.
  await withHarness(
    { config: { polling: { timeout_s: 1 }, timeouts: { poll_slack_ms: 300 } } },
    async (h) => {
      await h.connected();
      h.fake.fault('getUpdates', { kind: 'hang' });
      const hung = await h.fake.waitFor<{ at: number }>('hang', 5_000);
      const mark = h.states.length;
      const doc = await h.waitForState((s) => s.state === 'reconnecting', 'poll timeout', {
        from: mark,
      });
      const detectedMs = Date.parse(doc.updated_at) - hung.at;
      assert.equal(h.tg(doc).last_error?.code, 'GW_ERR_TELEGRAM_POLL_TIMEOUT');
      assert.ok(
        detectedMs >= 1_300 - 5,
        `detected after ${detectedMs} ms, not before the deadline`,
      );
      assert.ok(
        detectedMs < 1_300 + 700,
        `detected after ${detectedMs} ms, within the bound (1300 ms) + scheduling`,
      );
      console.log(
        `# half-open poll detected after ${detectedMs} ms (bound timeout_s + poll_slack_ms = 1300 ms)`,
      );
      await h.connected(mark);
    },
  );
});

await test('row token revoked while running: the waiting poll gets 401 → fatal GW_ERR_TELEGRAM_UNAUTHORIZED (exit 78)', async () => {
  await withHarness({ config: { polling: { timeout_s: 5 } } }, async (h) => {
    await h.connected();
    await h.fake.waitFor('poll-waiting', 5_000, () => h.fake.pollWaiting);
    h.fake.revokeToken();
    const outcome = await h.finished('the runner to end');
    assert.equal(outcome.exitCode, 78);
    assert.equal(h.tg().state, 'fatal');
    assert.equal(h.tg().last_error?.code, 'GW_ERR_TELEGRAM_UNAUTHORIZED');
  });
});

await test("the original bug's twin: every poll fails → GW_ERR_TELEGRAM_RECONNECT_EXHAUSTED persisted, exit 1, within budget × steps", async () => {
  await withHarness(
    { start: false, config: { reconnect: { backoff_ms: [20, 40], max_attempts: 4 } } },
    async (h) => {
      h.fake.faultAlways('getUpdates', E(502, TEXTS.badGateway));
      const started = Date.now();
      h.startRunner();
      const outcome = await h.finished('the runner to end');
      const elapsed = Date.now() - started;
      assert.equal(outcome.exitCode, 1);
      assert.equal(h.tg().state, 'fatal');
      assert.equal(h.tg().last_error?.code, 'GW_ERR_TELEGRAM_RECONNECT_EXHAUSTED');
      assert.deepEqual(
        trail(h).map((t) => [t.state, t.attempt]),
        [
          ['starting', 0],
          ['connecting', 0],
          ['reconnecting', 1],
          ['reconnecting', 2],
          ['reconnecting', 3],
          ['reconnecting', 4],
          ['fatal', 4],
        ],
      );
      assert.equal(h.fake.polls, 5, 'max_attempts + 1 polls, then it gives up');
      // Waits 20 + 40 + 40 + 40 ms = 140 ms; generous margin for a loaded machine.
      assert.ok(elapsed < 140 + 3_000, `gave up after ${elapsed} ms`);
    },
  );
});

await test('budget resets only after polls kept succeeding for healthy_after_ms', async () => {
  const config = { reconnect: { max_attempts: 2, healthy_after_ms: 300 } };
  await withHarness({ start: false, config }, async (h) => {
    h.fake.fault('getUpdates', E(500, TEXTS.restart), 2);
    h.startRunner();
    await h.connected();
    const connectedAt = Date.now();
    // Two failures used the whole budget: it must come back only after 300 ms of good polls.
    await h.waitForLog((l) => l.msg === 'polling healthy: failure count reset', 'budget reset');
    assert.ok(Date.now() - connectedAt >= 300 - 5);
    h.fake.fault('getUpdates', E(500, TEXTS.restart), 2);
    const mark = h.states.length;
    await h.waitForState((s) => s.state === 'reconnecting', 'failing again', { from: mark });
    await h.connected(mark);
    assert.equal(h.tg().reconnect_attempt, 2);
  });
});

await test('a single good poll between failures does not reset the budget', async () => {
  const config = { reconnect: { max_attempts: 3, healthy_after_ms: 60_000 } };
  await withHarness({ start: false, config }, async (h) => {
    h.fake.fault('getUpdates', E(500, TEXTS.restart), 2);
    h.startRunner();
    await h.connected();
    h.fake.faultAlways('getUpdates', E(500, TEXTS.restart));
    const outcome = await h.finished('the runner to end');
    assert.equal(outcome.exitCode, 1);
    assert.equal(h.tg().last_error?.code, 'GW_ERR_TELEGRAM_RECONNECT_EXHAUSTED');
  });
});

await test('row connection reset on getUpdates: backoff, reconnecting with GW_ERR_TELEGRAM_NETWORK, then connected', async () => {
  await withHarness({ start: false }, async (h) => {
    // A reset on a reused keep-alive socket is sent once more on a fresh one (Node's advice):
    // two resets in a row make one failure the adapter sees.
    h.fake.fault('getUpdates', { kind: 'reset' }, 2);
    h.startRunner();
    await h.connected();
    const states = trail(h).map((t) => [t.state, t.code]);
    assert.deepEqual(states.at(-2), ['reconnecting', 'GW_ERR_TELEGRAM_NETWORK']);
    assert.deepEqual(states.at(-1), ['connected', 'GW_ERR_TELEGRAM_NETWORK']);
  });
});

await test('row slow answer (getMe later than timeouts.rest_ms): the call times out, backoff with GW_ERR_TELEGRAM_NETWORK, then connected', async () => {
  await withHarness({ start: false, config: { timeouts: { rest_ms: 200 } } }, async (h) => {
    h.fake.fault('getMe', { kind: 'slow', ms: 1_000 });
    h.startRunner();
    await h.connected();
    assert.deepEqual(
      trail(h).map((t) => [t.state, t.code, t.detail]),
      [
        ['starting', null, null],
        ['connecting', null, 'get_me'],
        ['reconnecting', 'GW_ERR_TELEGRAM_NETWORK', 'backoff'],
        ['connected', 'GW_ERR_TELEGRAM_NETWORK', null],
      ],
    );
    const getMes = h.fake.requests.filter((r) => r.method === 'getme');
    assert.equal(getMes.length, 2);
    assert.ok(getMes[1]!.at - getMes[0]!.at >= 200, 'the first getMe waited rest_ms');
  });
});
