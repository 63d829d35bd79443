/**
 * One test per row of the close-code table (protocol.ts), plus transport closes and an
 * undocumented code: the fake closes the live connection with the code, and the test checks
 * the action taken (Resume vs Identify counts on the fake, token refresh, wait), the state
 * file at each step, and for fatal rows the runner's exit code and the persisted `fatal`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CLOSE_CODE_TABLE,
  closeErrorCode,
  type ReconnectAction,
} from '../../../src/adapters/qqbot/protocol.js';
import '../../../src/adapters/qqbot/errors.js';
import { lookupCode } from '../../../src/errors.js';
import { QQHarness, trail, withHarness } from './harness.js';

/** Closes the live connection with `code` (or drops it for 1006) once connected. */
async function closeWith(h: QQHarness, code: number): Promise<number> {
  await h.connected();
  // One message, so that the session has a seq beyond READY to resume from.
  h.fake.dispatchC2CMessage({ content: 'before the close' });
  await h.waitForEvents(1);
  const from = h.mark();
  if (code === 1006) h.fake.terminateClient();
  else h.fake.closeClient(code, 'scripted close');
  return from;
}

/**
 * The steps inside `reconnecting` the adapter noted, in order, from its log: they are not
 * written to the state file on their own but ride with the next write.
 */
function reconnectSteps(h: QQHarness): string[] {
  return h.logs.lines.flatMap((l) =>
    typeof l.detail === 'string' && l.msg === `reconnecting: ${l.detail}` ? [l.detail] : [],
  );
}

/** Asserts the reconnecting step persisted after the close. */
async function assertReconnecting(
  h: QQHarness,
  from: number,
  errorCode: string,
  resumable: boolean,
  detail = 'backoff',
): Promise<void> {
  const doc = await h.waitForState(
    (d) => d.platforms.qqbot?.state === 'reconnecting' && d.platforms.qqbot.detail === detail,
    `reconnecting/${detail}`,
    { from },
  );
  const q = h.qq(doc);
  assert.equal(q.last_error?.code, errorCode);
  assert.equal(q.reconnect_attempt, 1);
  assert.equal(q.max_reconnect_attempts, 5);
  assert.equal(q.resumable, resumable);
}

async function expectResume(h: QQHarness, code: number, errorCode: string): Promise<void> {
  const resumed = h.fake.waitFor('resumed');
  const from = await closeWith(h, code);
  await assertReconnecting(h, from, errorCode, true);
  await resumed;
  const doc = await h.connected(from);
  assert.equal(h.qq(doc).state, 'connected');
  assert.equal(h.fake.identifies.length, 1, 'no second Identify');
  assert.equal(h.fake.resumes.length, 1);
  assert.equal(h.fake.resumes[0]!.accepted, true);
  assert.deepEqual(reconnectSteps(h), [
    'fetching_token',
    'fetching_gateway',
    'opening_socket',
    'resuming',
  ]);
  assert.ok(trail(h, from).every((s) => s.state === 'reconnecting' || s.state === 'connected'));
  h.fake.assertNoViolations();
}

async function expectIdentify(h: QQHarness, code: number, errorCode: string): Promise<void> {
  const ready = h.fake.waitFor('ready', 2_000, (r) => r.connectionId > 1);
  const from = await closeWith(h, code);
  await assertReconnecting(h, from, errorCode, false);
  await ready;
  await h.connected(from);
  assert.equal(h.fake.resumes.length, 0, 'no Resume of a session the server refused');
  assert.equal(h.fake.identifies.length, 2);
  assert.deepEqual(reconnectSteps(h).slice(-2), ['opening_socket', 'identifying']);
  h.fake.assertNoViolations();
}

async function expectRefreshToken(h: QQHarness, code: number, errorCode: string): Promise<void> {
  const ready = h.fake.waitFor('ready', 2_000, (r) => r.connectionId > 1);
  const tokensBefore = () => h.fake.tokenRequests.length;
  await h.connected();
  const before = tokensBefore();
  const from = await closeWith(h, code);
  await assertReconnecting(h, from, errorCode, false);
  await ready;
  await h.connected(from);
  assert.equal(h.fake.tokenRequests.length, before + 1, 'exactly one token refresh');
  assert.equal(h.fake.resumes.length, 0);
  assert.equal(h.fake.identifies.length, 2);
  h.fake.assertNoViolations();
}

async function expectWait(h: QQHarness, code: number, errorCode: string): Promise<void> {
  const resumed = h.fake.waitFor('resumed', 3_000);
  const from = await closeWith(h, code);
  const closedAt = Date.now();
  await assertReconnecting(h, from, errorCode, true, 'rate_limited');
  await resumed;
  const reconnected = h.fake.connections.at(-1)!.at;
  // rate_limited_wait_ms (300) instead of the 20 ms backoff step.
  assert.ok(reconnected - closedAt >= 290, `reconnected after ${reconnected - closedAt} ms`);
  assert.equal(h.fake.identifies.length, 1);
  assert.equal(h.fake.resumes.length, 1);
}

async function expectFatal(h: QQHarness, code: number, errorCode: string): Promise<void> {
  await closeWith(h, code);
  const outcome = await h.outcome!;
  assert.equal(outcome.exitCode, 78);
  assert.equal(outcome.error?.code, errorCode);
  assert.equal(outcome.error?.retryable, false);
  const final = h.read();
  assert.equal(final.gateway.state, 'fatal');
  assert.equal(final.gateway.exit_code, 78);
  assert.equal(final.platforms.qqbot?.state, 'fatal');
  assert.equal(final.platforms.qqbot?.last_error?.code, errorCode);
  assert.equal(final.platforms.qqbot?.last_error?.retryable, false);
  assert.equal(final.platforms.qqbot?.resumable, false);
  assert.equal(h.fake.connections.length, 1, 'no reconnect after a fatal close');
}

const EXPECT: Record<
  ReconnectAction,
  (h: QQHarness, code: number, errorCode: string) => Promise<void>
> = {
  resume: expectResume,
  identify: expectIdentify,
  refresh_token: expectRefreshToken,
  wait: expectWait,
  fatal: expectFatal,
};

for (const row of CLOSE_CODE_TABLE) {
  await test(`close ${row.code} (${row.meaning}) → ${row.action}`, async () => {
    const errorCode = closeErrorCode(row.code);
    const info = lookupCode(errorCode);
    assert.ok(info, `${errorCode} is registered`);
    assert.equal(info.retryable, row.action !== 'fatal');
    await withHarness({}, (h) => EXPECT[row.action](h, row.code, errorCode));
  });
}

for (const code of [1000, 1001, 1006, 1011]) {
  await test(`transport close ${code} → resume`, async () => {
    await withHarness({}, (h) => expectResume(h, code, 'GW_ERR_QQ_CONNECTION_CLOSED'));
  });
}

await test('undocumented close code 4321 → resume, logged with its code', async () => {
  await withHarness({}, async (h) => {
    await expectResume(h, 4321, 'GW_ERR_QQ_CLOSE_UNKNOWN');
    const line = h.logs.lines.find((l) => l.code === 'GW_ERR_QQ_CLOSE_UNKNOWN');
    assert.equal(line?.close_code, 4321);
  });
});

await test('every row of the table has exactly one action and a registered code', () => {
  const codes = CLOSE_CODE_TABLE.map((r) => r.code);
  assert.equal(new Set(codes).size, codes.length);
  for (const code of [
    4000, 4001, 4002, 4003, 4004, 4005, 4006, 4007, 4008, 4009, 4010, 4011, 4012, 4013, 4014, 4900,
    4901, 4902, 4903, 4904, 4905, 4906, 4907, 4908, 4909, 4910, 4911, 4912, 4913, 4914, 4915,
  ]) {
    assert.ok(codes.includes(code), `close code ${code} is in the table`);
    assert.ok(lookupCode(closeErrorCode(code)));
  }
});
