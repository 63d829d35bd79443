/**
 * The broker's failures (docs/scale-out.md), real nats-server: a broker killed -9 and
 * restarted mid-stream loses nothing; a full stream is back-pressure (degraded, nothing
 * dropped); wrong credentials exit 78; a broker out of reach for the budget exits 1.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { freePort } from '../support/nats-server.js';
import {
  brokerConfig,
  deliveredByTarget,
  gatewayReady,
  startScaleOut,
  storedMessages,
  waitDrained,
} from '../support/scale-out.js';
import {
  PRODUCT_CLI,
  killAllChildren,
  readState,
  runGatewayCli,
  sandboxEnv,
  waitFor,
  writeConfig,
} from '../support/spawn-gateway.js';

after(() => killAllChildren());

await test('broker kill -9 and restart mid-stream: every event answered, once, in order', async (t) => {
  const s = await startScaleOut();
  t.after(() => s.dispose());
  const gateway = await s.startGateway();
  await gateway.waitForState(s.statePath, gatewayReady, 'running with the broker up', 20_000);
  const worker = await s.startWorker();
  for (let i = 0; i < 10; i++)
    s.fake.dispatchC2CMessage({ content: `a${i}`, userOpenid: `u${i % 3}` });
  await waitFor(() => s.fake.records.sentMessages.length >= 3, 'the first replies', 20_000);
  await s.nats.stop('SIGKILL');
  // Events while the broker is down wait in the gateway (the platform is not acked yet).
  for (let i = 0; i < 10; i++)
    s.fake.dispatchC2CMessage({ content: `b${i}`, userOpenid: `u${i % 3}` });
  await gateway.waitForState(
    s.statePath,
    (d) => d.broker?.state === 'disconnected',
    'broker disconnected',
    20_000,
  );
  await s.restartBroker();
  await waitFor(() => s.fake.records.sentMessages.length >= 20, 'all 20 replies', 40_000, 50);
  await waitDrained(s.nats.url);
  const byChat = deliveredByTarget(s.fake);
  for (let u = 0; u < 3; u++) {
    const expected = [
      ...Array.from({ length: 10 }, (_, i) => i)
        .filter((i) => i % 3 === u)
        .map((i) => `a${i}`),
      ...Array.from({ length: 10 }, (_, i) => i)
        .filter((i) => i % 3 === u)
        .map((i) => `b${i}`),
    ];
    assert.deepEqual(byChat.get(`u${u}`), expected, `u${u}: each once, in order`);
  }
  assert.equal(s.fake.records.sentMessages.length, 20);
  await gateway.waitForState(
    s.statePath,
    (d) => d.broker?.state === 'connected',
    'broker back',
    20_000,
  );
  worker.signal('SIGTERM');
  assert.equal((await worker.waitForExit(10_000)).code, 0);
});

await test('stream full: the gateway is degraded, events wait, nothing is dropped', async (t) => {
  const s = await startScaleOut({ handler: { max_msgs: 3 } });
  t.after(() => s.dispose());
  const gateway = await s.startGateway();
  await gateway.waitForState(s.statePath, gatewayReady, 'running with the broker up', 20_000);
  for (let i = 0; i < 8; i++)
    s.fake.dispatchC2CMessage({ content: `m${i}`, userOpenid: `full-${i}` });
  const degraded = await gateway.waitForState(
    s.statePath,
    (d) => d.broker?.state === 'degraded',
    'broker degraded',
    20_000,
  );
  assert.match(degraded.broker!.reason ?? '', /^GW_ERR_NATS_STREAM_FULL/);
  assert.ok(gateway.codes().includes('GW_ERR_NATS_STREAM_FULL'));
  const status = await runGatewayCli(['status', '--state', s.statePath], {
    cli: PRODUCT_CLI,
    env: sandboxEnv(s.dir),
  });
  assert.equal(status.code, 1, `status says degraded: ${status.stdout}`);
  assert.match(status.stdout, /broker degraded/);
  assert.equal(await storedMessages(s.nats.url), 3, 'the stream holds its limit');
  await s.startWorker();
  await waitFor(() => s.fake.records.sentMessages.length >= 8, 'all 8 replies', 40_000, 50);
  await gateway.waitForState(s.statePath, gatewayReady, 'connected again', 20_000);
  assert.deepEqual(
    [...s.delivered()].sort(),
    Array.from({ length: 8 }, (_, i) => `m${i}`),
    'every event answered once',
  );
  const overflow = gateway.lines.filter((l) => l.code === 'GW_ERR_HANDLER_QUEUE_OVERFLOW');
  assert.equal(overflow.length, 0, 'nothing dropped');
});

await test('wrong credentials: gateway and worker exit 78 with GW_ERR_NATS_AUTH; the token is not logged', async (t) => {
  const s = await startScaleOut({
    server: { token: 'right-token-0123456789' },
    broker: { token: '${HGW_NATS_TOKEN}' },
    env: { HGW_NATS_TOKEN: 'wrong-token-9876543210' },
  });
  t.after(() => s.dispose());
  const gateway = await s.startGateway();
  const exit = await gateway.waitForExit(20_000);
  assert.equal(exit.code, 78, gateway.stdout);
  assert.ok(gateway.codes().includes('GW_ERR_NATS_AUTH'));
  const doc = readState(s.statePath)!;
  assert.equal(doc.gateway.state, 'fatal');
  assert.equal(doc.gateway.exit_code, 78);
  assert.match(doc.gateway.reason ?? '', /^GW_ERR_NATS_AUTH/);
  const config = await writeConfig(
    s.dir,
    { broker: { ...brokerConfig(s.nats), token: '${HGW_NATS_TOKEN}' }, handler: { type: 'echo' } },
    'worker.yaml',
  );
  const worker = await runGatewayCli(['worker', '--config', config], {
    cli: PRODUCT_CLI,
    env: sandboxEnv(s.dir, { HGW_NATS_TOKEN: 'wrong-token-9876543210' }),
    timeoutMs: 20_000,
  });
  assert.equal(worker.code, 78, worker.stdout);
  assert.ok(worker.codes.includes('GW_ERR_NATS_AUTH'));
  for (const text of [
    gateway.stdout,
    gateway.stderr,
    worker.stdout,
    worker.stderr,
    JSON.stringify(doc),
  ]) {
    assert.ok(!text.includes('wrong-token-9876543210'), 'the token never appears');
  }
});

await test('a broker out of reach for unreachable_budget_ms: worker exits 1', async (t) => {
  const dir = join(
    (await import('node:os')).tmpdir(),
    `hgw-nats-unreach-${process.pid}-${Date.now()}`,
  );
  t.after(async () => (await import('node:fs/promises')).rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  const config = await writeConfig(
    dir,
    {
      log_format: 'json',
      broker: {
        servers: [`nats://127.0.0.1:${port}`],
        unreachable_budget_ms: 1_500,
        reconnect_wait_ms: 50,
        reconnect_wait_max_ms: 200,
      },
      handler: { type: 'echo' },
    },
    'worker.yaml',
  );
  const worker = await runGatewayCli(['worker', '--config', config], {
    cli: PRODUCT_CLI,
    env: sandboxEnv(dir),
    timeoutMs: 20_000,
  });
  assert.equal(worker.code, 1, worker.stdout);
  assert.ok(worker.codes.includes('GW_ERR_NATS_UNREACHABLE'));
});

await test('a broker down at start: the gateway keeps QQ connected, then exits 1 after the budget', async (t) => {
  const s = await startScaleOut({ broker: { unreachable_budget_ms: 3_000 } });
  t.after(() => s.dispose());
  await s.nats.stop('SIGKILL');
  const gateway = await s.startGateway();
  const waiting = await gateway.waitForState(
    s.statePath,
    (d) =>
      d.gateway.state === 'running' &&
      d.platforms.qqbot?.state === 'connected' &&
      d.broker?.state === 'connecting',
    'QQ connected while the broker is out of reach',
    20_000,
  );
  assert.equal(waiting.broker?.state, 'connecting');
  const exit = await gateway.waitForExit(20_000);
  assert.equal(exit.code, 1, gateway.stdout);
  assert.ok(gateway.codes().includes('GW_ERR_NATS_UNREACHABLE'));
  const doc = readState(s.statePath)!;
  assert.equal(doc.gateway.state, 'fatal');
  assert.equal(doc.gateway.exit_code, 1);
});

await test('the broker lost while running: reconnecting within the budget, then exit 1', async (t) => {
  const s = await startScaleOut({ broker: { unreachable_budget_ms: 3_000 } });
  t.after(() => s.dispose());
  const gateway = await s.startGateway();
  await gateway.waitForState(s.statePath, gatewayReady, 'running with the broker up', 20_000);
  await s.nats.stop('SIGKILL');
  const lost = await gateway.waitForState(
    s.statePath,
    (d) => d.broker?.state === 'disconnected',
    'broker disconnected',
    20_000,
  );
  assert.equal(lost.platforms.qqbot?.state, 'connected', 'the platform session is kept');
  const exit = await gateway.waitForExit(20_000);
  assert.equal(exit.code, 1, gateway.stdout);
  assert.ok(gateway.codes().includes('GW_ERR_NATS_UNREACHABLE'));
  assert.equal(readState(s.statePath)!.gateway.exit_code, 1);
});
