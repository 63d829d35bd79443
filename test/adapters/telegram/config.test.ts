/**
 * `platforms.telegram` through the real config loader: the token as a secret from every
 * source, strictness, the token's shape, the non-secret credential identity, and the token
 * scrubbed from any text.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { defaultRegistry } from '../../../src/adapters/registry.js';
import { credentialIdentity, telegramPlatform } from '../../../src/adapters/telegram/index.js';
import {
  DEFAULTS,
  toSettings,
  type TelegramConfig,
} from '../../../src/adapters/telegram/config.js';
import { scrubToken } from '../../../src/adapters/telegram/rest.js';
import { loadConfig } from '../../../src/config/load.js';
import { Secret } from '../../../src/config/secret.js';
import { GatewayError } from '../../../src/errors.js';

const TOKEN = '7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';

async function load(
  telegram: Record<string, unknown>,
  env: NodeJS.ProcessEnv = {},
  files: Record<string, string> = {},
) {
  const dir = await mkdtemp(join(tmpdir(), 'hgw-tg-config-'));
  try {
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    const file = join(dir, 'config.yaml');
    await writeFile(file, stringify({ platforms: { telegram } }));
    const loaded = loadConfig(file, await defaultRegistry(), {
      ...env,
      CREDENTIALS_DIRECTORY: dir,
    });
    return loaded.config.platforms.telegram as TelegramConfig;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function refusal(promise: Promise<unknown>): Promise<GatewayError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof GatewayError, String(err));
    return err;
  }
  assert.fail('expected the config to be refused');
}

await test('token from ${VAR}, token_file and token_credential; defaults filled in', async () => {
  const fromEnv = await load({ token: '${TG_TOKEN}' }, { TG_TOKEN: TOKEN });
  assert.ok(fromEnv.token instanceof Secret);
  assert.equal(fromEnv.token.reveal(), TOKEN);
  const fromFile = await load({ token_file: 'tok' }, {}, { tok: `${TOKEN}\n` });
  assert.equal(fromFile.token.reveal(), TOKEN);
  const fromCredential = await load({ token_credential: 'tgcred' }, {}, { tgcred: TOKEN });
  assert.equal(fromCredential.token.reveal(), TOKEN);
  const settings = toSettings(fromEnv);
  assert.equal(settings.apiBase, DEFAULTS.apiBase);
  assert.equal(settings.polling.timeoutS, 30);
  assert.equal(settings.send.maxTextLength, 4096);
  assert.deepEqual(settings.allowedUpdates, [
    'message',
    'edited_message',
    'channel_post',
    'callback_query',
  ]);
  assert.equal(
    JSON.stringify(fromEnv).includes(TOKEN.split(':')[1]!),
    false,
    'the config prints no token',
  );
});

await test('an inline token, an unknown key, a bad token shape, a timeout above 50 are refused (exit 78) naming the key', async () => {
  const inline = await refusal(load({ token: TOKEN }));
  assert.equal(inline.code, 'GW_ERR_CONFIG_SECRET_INLINE');
  assert.equal(inline.message.includes(TOKEN.split(':')[1]!), false);
  const unknown = await refusal(
    load({ token: '${T}', polling: { timeout_s: 30, tiemout: 1 } }, { T: TOKEN }),
  );
  assert.equal(unknown.code, 'GW_ERR_CONFIG_INVALID');
  assert.match(unknown.message, /tiemout/);
  const shape = await refusal(load({ token: '${T}' }, { T: 'not-a-token' }));
  assert.equal(shape.code, 'GW_ERR_CONFIG_INVALID');
  assert.match(shape.message, /platforms\.telegram\.token/);
  assert.equal(shape.message.includes('not-a-token'), false);
  const timeout = await refusal(load({ token: '${T}', polling: { timeout_s: 51 } }, { T: TOKEN }));
  assert.match(timeout.message, /timeout_s/);
  for (const err of [inline, unknown, shape, timeout]) assert.equal(err.kind, 'config');
});

await test('credentialIdentity is telegram:<bot id>, never the secret half', async () => {
  const config = await load({ token: '${T}' }, { T: TOKEN });
  assert.equal(credentialIdentity(config), 'telegram:7012345678');
  assert.equal(telegramPlatform.name, 'telegram');
});

await test('scrubToken removes the token and its secret half from any text', () => {
  const token = new Secret(TOKEN);
  const text = `GET http://x/bot${TOKEN}/getMe failed; secret ${TOKEN.split(':')[1]}`;
  const out = scrubToken(text, token);
  assert.equal(out.includes(TOKEN.split(':')[1]!), false);
  assert.match(out, /bot\[redacted\]\/getMe/);
});
