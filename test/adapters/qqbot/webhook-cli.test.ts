/**
 * The QQ webhook transport end to end: the built CLI with the echo handler, the fake platform
 * posting signed callbacks to it. Callbacks sent before the gateway listens are retried by the
 * fake until acknowledged; a retry of an acknowledged event is answered once; a taken address
 * is exit 78; `check --probe` binds the address.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { FakeQQServer } from '../../../src/fakes/qq/server.js';
import { freePort, occupyPort } from '../../support/ports.js';
import {
  PRODUCT_CLI,
  launchGateway,
  readState,
  runGatewayCli,
  sandboxEnv,
  scratchRoot,
  stderrCode,
  writeConfig,
} from '../../support/spawn-gateway.js';
import { within } from '../../support/deadline.js';
import { qqbotInstanceFor } from '../../support/qq-instance.js';

const SECRET_ENV = 'HGW_TEST_QQ_SECRET';
const root = await scratchRoot('hgw-qq-webhook-');
let runs = 0;

function config(fake: FakeQQServer, port: number): Record<string, unknown> {
  return {
    log_level: 'debug',
    shutdown_timeout_ms: 2_000,
    platforms: {
      qqbot: {
        ...qqbotInstanceFor(fake, SECRET_ENV),
        reconnect: { backoff_ms: [20, 40], max_attempts: 3 },
        timeouts: { rest_ms: 1_000, token_ms: 1_000 },
        jitter: false,
        transport: 'webhook',
        webhook: { listen: `127.0.0.1:${port}` },
      },
    },
  };
}

/** Accepted replies the fake received to message `msgId`. */
function repliesTo(fake: FakeQQServer, msgId: string): number {
  return fake.sentMessages.filter(
    (m) => m.accepted && (m.body as { msg_id?: unknown }).msg_id === msgId,
  ).length;
}

function c2c(id: string, content: string): Record<string, unknown> {
  return {
    id,
    author: { id: 'u1', user_openid: 'OPENID-WEBHOOK' },
    content,
    timestamp: new Date().toISOString(),
    message_scene: { source: 'default' },
  };
}

await test('callbacks retried until the gateway listens are answered; a retry of an acknowledged event is answered once', async (t) => {
  const fake = await FakeQQServer.start();
  t.after(() => fake.close());
  const port = await freePort();
  fake.webhook.target = `http://127.0.0.1:${port}/qqbot/qqbot`;
  // The platform's retries of an unacknowledged callback (its schedule is not documented).
  fake.webhook.retry = { attempts: 100, delayMs: 100 };
  const dir = join(root, `run-${(runs += 1)}`);
  const first = fake.webhook.dispatch('C2C_MESSAGE_CREATE', c2c('ROBOT1.0_w-1', 'one'));
  const { proc, statePath } = await launchGateway(
    dir,
    config(fake, port),
    { [SECRET_ENV]: fake.settings.clientSecret },
    { cli: PRODUCT_CLI },
  );
  t.after(() => proc.kill());
  await proc.waitForState(
    statePath,
    (d) => d.platforms.qqbot?.state === 'connected',
    'qqbot connected',
    15_000,
  );
  const record = await within(first, 15_000, 'the first callback to be acknowledged');
  assert.equal(record.acked, true);
  assert.ok(record.attempts.length >= 1);
  assert.deepEqual(record.attempts.at(-1), { status: 200, body: '{"op":12,"d":0}' });
  await fake.until(
    () => repliesTo(fake, 'ROBOT1.0_w-1') > 0,
    10_000,
    'the echo reply to the first message',
  );
  assert.equal(await fake.webhook.validate(), true);

  // The platform did not see our ack and sends the same callback again: answered 200 again...
  const again = await fake.webhook.redeliver(record);
  assert.deepEqual(again.attempts, [{ status: 200, body: '{"op":12,"d":0}' }]);
  // ...and not answered twice: the next message of the same chat is handled after it.
  await fake.webhook.dispatch('C2C_MESSAGE_CREATE', c2c('ROBOT1.0_w-2', 'two'));
  await fake.until(
    () => repliesTo(fake, 'ROBOT1.0_w-2') > 0,
    10_000,
    'the echo reply to the second message',
  );
  assert.equal(repliesTo(fake, 'ROBOT1.0_w-1'), 1);

  proc.signal('SIGTERM');
  const exit = await proc.waitForExit(10_000);
  assert.equal(exit.code, 0);
  fake.assertNoViolations();
  assert.ok(!proc.stdout.includes(fake.settings.clientSecret), 'the secret is not logged');
});

await test('a webhook address already in use is exit 78 with GW_ERR_INGRESS_LISTEN persisted', async (t) => {
  const fake = await FakeQQServer.start();
  t.after(() => fake.close());
  const { server, port } = await occupyPort();
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const dir = join(root, `run-${(runs += 1)}`);
  const { proc, statePath } = await launchGateway(
    dir,
    config(fake, port),
    { [SECRET_ENV]: fake.settings.clientSecret },
    { cli: PRODUCT_CLI },
  );
  t.after(() => proc.kill());
  const exit = await proc.waitForExit(15_000);
  assert.equal(exit.code, 78);
  const state = readState(statePath);
  assert.equal(state?.gateway.state, 'fatal');
  assert.equal(state?.platforms.qqbot?.state, 'fatal');
  assert.equal(state?.platforms.qqbot?.last_error?.code, 'GW_ERR_INGRESS_LISTEN');
  assert.ok(proc.codes().includes('GW_ERR_INGRESS_LISTEN'));
});

await test('check --probe verifies the credentials and that the webhook address can be bound', async (t) => {
  const fake = await FakeQQServer.start();
  t.after(() => fake.close());
  const dir = join(root, `run-${(runs += 1)}`);
  const env = sandboxEnv(dir, { [SECRET_ENV]: fake.settings.clientSecret });
  const free = await writeConfig(dir, config(fake, await freePort()), 'free.yaml');
  const ok = await runGatewayCli(['check', '--probe', '--config', free], { env, cli: PRODUCT_CLI });
  assert.equal(ok.code, 0, ok.stderr);
  const { server, port } = await occupyPort();
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const taken = await writeConfig(dir, config(fake, port), 'taken.yaml');
  const refused = await runGatewayCli(['check', '--probe', '--config', taken], {
    env,
    cli: PRODUCT_CLI,
  });
  assert.equal(refused.code, 78);
  assert.equal(stderrCode(refused.stderr), 'GW_ERR_INGRESS_LISTEN');
});
