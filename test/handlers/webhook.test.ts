import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { Secret } from '../../src/config/secret.js';
import { parseHandlerConfig, type WebhookHandlerConfig } from '../../src/handlers/config.js';
import { signBody, createWebhookHandler } from '../../src/handlers/webhook.js';
import { captureLogger } from '../support/capture.js';
import { startFakeWebhook } from '../fakes/webhook/server.js';
import { makeEvent, rejectsWith } from './helpers.js';

const SECRET = 'webhook-signing-secret-0123';

function config(url: string, extra: Record<string, unknown> = {}): WebhookHandlerConfig {
  return parseHandlerConfig({
    type: 'webhook',
    url,
    secret: new Secret(SECRET),
    timeout_ms: 300,
    max_attempts: 3,
    retry_backoff_ms: 5,
    retry_backoff_max_ms: 20,
    ...extra,
  }) as WebhookHandlerConfig;
}

/** A loopback port nothing listens on: bound, then closed. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

await test('webhook handler', async (t) => {
  const { log, raw } = captureLogger();
  const signal = new AbortController().signal;

  const fake = await startFakeWebhook({ secret: SECRET });
  t.after(async () => {
    await fake.close();
  });
  t.beforeEach(() => {
    fake.requests.length = 0;
    fake.script.length = 0;
  });

  await t.test('POSTs the event signed over the exact body and delivers the replies', async () => {
    const handler = createWebhookHandler(config(fake.url), { log });
    const event = makeEvent({
      text: 'hello hook',
      attachments: [{ url: 'https://x/a.png', content_type: 'image/png', filename: 'a.png' }],
    });
    const replies = await handler.handle(event, signal);
    assert.deepEqual(replies, [{ text: 'hook: hello hook' }]);
    assert.equal(fake.requests.length, 1);
    const request = fake.requests[0]!;
    assert.equal(request.signatureValid, true);
    assert.deepEqual(request.event, event);
    assert.equal(request.headers['x-hermes-signature'], signBody(SECRET, request.body));
    assert.equal(request.headers['x-hermes-event-id'], event.id);
    assert.match(String(request.headers['content-type']), /^application\/json/);
  });

  await t.test(
    'a receiver with another secret rejects the signature: 401, not retried',
    async () => {
      const other = await startFakeWebhook({ secret: 'a-different-secret' });
      try {
        const handler = createWebhookHandler(config(other.url), { log });
        const err = await rejectsWith(
          handler.handle(makeEvent(), signal),
          'GW_ERR_HANDLER_HTTP_STATUS',
        );
        assert.equal(err.details.status, 401);
        assert.equal(other.requests.length, 1);
        assert.equal(other.requests[0]!.signatureValid, false);
      } finally {
        await other.close();
      }
    },
  );

  await t.test('204 and an empty 200 mean no reply', async () => {
    const handler = createWebhookHandler(config(fake.url), { log });
    fake.script.push({ kind: 'status', status: 204 }, { kind: 'status', status: 200 });
    assert.deepEqual(await handler.handle(makeEvent(), signal), []);
    assert.deepEqual(await handler.handle(makeEvent(), signal), []);
  });

  await t.test('several replies, empty texts skipped, extra keys ignored', async () => {
    const handler = createWebhookHandler(config(fake.url), { log });
    fake.script.push({
      kind: 'status',
      status: 200,
      body: { replies: [{ text: 'one' }, { text: '  ' }, { text: 'two', extra: 1 }], version: 2 },
    });
    assert.deepEqual(await handler.handle(makeEvent(), signal), [{ text: 'one' }, { text: 'two' }]);
  });

  await t.test('5xx then success within the retry budget', async () => {
    const handler = createWebhookHandler(config(fake.url), { log });
    fake.script.push({ kind: 'status', status: 500 }, { kind: 'status', status: 503 });
    const event = makeEvent({ text: 'persist' });
    assert.deepEqual(await handler.handle(event, signal), [{ text: 'hook: persist' }]);
    assert.equal(fake.requests.length, 3);
    // Every attempt carries the same signed body, so the receiver can dedupe by event id.
    assert.ok(fake.requests.every((r) => r.signatureValid && r.event?.id === event.id));
  });

  await t.test(
    '5xx exhausting the budget is GW_ERR_HANDLER_HTTP_STATUS with the status',
    async () => {
      const handler = createWebhookHandler(config(fake.url, { max_attempts: 2 }), { log });
      fake.script.push(
        { kind: 'status', status: 502 },
        { kind: 'status', status: 500 },
        { kind: 'status', status: 200, body: { replies: [] } },
      );
      const err = await rejectsWith(
        handler.handle(makeEvent(), signal),
        'GW_ERR_HANDLER_HTTP_STATUS',
      );
      assert.equal(err.details.status, 500);
      assert.equal(err.details.attempts, 2);
      assert.equal(fake.requests.length, 2);
    },
  );

  await t.test('4xx is not retried', async () => {
    const handler = createWebhookHandler(config(fake.url), { log });
    fake.script.push({ kind: 'status', status: 422, body: { error: 'no' } });
    const err = await rejectsWith(
      handler.handle(makeEvent(), signal),
      'GW_ERR_HANDLER_HTTP_STATUS',
    );
    assert.equal(err.details.status, 422);
    assert.equal(fake.requests.length, 1);
  });

  await t.test('a connection cut without an answer is retried', async () => {
    const handler = createWebhookHandler(config(fake.url), { log });
    fake.script.push({ kind: 'reset' });
    assert.deepEqual(await handler.handle(makeEvent({ text: 'again' }), signal), [
      { text: 'hook: again' },
    ]);
    assert.equal(fake.requests.length, 2);
  });

  await t.test(
    'nothing listening: GW_ERR_HANDLER_NETWORK once the attempts are spent',
    async () => {
      const port = await deadPort();
      const handler = createWebhookHandler(config(`http://127.0.0.1:${port}/hook`), { log });
      const err = await rejectsWith(handler.handle(makeEvent(), signal), 'GW_ERR_HANDLER_NETWORK');
      assert.equal(err.details.errno, 'ECONNREFUSED');
    },
  );

  await t.test('no answer within timeout_ms: GW_ERR_HANDLER_TIMEOUT, not retried', async () => {
    const handler = createWebhookHandler(config(fake.url, { timeout_ms: 100 }), { log });
    fake.script.push({ kind: 'hang' });
    const started = performance.now();
    await rejectsWith(handler.handle(makeEvent(), signal), 'GW_ERR_HANDLER_TIMEOUT');
    assert.ok(performance.now() - started < 1_000);
    assert.equal(fake.requests.length, 1);
  });

  await t.test('a body that is not JSON, or not the expected shape, is malformed', async () => {
    const handler = createWebhookHandler(config(fake.url), { log });
    fake.script.push(
      { kind: 'status', status: 200, raw: '{"replies": [' },
      { kind: 'status', status: 200, body: { replies: 'hello' } },
      { kind: 'status', status: 200, body: [{ text: 'hello' }] },
    );
    for (let i = 0; i < 3; i++) {
      await rejectsWith(handler.handle(makeEvent(), signal), 'GW_ERR_HANDLER_MALFORMED_RESPONSE');
    }
  });

  await t.test(
    'a huge answer is GW_ERR_HANDLER_RESPONSE_TOO_LARGE, declared or streamed',
    async () => {
      const handler = createWebhookHandler(config(fake.url, { max_response_bytes: 4096 }), { log });
      fake.script.push(
        { kind: 'huge', bytes: 2 * 1024 * 1024, declareLength: true },
        { kind: 'huge', bytes: 2 * 1024 * 1024, declareLength: false },
      );
      await rejectsWith(handler.handle(makeEvent(), signal), 'GW_ERR_HANDLER_RESPONSE_TOO_LARGE');
      await rejectsWith(handler.handle(makeEvent(), signal), 'GW_ERR_HANDLER_RESPONSE_TOO_LARGE');
    },
  );

  await t.test('aborting the signal cancels a request in flight', async () => {
    const handler = createWebhookHandler(config(fake.url, { timeout_ms: 10_000 }), { log });
    fake.script.push({ kind: 'hang' });
    const controller = new AbortController();
    const pending = handler.handle(makeEvent(), controller.signal);
    while (fake.requests.length === 0) await new Promise((resolve) => setImmediate(resolve));
    controller.abort();
    await rejectsWith(pending, 'GW_ERR_HANDLER_CANCELLED');
  });

  await t.test('neither the secret nor the URL query reaches a log line', () => {
    const text = raw.join('\n');
    assert.ok(!text.includes(SECRET));
    assert.ok(!text.includes('not-for-logs'));
  });
});

await test('webhook config', async (t) => {
  await t.test('url and secret are required; unknown keys are rejected', () => {
    assert.throws(() => parseHandlerConfig({ type: 'webhook', secret: new Secret('x') }));
    assert.throws(() => parseHandlerConfig({ type: 'webhook', url: 'http://127.0.0.1/x' }));
    assert.throws(() =>
      parseHandlerConfig({ type: 'webhook', url: 'ftp://x/y', secret: new Secret('x') }),
    );
    assert.throws(() =>
      parseHandlerConfig({
        type: 'webhook',
        url: 'http://x/y',
        secret: new Secret('x'),
        retries: 3,
      }),
    );
  });

  await t.test('production defaults', () => {
    const parsed = parseHandlerConfig({
      type: 'webhook',
      url: 'https://example.org/hook',
      secret: new Secret('x'),
    });
    assert.equal(parsed.type, 'webhook');
    if (parsed.type !== 'webhook') return;
    assert.equal(parsed.timeout_ms, 10_000);
    assert.equal(parsed.max_attempts, 3);
    assert.equal(parsed.max_response_bytes, 1024 * 1024);
    assert.equal(parsed.concurrency, 8);
    assert.equal(parsed.queue_limit, 100);
  });
});
