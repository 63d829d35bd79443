/**
 * Opcodes that end a connection (op 7 Reconnect, op 9 Invalid Session), the zombie watchdog
 * (no heartbeat ACK, half-open link), and Resume falling back to Identify instead of looping.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TEST_HEARTBEAT_MS, trail, withHarness, type QQHarness } from './harness.js';

await test('op 7 Reconnect → resume on a new connection (server closes 4009 after it)', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const from = h.mark();
    const resumed = h.fake.waitFor('resumed');
    h.fake.sendReconnect();
    await resumed;
    await h.connected(from);
    const steps = trail(h, from);
    assert.equal(
      steps.find((s) => s.state === 'reconnecting')?.code,
      'GW_ERR_QQ_RECONNECT_REQUESTED',
    );
    assert.equal(h.fake.identifies.length, 1);
    assert.equal(h.fake.resumes.length, 1);
    // One new connection, not two (op 7 and the close that follows are one reconnect).
    assert.equal(h.fake.connections.length, 2);
    h.fake.assertNoViolations();
  });
});

await test('op 7 Reconnect when the server leaves the closing to the client → resume', async () => {
  await withHarness({ fake: { reconnectCloseDelayMs: null } }, async (h) => {
    await h.connected();
    const resumed = h.fake.waitFor('resumed');
    const disconnect = h.fake.waitFor('disconnect');
    h.fake.sendReconnect();
    assert.equal((await disconnect).by, 'client');
    await resumed;
    assert.equal(h.fake.resumes.length, 1);
    assert.equal(h.fake.connections.length, 2);
  });
});

await test('op 9 Invalid Session (resumable) → resume', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const from = h.mark();
    const resumed = h.fake.waitFor('resumed');
    h.fake.sendInvalidSession(true);
    await resumed;
    await h.connected(from);
    const reconnecting = trail(h, from).find((s) => s.state === 'reconnecting');
    assert.equal(reconnecting?.code, 'GW_ERR_QQ_INVALID_SESSION');
    assert.equal(reconnecting?.resumable, true);
    assert.equal(h.fake.identifies.length, 1);
    assert.equal(h.fake.resumes.length, 1);
  });
});

await test('op 9 Invalid Session (not resumable) → identify, the session is forgotten', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const from = h.mark();
    const ready = h.fake.waitFor('ready', 2_000, (r) => r.connectionId === 2);
    h.fake.sendInvalidSession(false);
    await ready;
    await h.connected(from);
    const reconnecting = trail(h, from).find((s) => s.state === 'reconnecting');
    assert.equal(reconnecting?.code, 'GW_ERR_QQ_INVALID_SESSION');
    assert.equal(reconnecting?.resumable, false);
    assert.equal(h.fake.resumes.length, 0);
    assert.equal(h.fake.identifies.length, 2);
    assert.equal(h.fake.connections.length, 2);
    h.fake.assertNoViolations();
  });
});

await test('a refused Resume (op 9 false, close 4006) falls back to Identify at once', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const ready = h.fake.waitFor('ready', 3_000, (r) => r.connectionId === 3);
    h.fake.forgetSession();
    h.fake.closeClient(4009);
    await ready;
    assert.equal(h.fake.resumes.length, 1);
    assert.equal(h.fake.resumes[0]!.accepted, false);
    assert.equal(h.fake.identifies.length, 2);
    await h.connected(h.mark() - 1);
    h.fake.assertNoViolations();
  });
});

await test('never loop on Resume: after max_resume_failures failed Resumes, Identify', async () => {
  await withHarness({ config: { reconnect: { max_resume_failures: 2 } } }, async (h) => {
    await h.connected();
    // Every Resume is cut with 4009 before RESUMED reaches the client.
    h.fake.on('frame', (f) => {
      if ((f.data as { op?: number }).op === 6) h.fake.closeClient(4009);
    });
    const ready = h.fake.waitFor('ready', 3_000, (r) => r.connectionId > 1);
    h.fake.closeClient(4009);
    await ready;
    assert.equal(h.fake.resumes.length, 2, 'two Resumes, then Identify');
    assert.equal(h.fake.identifies.length, 2);
    await h.connected(1);
  });
});

await test('heartbeat ACKs stop → zombie: terminate() and resume', async () => {
  await withHarness({}, async (h) => {
    await h.connected();
    const from = h.mark();
    const resumed = h.fake.waitFor('resumed', 3_000);
    h.fake.stopAcking();
    await resumed;
    const reconnecting = trail(h, from).find((s) => s.state === 'reconnecting');
    assert.equal(reconnecting?.code, 'GW_ERR_QQ_HEARTBEAT_TIMEOUT');
    assert.equal(reconnecting?.resumable, true);
    assert.equal(h.fake.disconnects[0]!.by, 'client');
    assert.equal(h.fake.disconnects[0]!.code, 1006, 'terminated, no close handshake');
    assert.equal(h.fake.identifies.length, 1);
  });
});

await test('half-open link right after an ACK is detected within 1.5 × the heartbeat interval', async () => {
  // A 400 ms interval keeps timer lateness of a busy test machine small against the bound.
  const intervalMs = 400;
  await withHarness({ fake: { heartbeatIntervalMs: intervalMs } }, async (h) => {
    await h.connected();
    // Worst case of DESIGN §9: the link goes silent just after an ACK.
    await h.fake.waitFor('heartbeat', intervalMs * 3, (b) => b.acked);
    const silentAt = Date.now();
    const from = h.mark();
    h.fake.goHalfOpen();
    const doc = await h.waitForState(
      (d) => d.platforms.qqbot?.last_error?.code === 'GW_ERR_QQ_HEARTBEAT_TIMEOUT',
      'zombie detected',
      { from },
    );
    // `at` of last_error is when the reconnecting state was written: after the detection.
    const detected = Date.parse(h.qq(doc).last_error!.at);
    const ratio = (detected - silentAt) / intervalMs;
    assert.ok(ratio <= 1.5, `detected after ${ratio.toFixed(3)} × interval`);
    assert.ok(ratio >= 1.0, `detected after ${ratio.toFixed(3)} × interval`);
    await h.connected(from);
    assert.equal(h.fake.resumes.at(-1)?.accepted, true);
  });
});

await test('heartbeat_ack_ms is capped below half the interval (0.45 ×)', async () => {
  await withHarness({ config: { timeouts: { heartbeat_ack_ms: 60_000 } } }, async (h) => {
    await h.connected();
    await h.fake.waitFor('heartbeat', TEST_HEARTBEAT_MS * 3, (b) => b.acked);
    h.fake.stopAcking();
    const unacked = await h.fake.waitFor('heartbeat', TEST_HEARTBEAT_MS * 3);
    const disconnect = await h.fake.waitFor('disconnect', TEST_HEARTBEAT_MS * 3);
    const after = disconnect.at - unacked.at;
    assert.ok(after <= TEST_HEARTBEAT_MS * 0.45 + 40, `cut ${after} ms after the unanswered beat`);
  });
});

// Found by the chaos soak: a dispatch that arrived right behind op 7 / op 9 advanced the seq
// the client resumed from, although the closing connection dropped it, so the server never
// replayed it and the message was lost.
for (const [name, send] of [
  ['op 7 Reconnect', (h: QQHarness) => h.fake.sendReconnect()],
  ['op 9 Invalid Session (resumable)', (h: QQHarness) => h.fake.sendInvalidSession(true)],
] as const) {
  await test(`a message written right behind ${name} is replayed after the resume and handled once`, async () => {
    await withHarness({}, async (h) => {
      await h.connected();
      const resume = h.fake.waitFor('resume', 3_000);
      send(h);
      const behind = h.fake.dispatchC2CMessage({ content: 'right behind the opcode' });
      const record = await resume;
      assert.ok(
        typeof record.seq === 'number' && record.seq < behind.s,
        `resumed from ${String(record.seq)}, message at ${behind.s}`,
      );
      assert.equal(record.replayed, 1);
      const events = await h.waitForEvents(1, 3_000);
      assert.deepEqual(
        events.map((e) => e.id),
        [`qqbot:${behind.d.id}`],
      );
    });
  });
}

// Found by the chaos soak: a fatal close code that followed op 7 was ignored because the
// connection had already decided to resume; the platform's "banned" must win.
await test('a fatal close (4915) after op 7 is still fatal: exit 78, not a resume', async () => {
  await withHarness({ fake: { reconnectCloseDelayMs: null } }, async (h) => {
    await h.connected();
    h.fake.sendReconnect();
    h.fake.closeClient(4915, 'banned');
    // Bounded: before the fix the adapter resumed and the runner never ended.
    const outcome = await h.finished(3_000);
    assert.equal(outcome.exitCode, 78);
    assert.equal(outcome.error?.code, 'GW_ERR_QQ_CLOSE_4915');
    assert.equal(h.read().platforms.qqbot?.state, 'fatal');
    assert.equal(h.fake.resumes.length, 0);
  });
});
