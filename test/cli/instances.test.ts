/**
 * Instances end to end: the real CLI, real fake QQ servers on loopback, real processes.
 * Two QQ instances in one gateway each answer their own messages and share one fate; one
 * credential is never held by two gateways, and the lock dies with its holder (kill -9).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { FakeQQServer } from '../../src/fakes/qq/server.js';
import {
  allConnected,
  killAllChildren,
  launchGateway,
  readState,
  runGatewayCli,
  sandboxEnv,
  scratchRoot,
} from '../support/spawn-gateway.js';
import { qqbotInstanceFor } from '../support/qq-instance.js';

const SECRET_ENV = 'HGW_TEST_QQ_SECRET';
const root = await scratchRoot('hgw-instances-e2e-');
/** Generous: the machine may be loaded; no test here is about time. */
const DEADLINE_MS = 20_000;

/** One QQ instance's settings for `fake`, with tiny test timings and a budget of 2. */
function qqInstance(
  fake: FakeQQServer,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    ...qqbotInstanceFor(fake, SECRET_ENV),
    reconnect: { backoff_ms: [20, 40], max_attempts: 2, healthy_after_ms: 10_000 },
    timeouts: { rest_ms: 5_000, token_ms: 5_000, close_ms: 200 },
    jitter: false,
    ...extra,
  };
}

function env(fake: FakeQQServer): Record<string, string> {
  return { [SECRET_ENV]: fake.settings.clientSecret };
}

async function startFakes(n: number): Promise<FakeQQServer[]> {
  return Promise.all(Array.from({ length: n }, () => FakeQQServer.start()));
}

await test('two QQ instances in one gateway', async (t) => {
  t.after(killAllChildren);
  const [a, b] = (await startFakes(2)) as [FakeQQServer, FakeQQServer];
  t.after(async () => {
    await a.close();
    await b.close();
  });
  const g = await launchGateway(
    join(root, 'two'),
    {
      log_level: 'debug',
      shutdown_timeout_ms: 2_000,
      platforms: {
        qqbot: qqInstance(a),
        'qq-test': qqInstance(b, { type: 'qqbot' }),
      },
    },
    env(a),
  );

  await t.test('both connect; the state file lists both, with their type', async () => {
    const doc = await g.proc.waitForState(g.statePath, allConnected, 'both connected', DEADLINE_MS);
    assert.deepEqual(Object.keys(doc.platforms), ['qqbot', 'qq-test']);
    assert.equal(doc.platforms.qqbot?.type, 'qqbot');
    assert.equal(doc.platforms['qq-test']?.type, 'qqbot');
    assert.equal(a.identifies.length, 1);
    assert.equal(b.identifies.length, 1);
    // `status` shows each instance, with its type where the name is not the type.
    const shown = await runGatewayCli(['status', '--state', g.statePath], {
      env: sandboxEnv(g.dir),
    });
    assert.equal(shown.code, 0, shown.stdout);
    assert.match(shown.stdout, /^ {2}qqbot: connected since /m);
    assert.match(shown.stdout, /^ {2}qq-test \(qqbot\): connected since /m);
    assert.match(
      shown.stdout,
      /running, pid \d+ since \S+: running: qqbot connected, qq-test connected/,
    );
  });

  await t.test('each answers its own messages, even with one message id on both', async () => {
    // Same platform id on both bots: the event ids differ by instance, so neither is
    // dropped as the other's duplicate.
    const id = 'ROBOT1.0_same-id-on-both';
    const toA = a.waitFor('message-sent', DEADLINE_MS);
    const toB = b.waitFor('message-sent', DEADLINE_MS);
    a.dispatchC2CMessage({ content: 'for bot A', id });
    b.dispatchC2CMessage({ content: 'for bot B', id });
    const [sentA, sentB] = await Promise.all([toA, toB]);
    assert.deepEqual(sentA.body, { ...(sentA.body as object), content: 'for bot A', msg_id: id });
    assert.deepEqual(sentB.body, { ...(sentB.body as object), content: 'for bot B', msg_id: id });
    assert.equal(a.sentMessages.length, 1);
    assert.equal(b.sentMessages.length, 1);

    // A redelivery to B is B's duplicate: the event id is `<instance>:<platform id>`.
    b.dispatch('C2C_MESSAGE_CREATE', {
      id,
      author: { id: 'u', user_openid: 'u' },
      content: 'for bot B',
      timestamp: new Date().toISOString(),
    });
    const dropped = await g.proc.waitForLine(
      (l) => l.msg === 'duplicate event dropped',
      'the redelivery to qq-test dropped',
      DEADLINE_MS,
    );
    assert.equal(dropped.event_id, `qq-test:${id}`);
    assert.equal(dropped.platform, 'qq-test');
  });

  await t.test(
    'one instance fatal (budget exhausted): both end, fatal persisted, exit 1',
    async () => {
      b.refuseConnections();
      b.closeClient(4009);
      const exit = await g.proc.waitForExit(DEADLINE_MS);
      assert.equal(exit.code, 1);
      const doc = readState(g.statePath);
      assert.equal(doc?.gateway.state, 'fatal');
      assert.equal(doc?.gateway.exit_code, 1);
      assert.equal(doc?.platforms['qq-test']?.state, 'fatal');
      assert.equal(doc?.platforms['qq-test']?.last_error?.code, 'GW_ERR_QQ_RECONNECT_EXHAUSTED');
      assert.equal(doc?.platforms.qqbot?.state, 'stopped');
      assert.equal(doc?.platforms.qqbot?.type, 'qqbot');
      assert.equal(doc?.platforms['qq-test']?.type, 'qqbot');
      const fatal = g.proc.lines.find(
        (l) => l.code === 'GW_ERR_QQ_RECONNECT_EXHAUSTED' && l.level === 50,
      );
      assert.equal(fatal?.platform, 'qq-test');
    },
  );
});

await test('one credential, one gateway: the lock names its holder and dies with it', async (t) => {
  t.after(killAllChildren);
  const [fake] = (await startFakes(1)) as [FakeQQServer];
  t.after(() => fake.close());
  const first = await launchGateway(
    join(root, 'first'),
    { shutdown_timeout_ms: 2_000, platforms: { qqbot: qqInstance(fake) } },
    env(fake),
  );
  await first.proc.waitForState(first.statePath, allConnected, 'first connected', DEADLINE_MS);
  const tokensBefore = fake.tokenRequests.length;

  // Another config (another state file, another instance name), the same app_id.
  const secondConfig = {
    shutdown_timeout_ms: 2_000,
    platforms: { 'qq-copy': qqInstance(fake, { type: 'qqbot' }) },
  };
  const second = await launchGateway(join(root, 'second'), secondConfig, env(fake));
  const exit = await second.proc.waitForExit(DEADLINE_MS);
  assert.equal(exit.code, 78);
  const refusal = second.proc.lines.find((l) => l.code === 'GW_ERR_CREDENTIAL_IN_USE');
  assert.ok(refusal, second.proc.stdout);
  assert.equal(refusal.level, 50);
  assert.equal(refusal.holder_pid, first.proc.pid);
  assert.equal(refusal.holder, 'instance qqbot');
  assert.equal(refusal.key, 'platforms.qq-copy');
  assert.ok(!second.proc.stdout.includes(fake.settings.clientSecret), 'no secret in the logs');
  const refusedDoc = readState(second.statePath);
  assert.equal(refusedDoc?.gateway.state, 'fatal');
  assert.equal(refusedDoc?.gateway.exit_code, 78);
  // Refused before connecting: the platform never saw the second gateway.
  assert.equal(fake.tokenRequests.length, tokensBefore);
  assert.equal(fake.identifies.length, 1);
  assert.equal(readState(first.statePath)?.gateway.state, 'running', 'the first runs on');

  // kill -9: nothing to clean up, the next start takes the credential at once.
  first.proc.kill();
  await first.proc.exited;
  const third = await launchGateway(join(root, 'second'), secondConfig, env(fake));
  const doc = await third.proc.waitForState(
    third.statePath,
    allConnected,
    'third connected',
    DEADLINE_MS,
  );
  assert.equal(doc.platforms['qq-copy']?.type, 'qqbot');
  assert.ok(!third.proc.codes().includes('GW_ERR_CREDENTIAL_IN_USE'));
  third.proc.signal('SIGTERM');
  assert.equal((await third.proc.waitForExit(DEADLINE_MS)).code, 0);
});
