/**
 * `type: discord` config: production defaults, strictness (an unknown key is an error naming
 * it and the file, exit 78 through `check`), intents by name, the credential identity.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { discordPlatform } from '../../../src/adapters/discord/index.js';
import { DEFAULTS, discordSchema, toSettings } from '../../../src/adapters/discord/config.js';
import { runCli } from '../../../src/cli/program.js';
import { Secret } from '../../../src/config/secret.js';

const TOKEN = 'MTAwMDAwMDAwMDAwMDAwMDAx.GfAkEt.fake-discord-token-0123456789abcdef';
const minimal = { token: new Secret(TOKEN) };

await test('defaults are the production values', () => {
  const s = toSettings(discordSchema.parse(minimal));
  assert.equal(s.apiBase, 'https://discord.com/api/v10');
  assert.equal(s.gatewayUrl, null);
  assert.equal(s.intents, 37377, 'GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES | MESSAGE_CONTENT');
  assert.deepEqual(s.shard, [0, 1]);
  assert.equal(s.respondTo, 'mentions');
  assert.equal(s.ignoreBots, true);
  assert.deepEqual(s.gatewayLimit, { commands: 120, windowMs: 60_000 });
  assert.equal(s.send.maxTextLength, 2_000);
  assert.deepEqual(s.send.allowedMentions, []);
  assert.equal(s.send.globalPerSecond, 50);
  assert.deepEqual(s.reconnect.invalidSessionWaitMs, [1_000, 5_000]);
  assert.equal(s.reconnect.identifyIntervalMs, 5_000);
  assert.equal(s.reconnect.maxResumeFailures, DEFAULTS.reconnect.maxResumeFailures);
  assert.equal(s.jitter, true);
});

await test('strict: unknown keys (top level and nested), unknown intents, a spaced token are refused', () => {
  assert.equal(discordSchema.safeParse({ ...minimal, surprise: 1 }).success, false);
  assert.equal(discordSchema.safeParse({ ...minimal, send: { nonce: 1 } }).success, false);
  assert.equal(discordSchema.safeParse({ ...minimal, intents: ['EVERYTHING'] }).success, false);
  assert.equal(discordSchema.safeParse({ ...minimal, shard: [1, 1] }).success, false);
  assert.equal(
    discordSchema.safeParse({ ...minimal, gateway_limit: { commands: 121 } }).success,
    false,
  );
  assert.equal(discordSchema.safeParse({ token: new Secret(`Bot ${TOKEN}`) }).success, false);
  assert.equal(discordSchema.safeParse({ token: 'inline' }).success, false);
  assert.equal(discordSchema.safeParse({}).success, false, 'the token is required');
});

await test('the credential identity is the bot id from the token, never the token', () => {
  const config = discordSchema.parse(minimal);
  assert.equal(discordPlatform.credentialIdentity?.(config), 'discord:100000000000000001');
  const other = discordSchema.parse({ token: new Secret('not-a-three-part-token') });
  const id = discordPlatform.credentialIdentity?.(other) ?? '';
  assert.match(id, /^discord:sha256:[0-9a-f]{12}$/);
  assert.ok(!id.includes('not-a-three-part-token'));
});

await test('check: an unknown key under platforms.<discord instance> exits 78 naming key and file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hgw-discord-config-'));
  try {
    const file = join(dir, 'config.yaml');
    await writeFile(
      file,
      stringify({ platforms: { bot: { type: 'discord', token: '${T}', respond: 'all' } } }),
      { mode: 0o600 },
    );
    const out: string[] = [];
    const code = await runCli(['node', 'hermes-gateway', 'check', '--config', file], {
      io: { out: (s) => out.push(s), err: (s) => out.push(s), env: { T: TOKEN, HOME: dir } },
    });
    assert.equal(code, 78);
    assert.match(out.join(' '), /platforms\.bot/);
    assert.match(out.join(' '), /respond/);
    assert.match(out.join(' '), /config\.yaml/);
    assert.ok(!out.join(' ').includes(TOKEN));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
