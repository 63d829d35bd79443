/**
 * `platforms.qqbot`: defaults, strictness, the sandbox base, intents by name.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULTS, qqbotSchema, toSettings } from '../../../src/adapters/qqbot/config.js';
import { Secret } from '../../../src/config/secret.js';

const minimal = { app_id: '102000000', client_secret: new Secret('s3cret') };

await test('defaults are the production values', () => {
  const settings = toSettings(qqbotSchema.parse(minimal));
  assert.equal(settings.tokenUrl, 'https://bots.qq.com/app/getAppAccessToken');
  assert.equal(settings.apiBase, 'https://api.sgroup.qq.com');
  assert.equal(settings.gatewayUrl, null);
  assert.equal(settings.intents, 1107300352);
  assert.deepEqual(settings.shard, [0, 1]);
  assert.deepEqual(settings.reconnect.backoffMs, [2_000, 5_000, 10_000, 30_000, 60_000]);
  assert.equal(settings.reconnect.maxAttempts, 100);
  assert.equal(settings.reconnect.healthyAfterMs, DEFAULTS.reconnect.healthyAfterMs);
  assert.equal(settings.tokenRefreshMarginMs, 50_000);
  assert.equal(settings.send.maxTextLength, 2_000);
  assert.equal(settings.maxPayloadBytes, 1024 * 1024);
  assert.equal(settings.jitter, true);
  assert.equal(settings.timeouts.heartbeatAckMs, 10_000);
});

await test('sandbox switches the default API base; an explicit api_base wins', () => {
  assert.equal(
    toSettings(qqbotSchema.parse({ ...minimal, sandbox: true })).apiBase,
    'https://sandbox.api.sgroup.qq.com',
  );
  assert.equal(
    toSettings(qqbotSchema.parse({ ...minimal, sandbox: true, api_base: 'http://127.0.0.1:1/' }))
      .apiBase,
    'http://127.0.0.1:1',
  );
});

await test('a numeric app_id (unquoted YAML) is read as a string', () => {
  assert.equal(qqbotSchema.parse({ ...minimal, app_id: 102000000 }).app_id, '102000000');
});

await test('intents are names; an unknown name, an unknown key or a plain-string secret is refused', () => {
  const mask = toSettings(
    qqbotSchema.parse({ ...minimal, intents: ['GUILDS', 'GROUP_AND_C2C_EVENT'] }),
  ).intents;
  assert.equal(mask, 1 | (1 << 25));
  assert.equal(qqbotSchema.safeParse({ ...minimal, intents: ['EVERYTHING'] }).success, false);
  assert.equal(qqbotSchema.safeParse({ ...minimal, intents: [] }).success, false);
  assert.equal(qqbotSchema.safeParse({ ...minimal, surprise: 1 }).success, false);
  assert.equal(
    qqbotSchema.safeParse({ ...minimal, reconnect: { max_attempt: 3 } }).success,
    false,
    'nested objects are strict too',
  );
  assert.equal(qqbotSchema.safeParse({ ...minimal, client_secret: 'inline' }).success, false);
  assert.equal(qqbotSchema.safeParse({ app_id: '1' }).success, false, 'the secret is required');
});

await test('a refresh margin beyond the platform renew window (60 s) is refused', () => {
  assert.equal(
    qqbotSchema.safeParse({ ...minimal, token_refresh_margin_ms: 60_000 }).success,
    true,
  );
  assert.equal(
    qqbotSchema.safeParse({ ...minimal, token_refresh_margin_ms: 61_000 }).success,
    false,
  );
});

await test('shard must be [id, count] with id < count; gateway_url must be ws(s)', () => {
  assert.equal(qqbotSchema.safeParse({ ...minimal, shard: [1, 1] }).success, false);
  assert.equal(qqbotSchema.safeParse({ ...minimal, shard: [1, 2] }).success, true);
  assert.equal(qqbotSchema.safeParse({ ...minimal, gateway_url: 'http://x' }).success, false);
  assert.equal(
    qqbotSchema.safeParse({ ...minimal, gateway_url: 'ws://127.0.0.1:9/ws' }).success,
    true,
  );
});

await test('the parsed config never prints the secret', () => {
  const config = qqbotSchema.parse(minimal);
  assert.ok(!JSON.stringify(config).includes('s3cret'));
  assert.ok(!JSON.stringify(toSettings(config)).includes('s3cret'));
});
