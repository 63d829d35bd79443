/**
 * Dead letters (docs/scale-out.md), real nats-server: a reply for an instance the gateway
 * does not run, and a reply whose delivery keeps failing (`max_deliver`), go to
 * `<prefix>.dead.<instance>` with their reason and are counted in /metrics.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { controlRequest } from '../../src/control/client.js';
import { brokerBacklog, gatewayReady, startScaleOut } from '../support/scale-out.js';
import { killAllChildren, waitFor } from '../support/spawn-gateway.js';

after(() => killAllChildren());

const TOKEN = 'dead-letter-control-token';

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

await test('unknown instance and failing replies go to the dead letters, counted in /metrics', async (t) => {
  const runtime = await mkdtemp(join(tmpdir(), 'hgw-nats-run-'));
  t.after(() => rm(runtime, { recursive: true, force: true }));
  const socket = join(runtime, 'hermes-gateway', 'control.sock');
  const s = await startScaleOut({
    handler: { max_deliver: 2 },
    top: { control: { listen: socket, token: '${HGW_CONTROL_TOKEN}' } },
    env: { HGW_CONTROL_TOKEN: TOKEN, XDG_RUNTIME_DIR: runtime },
  });
  t.after(() => s.dispose());
  const gateway = await s.startGateway();
  await gateway.waitForState(s.statePath, gatewayReady, 'running with the broker up', 20_000);
  const scrape = async (): Promise<string> => {
    const res = await controlRequest({
      listen: { kind: 'unix', path: socket },
      method: 'GET',
      path: '/metrics',
      token: TOKEN,
      timeoutMs: 5_000,
    });
    assert.equal(res.status, 200);
    return res.text;
  };
  const dead = (text: string, reason: string): number | undefined =>
    sample(
      text,
      `hermes_broker_dead_letters_total{platform="qqbot",type="qqbot",reason="${reason}"}`,
    );

  // 1. A reply on this gateway's subject naming an instance it does not run.
  const { connect } = await import('@nats-io/transport-node');
  const { jetstream } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: [s.nats.url] });
  t.after(() => nc.close());
  const reply = {
    v: 1,
    event_id: 'other:1',
    instance: 'other',
    chat: { type: 'c2c', id: 'x' },
    reply: {},
    ordinal: 0,
    text: 'lost?',
    event_published_at: Date.now(),
  };
  await jetstream(nc).publish('ht.reply.qqbot', JSON.stringify(reply), { msgID: 'other:1#0' });
  await waitFor(
    async () => dead(await scrape(), 'unknown_instance') === 1,
    'unknown_instance counted',
    20_000,
    50,
  );

  // 2. A reply the platform refuses every time: dead after max_deliver (2) attempts.
  s.fake.queueSendFaults(
    ...Array.from({ length: 10 }, () => ({
      kind: 'business' as const,
      code: 40034001,
      message: 'refused by the test',
    })),
  );
  await s.startWorker();
  s.fake.dispatchC2CMessage({ content: 'refused', userOpenid: 'user-d' });
  await waitFor(
    async () => dead(await scrape(), 'delivery_failed') === 1,
    'delivery_failed counted',
    30_000,
    50,
  );
  assert.ok(gateway.codes().includes('GW_ERR_NATS_DEAD_LETTER'));
  const backlog = await brokerBacklog(s.nats.url);
  assert.deepEqual(backlog, { events: 0, replies: 0, dead: 2 });
  assert.equal(s.fake.records.sentMessages.length, 0, 'nothing was delivered');
});
