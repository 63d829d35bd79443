/**
 * The QQ webhook transport in-process against the fake platform's webhook side: states, the
 * op 13 validation, a signed dispatch round trip, every rejection with its status (nothing
 * dispatched), a listener that dies, credentials refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IngressHub, type IngressRoute } from '../../../src/ingress/server.js';
import { createMetrics, metrics as shared, type GatewayMetrics } from '../../../src/metrics.js';
import { formatListen } from '../../../src/net/listen.js';
import { within } from '../../support/deadline.js';
import { QQHarness, trail } from './harness.js';

interface Setup {
  h: QQHarness;
  hub: IngressHub;
  metrics: GatewayMetrics;
  /** A route of the test's own on the same listener: it tells the bound port. */
  probe: IngressRoute;
  url: string;
}

async function setup(
  config: Record<string, unknown> = {},
  before: (h: QQHarness) => void = () => undefined,
): Promise<Setup> {
  const metrics = createMetrics();
  const hub = new IngressHub({ metrics, env: {} });
  const probe = await hub.register({
    listen: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    path: '/test-probe',
    instance: 'probe',
    maxBodyBytes: 1024,
    requestTimeoutMs: 5_000,
    handler: () => Promise.resolve({ status: 204 }),
  });
  const h = await QQHarness.start({
    ingress: hub,
    start: false,
    config: {
      transport: 'webhook',
      webhook: { listen: '127.0.0.1:0', max_body_bytes: 2048, timestamp_tolerance_s: 60 },
      ...config,
    },
  });
  const url = `http://${formatListen(probe.address)}/qqbot/qqbot`;
  h.fake.webhook.target = url;
  h.fake.webhook.retry = { attempts: 1, delayMs: 10 };
  before(h);
  h.startRunner();
  return { h, hub, metrics, probe, url };
}

async function teardown(s: Setup): Promise<void> {
  await s.h.close();
  await s.probe.close();
  await s.hub.close();
}

async function rejected(metrics: GatewayMetrics, reason: string): Promise<number> {
  const text = await metrics.registry.getSingleMetricAsString('hermes_ingress_rejected_total');
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`hermes_ingress_rejected_total{route="qqbot",reason="${reason}"}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

await test('webhook: connecting while binding and fetching the token, connected once both hold; op 13 answered; a signed dispatch round trip', async () => {
  const s = await setup();
  const { h } = s;
  try {
    await h.connected();
    const steps = trail(h).map((t) => `${t.state}/${t.detail ?? '-'}`);
    assert.deepEqual(steps.slice(steps.indexOf('connecting/binding')), [
      'connecting/binding',
      'connected/-',
    ]);
    assert.equal(h.qq().resumable, false);
    assert.equal(h.fake.tokenRequests.length, 1, 'the token was fetched before connected');
    assert.equal(h.fake.identifies.length, 0, 'no WebSocket in webhook mode');

    assert.equal(await h.fake.webhook.validate(), true, 'op 13 answered with the signed token');
    const record = await h.fake.webhook.dispatch('C2C_MESSAGE_CREATE', {
      id: 'ROBOT1.0_webhook-1',
      author: { id: 'u1', user_openid: 'OPENID1' },
      content: 'hello over webhook',
      timestamp: new Date().toISOString(),
      message_scene: { source: 'default' },
    });
    assert.deepEqual(record.attempts, [{ status: 200, body: '{"op":12,"d":0}' }]);
    const [event] = await h.waitForEvents(1);
    assert.equal(event!.text, 'hello over webhook');
    assert.equal(event!.id, 'qqbot:ROBOT1.0_webhook-1');
    assert.equal(event!.position, undefined, 'no resume stream in webhook mode');
    // The reply takes the same REST path as in WebSocket mode.
    const sent = h.fake.waitFor('message-sent');
    await h.adapter.send({ chat: event!.chat, text: 'pong', reply: event!.reply });
    const message = await sent;
    assert.equal((message.body as { msg_id?: string }).msg_id, 'ROBOT1.0_webhook-1');
    const last = await shared.registry.getSingleMetricAsString(
      'hermes_webhook_last_valid_callback_timestamp_seconds',
    );
    assert.match(last, /platform="qqbot",type="qqbot"\} \d+/);
    h.fake.assertNoViolations();
    // A valid callback is what moves last_event_at (written with the next state write).
    const outcome = await h.stop();
    assert.equal(outcome.exitCode, 0);
    const lastEventAt = h.read().platforms.qqbot?.last_event_at;
    assert.ok(lastEventAt !== null && lastEventAt !== undefined, 'last_event_at was recorded');
  } finally {
    await teardown(s);
  }
});

await test('webhook: every bad request is refused with its status and nothing is dispatched', async () => {
  const s = await setup();
  const { h, metrics } = s;
  try {
    await h.connected();
    const body = JSON.stringify({
      op: 0,
      id: 'C2C_MESSAGE_CREATE:forged',
      s: 1,
      t: 'C2C_MESSAGE_CREATE',
      d: {
        id: 'ROBOT1.0_forged',
        author: { id: 'u1', user_openid: 'OPENID1' },
        content: 'forged',
        timestamp: new Date().toISOString(),
      },
    });
    const hook = h.fake.webhook;
    const now = Math.floor(Date.now() / 1000);
    const good = hook.signedHeaders(body, now);

    // Signed with another bot's secret.
    const { FakeQQServer } = await import('../../../src/fakes/qq/server.js');
    const other = await FakeQQServer.start({ clientSecret: 'another-secret-abcdef' });
    const forgedHeaders = other.webhook.signedHeaders(body, now);
    await other.close();
    forgedHeaders['x-bot-appid'] = h.fake.settings.appId;
    const forged = await hook.raw({ body, headers: forgedHeaders });
    assert.equal(forged.status, 401, 'forged signature');

    // The timestamp changed after signing: the signature no longer matches.
    const retimed = await hook.raw({
      body,
      headers: { ...good, 'x-signature-timestamp': String(now - 1) },
    });
    assert.equal(retimed.status, 401, 'wrong timestamp');
    // Properly signed, but older than the tolerance (60 s here) or from the future.
    const stale = await hook.raw({ body, headers: hook.signedHeaders(body, now - 3_600) });
    assert.equal(stale.status, 401, 'stale timestamp');
    const future = await hook.raw({ body, headers: hook.signedHeaders(body, now + 3_600) });
    assert.equal(future.status, 401, 'future timestamp');
    // The body changed after signing (a re-serialised JSON counts).
    const altered = await hook.raw({ body: `${body} `, headers: good });
    assert.equal(altered.status, 401, 'body altered');
    const unsigned = await hook.raw({ body, headers: { 'content-type': 'application/json' } });
    assert.equal(unsigned.status, 401, 'no signature headers');
    const otherApp = await hook.raw({ body, headers: { ...good, 'x-bot-appid': '999' } });
    assert.equal(otherApp.status, 403, 'another app id');
    // An op 13 that is not signed gets no signature from us (no signing oracle).
    const validation = JSON.stringify({ op: 13, d: { plain_token: body, event_ts: String(now) } });
    const oracle = await hook.raw({
      body: validation,
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(oracle.status, 401, 'unsigned op 13');
    assert.doesNotMatch(oracle.body, /signature"\s*:\s*"[0-9a-f]/);

    const big = JSON.stringify({ op: 0, t: 'C2C_MESSAGE_CREATE', d: { pad: 'x'.repeat(4_000) } });
    const oversized = await hook.raw({ body: big, headers: hook.signedHeaders(big) });
    assert.equal(oversized.status, 413, 'oversized body');
    const get = await hook.raw({ method: 'GET', body: '', headers: good });
    assert.equal(get.status, 405, 'wrong method');
    const unknown = await hook.raw({ path: '/qqbot/nobody', body, headers: good });
    assert.equal(unknown.status, 404, 'unknown path');
    const notJson = await hook.raw({ body: 'not json', headers: hook.signedHeaders('not json') });
    assert.equal(notJson.status, 400, 'signed but not JSON');

    // The same request, untouched, is accepted: the refusals were about what was changed.
    const ok = await hook.raw({ body, headers: good });
    assert.equal(ok.status, 200);
    const events = await h.waitForEvents(1);
    assert.deepEqual(
      events.map((e) => e.text),
      ['forged'],
      'only the valid request was dispatched',
    );
    // Forged, re-timed, altered body; stale, future and the two without headers.
    assert.equal(await rejected(metrics, 'signature'), 3);
    assert.equal(await rejected(metrics, 'timestamp'), 4);
    assert.equal(await rejected(metrics, 'appid'), 1);
    assert.equal(await rejected(metrics, 'too_large'), 1);
    assert.equal(await rejected(metrics, 'method'), 1);
    assert.equal(await rejected(metrics, 'bad_json'), 1);
    const codes = h.codes();
    for (const code of [
      'GW_ERR_QQ_WEBHOOK_SIGNATURE',
      'GW_ERR_QQ_WEBHOOK_TIMESTAMP',
      'GW_ERR_QQ_WEBHOOK_APPID',
      'GW_ERR_QQ_WEBHOOK_BAD_BODY',
    ]) {
      assert.ok(codes.includes(code), `${code} logged`);
    }
    const secret = h.fake.settings.clientSecret;
    assert.ok(!h.logs.raw.join('\n').includes(secret), 'the secret never appears in the log');
  } finally {
    await teardown(s);
  }
});

await test('webhook: a listener that dies while running is fatal and retryable (exit 1)', async () => {
  const s = await setup();
  try {
    await s.h.connected();
    s.probe.server.close();
    const outcome = await s.h.finished();
    assert.equal(outcome.exitCode, 1);
    assert.equal(outcome.error?.code, 'GW_ERR_INGRESS_LISTENER_DIED');
    assert.equal(s.h.read().platforms.qqbot?.state, 'fatal');
  } finally {
    await teardown(s);
  }
});

await test('webhook: credentials refused by the token endpoint are fatal 78', async () => {
  const s = await setup({}, (h) => h.fake.setTokenFault('bad_credentials'));
  try {
    const outcome = await within(s.h.finished(), 10_000, 'the refusal to end the gateway');
    assert.equal(outcome.exitCode, 78);
    assert.equal(outcome.error?.code, 'GW_ERR_QQ_CREDENTIALS_REJECTED');
  } finally {
    await teardown(s);
  }
});
