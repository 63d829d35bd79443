/**
 * One named test per row of the close-code table (docs/platforms/discord.md), plus transport
 * closes and an undocumented code: the fake closes the live connection with the code, and the
 * test checks what the adapter DID at the fake (Resume at the resume URL vs a new Identify,
 * the wait), the state file, and for fatal codes the runner's exit code and persisted fatal.
 *
 * The expected action per code is written by hand from issue 17 and the fact sheet, never
 * read from CLOSE_CODE_TABLE (a test that reads the table under test passes whatever it says).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../../../src/adapters/discord/errors.js';
import { lookupCode } from '../../../src/errors.js';
import { type DiscordHarness, withHarness } from './harness.js';

type Expected = 'resume' | 'identify' | 'wait' | 'fatal';

const EXPECTED: ReadonlyArray<readonly [code: number, action: Expected, name: string]> = [
  [4000, 'resume', 'unknown error'],
  [4001, 'resume', 'unknown opcode'],
  [4002, 'resume', 'decode error'],
  [4003, 'resume', 'not authenticated'],
  [4004, 'fatal', 'authentication failed'],
  [4005, 'resume', 'already authenticated'],
  [4007, 'identify', 'invalid seq'],
  [4008, 'wait', 'rate limited'],
  [4009, 'identify', 'session timed out'],
  [4010, 'fatal', 'invalid shard'],
  [4011, 'fatal', 'sharding required'],
  [4012, 'fatal', 'invalid API version'],
  [4013, 'fatal', 'invalid intents'],
  [4014, 'fatal', 'disallowed intents'],
];

async function closeWith(h: DiscordHarness, code: number): Promise<number> {
  await h.connected();
  h.fake.dispatchMessage({ content: 'before the close', mentionsBot: true });
  await h.waitForEvents(1);
  const from = h.mark();
  if (code === 1006) h.fake.terminateClient();
  else h.fake.closeClient(code);
  return from;
}

async function expectResume(
  h: DiscordHarness,
  code: number,
  errorCode: string,
  detail = 'backoff',
): Promise<void> {
  const from = await closeWith(h, code);
  const doc = await h.waitForState(
    (s) => s.state === 'reconnecting' && s.detail === detail,
    `reconnecting/${detail}`,
    from,
  );
  assert.equal(h.status(doc).last_error?.code, errorCode);
  assert.equal(h.status(doc).resumable, true);
  await h.fake.until(() => h.fake.acceptedResumes === 1, 'an accepted Resume');
  await h.connected(from);
  assert.equal(h.fake.acceptedIdentifies, 1, 'no second Identify');
  assert.equal(h.fake.records.resumes[0]!.path, '/resume', 'Resume at resume_gateway_url');
  assert.equal(h.fake.records.resumes[0]!.seq, h.fake.session!.buffer.at(-1)!.s);
  h.fake.assertNoViolations();
}

for (const [code, action, name] of EXPECTED) {
  await test(`close ${code} (${name}) → ${action}`, async () => {
    await withHarness({}, async (h) => {
      const errorCode = `GW_ERR_DISCORD_CLOSE_${code}`;
      assert.ok(lookupCode(errorCode), `${errorCode} is registered`);
      switch (action) {
        case 'resume':
          await expectResume(h, code, errorCode);
          return;
        case 'wait': {
          const from = await closeWith(h, code);
          const doc = await h.waitForState(
            (s) => s.state === 'reconnecting' && s.detail === 'rate_limited',
            'reconnecting/rate_limited',
            from,
          );
          assert.equal(h.status(doc).last_error?.code, errorCode);
          const closedAt = Date.now();
          await h.fake.until(() => h.fake.acceptedResumes === 1, 'an accepted Resume');
          assert.ok(Date.now() - closedAt >= 250, 'waited rate_limited_wait_ms (300) first');
          await h.connected(from);
          assert.equal(h.fake.acceptedIdentifies, 1);
          return;
        }
        case 'identify': {
          const from = await closeWith(h, code);
          const doc = await h.waitForState(
            (s) => s.state === 'reconnecting' && s.detail === 'invalid_session',
            'reconnecting/invalid_session',
            from,
          );
          assert.equal(h.status(doc).last_error?.code, errorCode);
          assert.equal(h.status(doc).resumable, false);
          await h.fake.until(() => h.fake.acceptedIdentifies === 2, 'a second Identify');
          await h.connected(from);
          assert.equal(h.fake.records.resumes.length, 0, 'no Resume tried');
          assert.equal(h.fake.records.connections.at(-1)!.path, '/gateway');
          h.fake.assertNoViolations();
          return;
        }
        case 'fatal': {
          await closeWith(h, code);
          const outcome = await h.finished();
          assert.equal(outcome.exitCode, 78);
          assert.equal(outcome.error?.code, errorCode);
          const last = h.read();
          assert.equal(last.platforms.discord?.state, 'fatal');
          assert.equal(last.platforms.discord?.last_error?.code, errorCode);
          assert.equal(last.gateway.exit_code, 78);
          assert.equal(h.fake.records.connections.length, 1, 'no reconnect after a fatal close');
          return;
        }
      }
    });
  });
}

await test('close 1006 (dropped without a close frame) → resume', async () => {
  await withHarness({}, (h) => expectResume(h, 1006, 'GW_ERR_DISCORD_CONNECTION_CLOSED'));
});

await test('server close 1000 → resume tried; Discord ended the session, so op 9 → Identify', async () => {
  await withHarness({}, async (h) => {
    const from = await closeWith(h, 1000);
    await h.fake.until(() => h.fake.records.resumes.length === 1, 'a Resume attempt');
    assert.equal(h.fake.records.resumes[0]!.accepted, false);
    await h.fake.until(() => h.fake.acceptedIdentifies === 2, 'a new Identify after op 9');
    await h.connected(from);
    assert.ok(h.codes().includes('GW_ERR_DISCORD_INVALID_SESSION'));
    h.fake.assertNoViolations();
  });
});

await test('undocumented close 4999 → resume, logged with the code', async () => {
  await withHarness({}, async (h) => {
    await expectResume(h, 4999, 'GW_ERR_DISCORD_CLOSE_UNKNOWN');
    const line = h.logs.lines.find((l) => l.code === 'GW_ERR_DISCORD_CLOSE_UNKNOWN');
    assert.equal(line?.close_code, 4999);
  });
});

await test('4014 names the Developer Portal toggle in the persisted error', async () => {
  await withHarness({}, async (h) => {
    await closeWith(h, 4014);
    await h.finished();
    assert.match(h.status(h.read()).last_error?.message ?? '', /Privileged Gateway Intents/);
  });
});
