/**
 * Routing by instance, in-process over real sockets: two adapters of one type (`qqbot` and
 * `qq-test`) behind the pipeline and the control API. A reply goes back to the instance that
 * received the event; `POST /send` and `hermes-gateway send INSTANCE:CHATTYPE:CHAT` reach the
 * named instance only; the metrics label each series with the instance and its type.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseTarget, sendCommand } from '../../src/cli/send.js';
import { Secret } from '../../src/config/secret.js';
import { controlRequest } from '../../src/control/client.js';
import { controlSchema, formatListen } from '../../src/control/config.js';
import { createControlServer } from '../../src/control/server.js';
import { parseHandlerConfig } from '../../src/handlers/config.js';
import { createPipeline } from '../../src/handlers/pipeline.js';
import { createMetrics } from '../../src/metrics.js';
import { StateStore } from '../../src/state/store.js';
import { captureLogger } from '../support/capture.js';
import { scratchRoot, writeConfig } from '../support/spawn-gateway.js';
import { RecordingAdapter, makeEvent } from '../handlers/helpers.js';

const TOKEN = 'control-token-instances-0123456789';
const TYPES = new Map([
  ['qqbot', 'qqbot'],
  ['qq-test', 'qqbot'],
]);
const root = await scratchRoot('hgw-instances-routing-');

function sample(text: string, line: string): number | undefined {
  const escaped = line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : undefined;
}

/** Turns the event loop until `predicate` holds (bounded): lets the pipeline's chains run. */
async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`never happened: ${what}`);
}

await test('send targets name an instance', () => {
  assert.deepEqual(parseTarget('qq-test:c2c:OPENID:with:colons'), {
    platform: 'qq-test',
    chat: { type: 'c2c', id: 'OPENID:with:colons' },
  });
  assert.equal(typeof parseTarget('qq-test:c2c'), 'string');
});

await test('replies go back to the instance that received the event', async () => {
  const { log } = captureLogger('debug');
  const main = new RecordingAdapter('qqbot');
  const second = new RecordingAdapter('qq-test');
  const metrics = createMetrics();
  metrics.bindTypes(TYPES);
  const pipeline = createPipeline({
    config: { handler: parseHandlerConfig({ type: 'echo' }) },
    adapters: [main, second],
    log,
    metrics,
  });
  // The same chat id on both instances: two different conversations, each answered at home.
  pipeline.dispatch(makeEvent({ platform: 'qq-test', type: 'qqbot', chat: 'u1', text: 'to B' }));
  pipeline.dispatch(makeEvent({ platform: 'qqbot', type: 'qqbot', chat: 'u1', text: 'to A' }));
  pipeline.dispatch(makeEvent({ platform: 'qq-test', type: 'qqbot', chat: 'u1', text: 'B2' }));
  await until(() => main.sent.length + second.sent.length === 3, 'three replies');
  await pipeline.close();
  assert.deepEqual(main.textsTo('u1'), ['to A']);
  assert.deepEqual(second.textsTo('u1'), ['to B', 'B2']);
  const text = await metrics.registry.metrics();
  assert.equal(
    sample(text, 'hermes_inbound_events_total{platform="qq-test",type="qqbot"}'),
    2,
    text,
  );
  assert.equal(
    sample(text, 'hermes_deliveries_total{platform="qqbot",type="qqbot",result="ok"}'),
    1,
  );
  assert.equal(
    sample(text, 'hermes_deliveries_total{platform="qq-test",type="qqbot",result="ok"}'),
    2,
  );
});

await test('POST /send and `send` reach the named instance only', async (t) => {
  const { log } = captureLogger('debug');
  const main = new RecordingAdapter('qqbot');
  const second = new RecordingAdapter('qq-test');
  const store = new StateStore({
    path: join(root, 'never-written.json'),
    heartbeatIntervalMs: 1_000,
    log,
  });
  store.setPlatform('qqbot', { state: 'connected', type: 'qqbot' });
  store.setPlatform('qq-test', { state: 'connected', type: 'qqbot' });
  const metrics = createMetrics();
  metrics.bindTypes(TYPES);
  metrics.bindState(store);
  const config = controlSchema.parse({
    listen: '127.0.0.1:0',
    token: new Secret(TOKEN),
    send_timeout_ms: 2_000,
  });
  const server = createControlServer({
    config,
    adapters: [main, second],
    state: store,
    metrics,
    log,
  });
  const address = await server.start();
  t.after(() => server.close());
  const post = (body: unknown): ReturnType<typeof controlRequest> =>
    controlRequest({
      listen: address,
      method: 'POST',
      path: '/send',
      token: TOKEN,
      body,
      timeoutMs: 5_000,
    });

  await t.test('POST /send {platform: instance}', async () => {
    const response = await post({
      platform: 'qq-test',
      chat: { type: 'c2c', id: 'U1' },
      text: 'hi B',
    });
    assert.equal(response.status, 200, response.text);
    assert.equal((response.json as { platform?: unknown }).platform, 'qq-test');
    assert.deepEqual(second.textsTo('U1'), ['hi B']);
    assert.deepEqual(main.sent, []);
  });

  await t.test('an unknown instance (even a type name that is no instance) is 404', async () => {
    const response = await post({ platform: 'qq', chat: { type: 'c2c', id: 'U1' }, text: 'x' });
    assert.equal(response.status, 404);
    assert.equal(
      (response.json as { error?: { code?: unknown } }).error?.code,
      'GW_ERR_CONTROL_UNKNOWN_PLATFORM',
    );
  });

  await t.test('`send INSTANCE:CHATTYPE:CHAT` through the control API', async () => {
    const file = await writeConfig(join(root, 'send'), {
      control: { listen: formatListen(address), token: '${HGW_CONTROL_TOKEN}' },
    });
    const out: string[] = [];
    const err: string[] = [];
    const io = {
      out: (s: string) => out.push(s),
      err: (s: string) => err.push(s),
      env: { HGW_CONTROL_TOKEN: TOKEN },
    };
    const code = await sendCommand('qqbot:group:G1', ['hello', 'A'], { config: file }, io);
    assert.equal(code, 0, err.join('\n'));
    assert.deepEqual(main.textsTo('G1'), ['hello A']);
    assert.deepEqual(second.textsTo('G1'), []);
    const refused = await sendCommand('qq-other:group:G1', ['x'], { config: file }, io);
    assert.equal(refused, 1);
    assert.match(err.join('\n'), /GW_ERR_CONTROL_UNKNOWN_PLATFORM/);
  });

  await t.test('state metrics carry the instance and its type', async () => {
    const text = await metrics.registry.metrics();
    assert.equal(
      sample(text, 'hermes_adapter_state{platform="qq-test",type="qqbot",state="connected"}'),
      1,
      text,
    );
    assert.equal(
      sample(text, 'hermes_deliveries_total{platform="qq-test",type="qqbot",result="ok"}'),
      1,
    );
  });
});
