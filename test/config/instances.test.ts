/**
 * `platforms:` as named instances, in-process: the type defaults to the key (old configs load
 * unchanged), `type` picks the schema, problems are reported under the instance's key, and one
 * credential in two enabled instances is refused. The bad-config table (config-cases.ts) runs
 * the same classes through `check` and `run`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  INSTANCE_NAME,
  assertDistinctCredentials,
  credentialClaims,
  enabledInstances,
} from '../../src/config/instances.js';
import { loadConfig } from '../../src/config/load.js';
import { isGatewayError, type GatewayError } from '../../src/errors.js';
import { SECRET_VALUE } from '../support/config-cases.js';
import { scratchRoot, writeConfig } from '../support/spawn-gateway.js';
import { testRegistry } from '../support/test-registry.js';

const registry = testRegistry();
const root = await scratchRoot('hgw-instances-');
let counter = 0;
const ENV = { HGW_QQ_SECRET: SECRET_VALUE };

async function load(config: unknown): Promise<ReturnType<typeof loadConfig>> {
  const dir = join(root, `c${++counter}`);
  await mkdir(dir, { recursive: true });
  return loadConfig(await writeConfig(dir, config), registry, ENV);
}

async function loadError(config: unknown): Promise<GatewayError> {
  try {
    await load(config);
  } catch (err) {
    assert.ok(isGatewayError(err), String(err));
    return err;
  }
  assert.fail('expected loadConfig to throw');
}

function qq(appId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { app_id: appId, client_secret: '${HGW_QQ_SECRET}', ...extra };
}

await test('instances: type defaults to the key, `type` picks the schema', async (t) => {
  await t.test('an old single-instance config is instance `qqbot` of type qqbot', async () => {
    const { config } = await load({ platforms: { qqbot: qq('102011111') } });
    const [only, ...rest] = enabledInstances(config.platforms, registry);
    assert.equal(rest.length, 0);
    assert.equal(only?.name, 'qqbot');
    assert.equal(only?.type, 'qqbot');
    assert.equal(only?.definition, registry.get('qqbot'));
    assert.equal(only?.config.app_id, '102011111');
  });

  await t.test('two instances of one type keep their own settings', async () => {
    const { config } = await load({
      platforms: {
        qqbot: qq('102011111'),
        'qq-test': qq('102022222', { type: 'qqbot', sandbox: true }),
        spare: { type: 'scripted', enabled: false },
      },
    });
    const instances = enabledInstances(config.platforms, registry);
    assert.deepEqual(
      instances.map((i) => [i.name, i.type, i.config.app_id, i.config.sandbox]),
      [
        ['qqbot', 'qqbot', '102011111', false],
        ['qq-test', 'qqbot', '102022222', true],
      ],
    );
    assert.equal(config.platforms.spare?.type, 'scripted', 'a disabled instance is still typed');
    assert.deepEqual(credentialClaims(instances), [
      { instance: 'qqbot', identity: 'qqbot:102011111' },
      { instance: 'qq-test', identity: 'qqbot:102022222' },
    ]);
  });

  await t.test('instance names: the pattern, at its edges', () => {
    for (const good of ['a', '0', 'qq-test', 'qq_test', 'a'.repeat(32), '9lives']) {
      assert.ok(INSTANCE_NAME.test(good), good);
    }
    for (const bad of ['', 'A', 'qq.test', '-a', '_a', 'a'.repeat(33), 'qq test', 'qq:test']) {
      assert.ok(!INSTANCE_NAME.test(bad), bad);
    }
  });

  await t.test('an unknown type names the key and every known type', async () => {
    const implicit = await loadError({ platforms: { icq: {} } });
    assert.equal(implicit.code, 'GW_ERR_CONFIG_INVALID');
    assert.equal(implicit.details.key, 'platforms.icq');
    const explicit = await loadError({ platforms: { chat: { type: 'icq' } } });
    assert.equal(explicit.details.key, 'platforms.chat.type');
    for (const known of registry.keys()) assert.ok(explicit.message.includes(known), known);
    const notString = await loadError({ platforms: { chat: { type: 7 } } });
    assert.equal(notString.details.key, 'platforms.chat.type');
  });

  await t.test('bad instance names are config errors naming the key', async () => {
    for (const name of ['a'.repeat(33), '-lead', 'qq.test']) {
      const err = await loadError({ platforms: { [name]: { type: 'scripted' } } });
      assert.equal(err.code, 'GW_ERR_CONFIG_INVALID');
      assert.equal(err.details.key, `platforms.${name}`);
    }
  });

  await t.test('an instance that is not a mapping names its key', async () => {
    const err = await loadError({ platforms: { qqbot: 'yes' } });
    assert.equal(err.details.key, 'platforms.qqbot');
  });

  await t.test("a typed instance's problems are named under the instance", async () => {
    const missing = await loadError({ platforms: { 'qq-test': { type: 'qqbot', app_id: '1' } } });
    assert.equal(missing.details.key, 'platforms.qq-test.client_secret');
    const nested = await loadError({
      platforms: { 'qq-test': qq('1', { type: 'qqbot', reconnect: { nope: 1 } }) },
    });
    assert.equal(nested.details.key, 'platforms.qq-test.reconnect.nope');
    const wrongType = await loadError({
      platforms: { 'bot-2': { type: 'scripted', after_ms: 'x' } },
    });
    assert.equal(wrongType.details.key, 'platforms.bot-2.after_ms');
  });
});

await test('one credential, one instance', async (t) => {
  await t.test('two enabled instances with one app_id: GW_ERR_CREDENTIAL_IN_USE', async () => {
    const err = await loadError({
      platforms: {
        qqbot: qq('102033333'),
        'qq-test': qq('102033333', { type: 'qqbot' }),
      },
    });
    assert.equal(err.code, 'GW_ERR_CREDENTIAL_IN_USE');
    assert.equal(err.kind, 'config');
    assert.equal(err.details.key, 'platforms.qq-test');
    assert.deepEqual(err.details.instances, ['qqbot', 'qq-test']);
    assert.equal(err.details.identity, 'qqbot:102033333');
    assert.ok(!err.message.includes(SECRET_VALUE));
    assert.ok(!JSON.stringify(err.details).includes(SECRET_VALUE));
  });

  await t.test('a disabled duplicate does not run, so it is no conflict', async () => {
    const { config } = await load({
      platforms: {
        qqbot: qq('102044444'),
        'qq-old': qq('102044444', { type: 'qqbot', enabled: false }),
      },
    });
    const instances = enabledInstances(config.platforms, registry);
    assert.doesNotThrow(() => assertDistinctCredentials(instances, 'config.yaml'));
    assert.deepEqual(
      instances.map((i) => i.name),
      ['qqbot'],
    );
  });

  await t.test('types without a credential identity never conflict', async () => {
    const { config } = await load({
      platforms: { a: { type: 'scripted' }, b: { type: 'scripted' } },
    });
    assert.deepEqual(credentialClaims(enabledInstances(config.platforms, registry)), []);
  });
});

await test("docs/configuration.md's two-instance example loads as two QQ instances", async () => {
  const doc = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
  const section = doc.split(/^## Instances$/m)[1] ?? '';
  const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(yaml, 'the Instances section has a yaml block');
  const dir = join(root, 'docs-example');
  await mkdir(dir, { recursive: true });
  const file = await writeConfig(dir, yaml);
  const { config } = loadConfig(file, registry, { QQ_SECRET: 'a-secret', QQ_TEST_SECRET: 'b' });
  assert.deepEqual(
    enabledInstances(config.platforms, registry).map((i) => [i.name, i.type]),
    [
      ['qqbot', 'qqbot'],
      ['qq-test', 'qqbot'],
    ],
  );
});
