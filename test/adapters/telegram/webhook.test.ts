/**
 * Telegram webhook mode end to end: the built CLI with the echo handler on the shared inbound
 * server, the fake Bot API calling it like the platform (secret header, retrying on non-2xx).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { FakeTelegramServer } from '../../../src/fakes/telegram/server.js';
import { freePort, occupyPort } from '../../support/ports.js';
import {
  PRODUCT_CLI,
  launchGateway,
  readState,
  scratchRoot,
  waitFor,
} from '../../support/spawn-gateway.js';

const TOKEN_ENV = 'HGW_TEST_TG_TOKEN';
const SECRET_ENV = 'HGW_TEST_TG_SECRET';
const SECRET = 'hook-secret_0123456789-abcdef';
const root = await scratchRoot('hgw-tg-webhook-');
let runs = 0;

function config(fake: FakeTelegramServer, port: number): Record<string, unknown> {
  return {
    log_level: 'debug',
    shutdown_timeout_ms: 2_000,
    platforms: {
      telegram: {
        token: `\${${TOKEN_ENV}}`,
        api_base: fake.apiBase,
        mode: 'webhook',
        webhook: {
          public_url: `http://127.0.0.1:${port}/tg/hook`,
          listen: `127.0.0.1:${port}`,
          secret_token: `\${${SECRET_ENV}}`,
          max_connections: 5,
        },
        reconnect: { backoff_ms: [20, 40], max_attempts: 3 },
        timeouts: { rest_ms: 1_000 },
        send: { private_interval_ms: 0, group_interval_ms: 0, global_interval_ms: 0 },
        jitter: false,
      },
    },
  };
}

function post(
  port: number,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: '/tg/hook', method: 'POST', headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function start(
  fake: FakeTelegramServer,
  port: number,
): Promise<Awaited<ReturnType<typeof launchGateway>>> {
  const launched = await launchGateway(
    join(root, `run-${(runs += 1)}`),
    config(fake, port),
    { [TOKEN_ENV]: fake.token, [SECRET_ENV]: SECRET },
    { cli: PRODUCT_CLI },
  );
  await launched.proc.waitForState(
    launched.statePath,
    (d) => d.platforms.telegram?.state === 'connected',
    'telegram connected',
    15_000,
  );
  return launched;
}

await test('webhook mode: setWebhook with the secret and allowed_updates, confirmed, updates answered; a wrong secret is 401 and dispatches nothing', async (t) => {
  const fake = await FakeTelegramServer.start();
  t.after(() => fake.close());
  const port = await freePort();
  const { proc, statePath } = await start(fake, port);
  t.after(() => proc.kill());

  assert.deepEqual(fake.webhookParams, {
    url: `http://127.0.0.1:${port}/tg/hook`,
    allowed_updates: ['message', 'edited_message', 'channel_post', 'callback_query'],
    max_connections: 5,
    drop_pending_updates: false,
    secret_token_length: SECRET.length,
  });
  const methods = fake.requests.map((r) => r.method);
  assert.deepEqual(methods.slice(0, 3), ['getme', 'setwebhook', 'getwebhookinfo']);
  assert.ok(!methods.includes('getupdates'), 'no polling in webhook mode');

  const sent = fake.waitFor('sent', 10_000);
  const { messageId } = fake.message('hello by webhook');
  await sent;
  assert.equal(fake.sent.at(-1)?.text, 'hello by webhook');
  assert.equal(fake.sent.at(-1)?.replyTo, messageId);
  assert.ok(fake.webhookDeliveries.every((d) => d.status === 200));

  // Forged pushes: no header, a wrong one, a right prefix. All 401, none answered.
  const update = JSON.stringify({
    update_id: 999_000_001,
    message: {
      message_id: 77,
      date: Math.floor(Date.now() / 1000),
      chat: { id: 1001, type: 'private', first_name: 'Ada' },
      from: { id: 1001, is_bot: false, first_name: 'Ada' },
      text: 'forged',
    },
  });
  const json = { 'content-type': 'application/json' };
  assert.equal((await post(port, update, json)).status, 401);
  const wrong = { ...json, 'x-telegram-bot-api-secret-token': 'not-the-secret' };
  assert.equal((await post(port, update, wrong)).status, 401);
  const prefix = { ...json, 'x-telegram-bot-api-secret-token': SECRET.slice(0, -1) };
  assert.equal((await post(port, update, prefix)).status, 401);
  // The right secret with a body that is no update: 400.
  const right = { ...json, 'x-telegram-bot-api-secret-token': SECRET };
  assert.equal((await post(port, '{"nope":1}', right)).status, 400);

  // A real message after them is answered, and nothing was sent for the forged ones.
  const next = fake.waitFor('sent', 10_000);
  fake.message('after the forgeries');
  await next;
  assert.deepEqual(
    fake.sent.map((m) => m.text),
    ['hello by webhook', 'after the forgeries'],
  );
  assert.equal(proc.codes().filter((c) => c === 'GW_ERR_TELEGRAM_WEBHOOK_SECRET').length, 3);
  assert.ok(!proc.stdout.includes(SECRET), 'the secret token is not logged');
  assert.ok(!proc.stdout.includes(fake.token.split(':')[1]!), 'the bot token is not logged');

  proc.signal('SIGTERM');
  assert.equal((await proc.waitForExit(10_000)).code, 0);
  assert.equal(readState(statePath)?.platforms.telegram?.state, 'stopped');
});

await test('webhook mode: an update pushed while the gateway is down is retried by the platform and answered after the restart', async (t) => {
  const fake = await FakeTelegramServer.start();
  t.after(() => fake.close());
  fake.webhookRetryMs = 50;
  const port = await freePort();
  const first = await start(fake, port);
  t.after(() => first.proc.kill());
  first.proc.signal('SIGTERM');
  assert.equal((await first.proc.waitForExit(10_000)).code, 0);
  // The webhook stays set on stop: Telegram keeps the update and retries it.
  fake.message('while you were down');
  await fake.waitFor<{ status: number }>('webhook-delivery', 5_000, (d) => d.status !== 200);

  const second = await start(fake, port);
  t.after(() => second.proc.kill());
  // Delivered as soon as the listener is up, possibly before `connected`: polled, not awaited.
  await waitFor(
    () => fake.sent.some((m) => m.text === 'while you were down'),
    'the echo of the retried update',
    10_000,
  );
  const statuses = fake.webhookDeliveries.map((d) => d.status);
  assert.ok(statuses.includes(0), 'a failed delivery was retried');
  assert.equal(statuses.at(-1), 200);
  second.proc.signal('SIGTERM');
  assert.equal((await second.proc.waitForExit(10_000)).code, 0);
});

await test('webhook mode: a listen address already in use is exit 78 (GW_ERR_INGRESS_LISTEN), before any setWebhook', async (t) => {
  const fake = await FakeTelegramServer.start();
  t.after(() => fake.close());
  const { server, port } = await occupyPort();
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { proc, statePath } = await launchGateway(
    join(root, `run-${(runs += 1)}`),
    config(fake, port),
    { [TOKEN_ENV]: fake.token, [SECRET_ENV]: SECRET },
    { cli: PRODUCT_CLI },
  );
  t.after(() => proc.kill());
  assert.equal((await proc.waitForExit(15_000)).code, 78);
  const state = readState(statePath);
  assert.equal(state?.platforms.telegram?.state, 'fatal');
  assert.equal(state?.platforms.telegram?.last_error?.code, 'GW_ERR_INGRESS_LISTEN');
  assert.equal(fake.webhookParams, null, 'no webhook was set for an address we cannot serve');
});
