/**
 * kill -9 on the scale-out path (docs/scale-out.md), real nats-server: a worker killed while
 * its handler runs loses nothing (another worker gets the event after ack_wait_ms) and the
 * reply reaches the chat once; a gateway killed while replies wait in the broker delivers
 * them after its restart, once.
 */
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { brokerBacklog, gatewayReady, startScaleOut, waitDrained } from '../support/scale-out.js';
import { killAllChildren, waitFor } from '../support/spawn-gateway.js';

after(() => killAllChildren());

/** A handler that notes each run in `marks`, takes `seconds`, then answers "answered <text>". */
function slowHandler(marks: string, seconds: number): Record<string, unknown> {
  return {
    type: 'command',
    argv: [
      'sh',
      '-c',
      `read -r line; echo "$HERMES_EVENT_ID" >> "${marks}"; sleep ${seconds}; echo answered`,
    ],
    timeout_ms: 20_000,
  };
}

function runs(marks: string): number {
  return existsSync(marks) ? readFileSync(marks, 'utf8').split('\n').filter(Boolean).length : 0;
}

await test('worker SIGKILL mid-message: redelivered after ack_wait_ms, answered once', async (t) => {
  const s = await startScaleOut();
  t.after(() => s.dispose());
  const marks = join(s.dir, 'marks');
  const gateway = await s.startGateway();
  await gateway.waitForState(s.statePath, gatewayReady, 'running with the broker up', 20_000);
  const first = await s.startWorker(slowHandler(marks, 3), 'first');
  s.fake.dispatchC2CMessage({ content: 'hi', userOpenid: 'user-k' });
  await waitFor(() => runs(marks) === 1, 'the first worker running the handler', 20_000);
  first.kill();
  assert.equal((await first.exited).signal, 'SIGKILL');
  assert.equal(s.fake.records.sentMessages.length, 0, 'not answered before the kill');
  const second = await s.startWorker(slowHandler(marks, 0), 'second');
  await waitFor(
    () => s.fake.records.sentMessages.length >= 1,
    'the reply from the second worker',
    20_000,
  );
  await waitDrained(s.nats.url);
  assert.equal(runs(marks), 2, 'the handler ran again on the second worker');
  assert.deepEqual(s.delivered(), ['answered'], 'answered once');
  second.signal('SIGTERM');
  assert.equal((await second.waitForExit(10_000)).code, 0);
});

await test('gateway SIGKILL with a reply pending: delivered after the restart, once', async (t) => {
  const s = await startScaleOut();
  t.after(() => s.dispose());
  const marks = join(s.dir, 'marks');
  let gateway = await s.startGateway();
  await gateway.waitForState(s.statePath, gatewayReady, 'running with the broker up', 20_000);
  await s.startWorker(slowHandler(marks, 1), 'worker');
  s.fake.dispatchC2CMessage({ content: 'hi', userOpenid: 'user-g' });
  await waitFor(() => runs(marks) === 1, 'the worker running the handler', 20_000);
  gateway.kill();
  assert.equal((await gateway.exited).signal, 'SIGKILL');
  // The worker answers while no gateway runs: the reply waits in the broker.
  await waitFor(
    async () => (await brokerBacklog(s.nats.url)).replies === 1,
    'the reply waiting in the broker',
    20_000,
    50,
  );
  assert.equal(s.fake.records.sentMessages.length, 0);
  gateway = await s.startGateway();
  await waitFor(
    () => s.fake.records.sentMessages.length >= 1,
    'the reply after the restart',
    20_000,
  );
  await waitDrained(s.nats.url);
  assert.deepEqual(s.delivered(), ['answered'], 'delivered once');
  assert.equal(runs(marks), 1, 'the handler ran once');
  gateway.signal('SIGTERM');
  assert.equal((await gateway.waitForExit(10_000)).code, 0);
});

await test('an event that kills every worker goes to the dead letters after max_deliver; its chat moves on', async (t) => {
  const s = await startScaleOut({ broker: { max_deliver: 2 } });
  t.after(() => s.dispose());
  const gateway = await s.startGateway();
  await gateway.waitForState(s.statePath, gatewayReady, 'running with the broker up', 20_000);
  // Kills the worker running it (its parent) when the text says poison; answers otherwise.
  const deadly = {
    type: 'command',
    argv: ['sh', '-c', 'read -r line; case "$line" in *poison*) kill -9 $PPID;; esac; echo ok'],
    timeout_ms: 10_000,
  };
  s.fake.dispatchC2CMessage({ content: 'poison', userOpenid: 'user-p' });
  let killed = 0;
  for (let i = 0; i < 5 && (await brokerBacklog(s.nats.url)).dead === 0; i++) {
    const worker = await s.startWorker(deadly, `deadly${i}`).catch(() => null);
    if (worker === null) {
      killed += 1; // Killed before it said it was consuming.
      continue;
    }
    const end = await Promise.race([
      worker.exited,
      waitFor(async () => (await brokerBacklog(s.nats.url)).dead === 1, 'dead letter', 20_000, 50),
    ]);
    if (typeof end === 'object' && end !== null && 'signal' in end) killed += 1;
    else {
      // Dead-lettered: this worker survives and answers the next event of the chat.
      s.fake.dispatchC2CMessage({ content: 'fine', userOpenid: 'user-p' });
      await waitFor(() => s.delivered().length >= 1, 'the next event answered', 20_000);
    }
  }
  assert.equal(killed, 2, 'max_deliver (2) workers died on it');
  assert.deepEqual(await brokerBacklog(s.nats.url), { events: 0, replies: 0, dead: 1 });
  assert.deepEqual(s.delivered(), ['ok'], 'the chat moved on; the poison got no reply');
});
