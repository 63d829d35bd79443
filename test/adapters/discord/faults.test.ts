/**
 * One named test per gateway fault of issue 17: stopped ACKs (zombie), half-open link, server
 * op 1 / 7 / 9, refused Resumes, the session start limit, an invalid token, more than 120
 * commands a minute, and the original bug's twin: every reconnect refused ends in a persisted
 * fatal and exit 1, never a silent stop. Also the fake's own protocol checks.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { FakeDiscordServer } from '../../../src/fakes/discord/index.js';
import { Secret } from '../../../src/config/secret.js';
import { withHarness } from './harness.js';

await test('fault: heartbeat ACKs stop right after an ACK → zombie within 1.5 × interval, terminated, resumed', async () => {
  const intervalMs = 400;
  await withHarness(
    { fake: { heartbeatDeadlineMs: null, heartbeatIntervalMs: intervalMs } },
    async (h) => {
      await h.connected();
      const from = h.mark();
      // The worst case of DESIGN §9: the link goes silent just after a heartbeat was ACKed.
      const beats = h.fake.records.heartbeats.length;
      await h.fake.until(() => h.fake.records.heartbeats.length > beats, 'a heartbeat', 2_000);
      const silentAt = Date.now();
      h.fake.stopAcks(true);
      const doc = await h.waitForState(
        (s) =>
          s.state === 'reconnecting' && s.last_error?.code === 'GW_ERR_DISCORD_HEARTBEAT_TIMEOUT',
        'reconnecting after the zombie verdict',
        from,
      );
      assert.equal(h.status(doc).resumable, true);
      const zombie = h.adapter.stats.lastZombie;
      assert.ok(zombie !== null);
      const detection = zombie.at - silentAt;
      assert.ok(
        detection <= 1.5 * intervalMs + 50,
        `detected after ${detection} ms (interval ${intervalMs})`,
      );
      h.fake.stopAcks(false);
      await h.fake.until(() => h.fake.acceptedResumes === 1, 'a Resume after the zombie');
      // terminate(): no close frame, so no client close code reached the fake.
      assert.deepEqual(h.fake.records.clientCloses, [1006]);
      h.fake.assertNoViolations();
    },
  );
});

await test('fault: half-open link (silence both ways) → zombie, resumed on a new socket', async () => {
  await withHarness({ fake: { heartbeatDeadlineMs: null } }, async (h) => {
    await h.connected();
    const from = h.mark();
    h.fake.goHalfOpen();
    await h.waitForState(
      (s) => s.last_error?.code === 'GW_ERR_DISCORD_HEARTBEAT_TIMEOUT',
      'the zombie verdict',
      from,
    );
    await h.fake.until(() => h.fake.acceptedResumes === 1, 'a Resume');
    await h.connected(from);
  });
});

await test('fault: server op 1 → a heartbeat at once, with the last seq', async () => {
  await withHarness({ fake: { heartbeatIntervalMs: 5_000 } }, async (h) => {
    await h.connected();
    const before = h.fake.records.heartbeats.length;
    h.fake.requestHeartbeat();
    await h.fake.until(
      () => h.fake.records.heartbeats.length > before,
      'the requested heartbeat',
      1_000,
    );
    assert.equal(h.fake.records.heartbeats.at(-1)!.d, h.fake.session!.seq);
    h.fake.assertNoViolations();
  });
});

await test('fault: op 7 reconnect → closed with 4000 and resumed', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const from = h.mark();
    h.fake.sendReconnect();
    await h.fake.until(() => h.fake.acceptedResumes === 1, 'a Resume');
    await h.connected(from);
    assert.deepEqual(h.fake.records.clientCloses, [4000]);
    assert.equal(h.fake.acceptedIdentifies, 1);
    h.fake.assertNoViolations();
  });
});

await test('fault: op 9 d:true → resumed', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    h.fake.sendInvalidSession(true);
    await h.fake.until(() => h.fake.acceptedResumes === 1, 'a Resume');
    assert.equal(h.fake.acceptedIdentifies, 1);
  });
});

await test('fault: op 9 d:false → wait 1-5 s (scaled), new Identify at the gateway URL', async () => {
  await withHarness(
    { config: { reconnect: { invalid_session_wait_ms: [150, 150] } } },
    async (h) => {
      await h.connected();
      const from = h.mark();
      const at = Date.now();
      h.fake.sendInvalidSession(false);
      await h.waitForState((s) => s.detail === 'invalid_session', 'invalid_session', from);
      await h.fake.until(() => h.fake.acceptedIdentifies === 2, 'a second Identify');
      assert.ok(Date.now() - at >= 140, 'waited invalid_session_wait_ms');
      assert.equal(h.fake.records.resumes.length, 0);
      h.fake.assertNoViolations();
    },
  );
});

await test('fault: Resume refused twice in a row → Identify (never a Resume loop)', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    h.fake.refuseResumes(5);
    // op 9 true: resumable, yet every Resume is then refused (op 9 d:false below counts as
    // a refused Resume only when it follows one, so close the socket instead).
    h.fake.terminateClient();
    await h.fake.until(() => h.fake.acceptedIdentifies === 2, 'a second Identify', 5_000);
    // The first refusal is op 9 false: that alone already means Identify.
    assert.equal(h.fake.records.resumes.length, 1);
    assert.equal(h.fake.records.resumes[0]!.accepted, false);
  });
});

await test('fault: Resume answered by a dead socket twice → Identify after max_resume_failures', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    // Resume attempts that never get an answer: the resume URL refuses the upgrade.
    h.fake.refuseConnections(true);
    h.fake.terminateClient();
    await h.until(
      () =>
        h.logs.lines.some((l) => l.msg === 'resume keeps failing: starting a new session instead'),
      'the escalation to Identify',
      5_000,
    );
    h.fake.refuseConnections(false);
    await h.fake.until(() => h.fake.acceptedIdentifies === 2, 'a second Identify', 5_000);
    assert.equal(h.fake.acceptedResumes, 0);
  });
});

await test('fault: session start limit exhausted → waits reset_after instead of burning attempts', async () => {
  await withHarness(
    {
      fake: {
        sessionStartLimit: { total: 1000, remaining: 0, reset_after: 400, max_concurrency: 1 },
      },
    },
    async (h) => {
      const start = Date.now();
      await h.waitForState((s) => s.detail === 'waiting_session_limit', 'waiting_session_limit');
      await h.connected(0, 5_000);
      assert.ok(Date.now() - start >= 350, 'waited for the reset');
      assert.equal(h.status().reconnect_attempt, 0, 'no attempt burnt');
      assert.equal(h.fake.acceptedIdentifies, 1);
      h.fake.assertNoViolations();
    },
  );
});

await test('fault: invalid token → GET /gateway/bot 401 → exit 78, no gateway connection', async () => {
  await withHarness(
    { config: { token: new Secret('MTIzNDU2Nzg5MDEyMzQ1Njc4.wrong.not-the-token-0123456789') } },
    async (h) => {
      const outcome = await h.finished();
      assert.equal(outcome.exitCode, 78);
      assert.equal(outcome.error?.code, 'GW_ERR_DISCORD_UNAUTHORIZED');
      assert.equal(h.read().platforms.discord?.state, 'fatal');
      assert.equal(h.fake.records.connections.length, 0);
    },
  );
});

await test('fault: server asks for heartbeats 40 times → the pacer keeps commands within the limit', async () => {
  await withHarness(
    {
      fake: { commandLimit: { count: 10, windowMs: 1_000 }, heartbeatIntervalMs: 5_000 },
      config: { gateway_limit: { commands: 10, window_ms: 1_000 } },
    },
    async (h) => {
      await h.connected();
      h.fake.requestHeartbeat(40);
      await h.fake.until(() => h.fake.records.heartbeats.length >= 10, 'paced heartbeats', 3_000);
      // Past one window: more beats went out, but never more than 10 in any 1 s.
      await new Promise((r) => setTimeout(r, 1_200));
      const times = [
        h.fake.records.identifies[0]!.at,
        ...h.fake.records.heartbeats.map((b) => b.at),
      ];
      for (let i = 10; i < times.length; i++) {
        assert.ok(times[i]! - times[i - 10]! >= 990, `command ${i} within the window`);
      }
      assert.equal(h.fake.records.clientCloses.length, 0, 'not disconnected with 4008');
      h.fake.assertNoViolations();
    },
  );
});

await test('the twin of the original bug: every reconnect refused → fatal persisted, exit 1', async () => {
  await withHarness({ config: { reconnect: { max_attempts: 3 } } }, async (h) => {
    await h.connected();
    h.fake.refuseConnections(true);
    h.fake.terminateClient();
    const outcome = await h.finished(10_000);
    assert.equal(outcome.exitCode, 1);
    assert.equal(outcome.error?.code, 'GW_ERR_DISCORD_RECONNECT_EXHAUSTED');
    const doc = h.read();
    assert.equal(doc.gateway.state, 'fatal');
    assert.equal(doc.gateway.exit_code, 1);
    assert.equal(doc.platforms.discord?.state, 'fatal');
    assert.equal(doc.platforms.discord?.last_error?.code, 'GW_ERR_DISCORD_RECONNECT_EXHAUSTED');
  });
});

// ---- the fake's own protocol checks (a client that breaks the protocol fails the test) ----

async function rawClient(fake: FakeDiscordServer, url: string): Promise<WebSocket> {
  const ws = new WebSocket(`${url}?v=10&encoding=json`);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  void fake;
  return ws;
}

function closeOf(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

await test('fake: Resume at the gateway URL (not resume_gateway_url) is a violation', async () => {
  const fake = await FakeDiscordServer.start({ heartbeatIntervalMs: 10_000 });
  try {
    const ws = await rawClient(fake, fake.gatewayUrl);
    ws.send(JSON.stringify({ op: 6, d: { token: fake.settings.token, session_id: 'x', seq: 0 } }));
    await fake.until(() => fake.violations.length > 0, 'a violation');
    assert.equal(fake.violations[0]!.kind, 'resume-wrong-url');
    ws.terminate();
  } finally {
    await fake.close();
  }
});

await test('fake: Identify without intents closes 4013 and is a violation', async () => {
  const fake = await FakeDiscordServer.start({ heartbeatIntervalMs: 10_000 });
  try {
    const ws = await rawClient(fake, fake.gatewayUrl);
    const closed = closeOf(ws);
    ws.send(JSON.stringify({ op: 2, d: { token: fake.settings.token, properties: {} } }));
    assert.equal(await closed, 4013);
    assert.equal(fake.violations[0]!.kind, 'identify-without-intents');
  } finally {
    await fake.close();
  }
});

await test('fake: more than the command limit closes 4008 and is a violation', async () => {
  const fake = await FakeDiscordServer.start({
    heartbeatIntervalMs: 10_000,
    commandLimit: { count: 5, windowMs: 60_000 },
  });
  try {
    const ws = await rawClient(fake, fake.gatewayUrl);
    const closed = closeOf(ws);
    for (let i = 0; i < 6; i++) ws.send(JSON.stringify({ op: 1, d: null }));
    assert.equal(await closed, 4008);
    assert.ok(fake.violations.some((v) => v.kind === 'too-many-commands'));
  } finally {
    await fake.close();
  }
});

await test('fake: heartbeats without the seq they were sent, twice in a row, are a violation', async () => {
  const fake = await FakeDiscordServer.start({ heartbeatIntervalMs: 10_000 });
  try {
    const ws = await rawClient(fake, fake.gatewayUrl);
    ws.send(
      JSON.stringify({ op: 2, d: { token: fake.settings.token, intents: 513, properties: {} } }),
    );
    await fake.until(() => fake.acceptedIdentifies === 1, 'Identify');
    await new Promise((r) => setTimeout(r, 250));
    // The first one behind may be a stalled loop's: not yet a violation.
    ws.send(JSON.stringify({ op: 1, d: null }));
    await fake.until(() => fake.records.heartbeats.length === 1, 'the first heartbeat');
    assert.equal(fake.violations.length, 0);
    ws.send(JSON.stringify({ op: 1, d: null }));
    await fake.until(() => fake.violations.length > 0, 'a violation');
    assert.equal(fake.violations[0]!.kind, 'heartbeat-without-seq');
    ws.terminate();
  } finally {
    await fake.close();
  }
});
