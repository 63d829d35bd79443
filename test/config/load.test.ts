/**
 * loadConfig in-process: every class of bad config is a GatewayError whose code says what is
 * wrong and whose `details.key` names the key; good configs interpolate and resolve secrets.
 * The same cases go through the real CLI in test/config/cli.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { enabledPlatforms, loadConfig, locateConfig } from '../../src/config/load.js';
import { DEFAULTS } from '../../src/config/schema.js';
import { Secret } from '../../src/config/secret.js';
import { isGatewayError, type GatewayError } from '../../src/errors.js';
import { captureLogger } from '../support/capture.js';
import { BAD_CONFIGS, SECRET_VALUE, prepareCase } from '../support/config-cases.js';
import { scratchRoot, writeConfig } from '../support/spawn-gateway.js';
import { testRegistry } from '../support/test-registry.js';

const registry = testRegistry();
let counter = 0;

const root = await scratchRoot('hgw-config-');

async function caseDir(): Promise<string> {
  const dir = join(root, `c${++counter}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

function configError(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    assert.ok(isGatewayError(err), `expected a GatewayError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected loadConfig to throw');
}

await test('loadConfig rejects bad configs with a code and the key', async (t) => {
  for (const bad of BAD_CONFIGS) {
    await t.test(`${bad.name}: ${bad.code}${bad.key ? ` at ${bad.key}` : ''}`, async () => {
      const dir = await caseDir();
      const { file, env } = await prepareCase(bad, dir);
      if (bad.code === 'GW_ERR_NO_PLATFORMS') {
        // Valid as a document; `check` and `run` refuse it because nothing would run.
        const { config } = loadConfig(file, registry, env);
        assert.deepEqual(enabledPlatforms(config), []);
        return;
      }
      const err = configError(() => loadConfig(file, registry, env));
      assert.equal(err.code, bad.code);
      assert.equal(err.kind, 'config');
      assert.equal(err.details.file, file);
      if (bad.key !== undefined) assert.equal(err.details.key, bad.key);
      // The message names the file (and the key, when there is one) for the operator.
      assert.ok(err.message.includes(file));
      if (bad.key !== undefined) assert.ok(err.message.includes(bad.key), err.message);
      // No secret in any error, even the one about an inline secret.
      assert.ok(!err.message.includes(SECRET_VALUE));
      assert.ok(!JSON.stringify(err.details).includes(SECRET_VALUE));
    });
  }

  await t.test('reports every unknown key at once, the first in details.key', async () => {
    const dir = await caseDir();
    const file = await writeConfig(dir, {
      zzz: 1,
      platforms: { scripted: { enabled: true, yyy: 2 } },
    });
    const err = configError(() => loadConfig(file, registry, {}));
    assert.equal(err.code, 'GW_ERR_CONFIG_INVALID');
    assert.ok(['zzz', 'platforms.scripted.yyy'].includes(err.details.key as string));
    assert.ok(err.message.includes('zzz') && err.message.includes('platforms.scripted.yyy'));
  });

  await t.test('rejects a top level that is not a mapping', async () => {
    const dir = await caseDir();
    const file = await writeConfig(dir, '- a\n- b\n');
    assert.equal(configError(() => loadConfig(file, registry, {})).code, 'GW_ERR_CONFIG_INVALID');
  });

  await t.test('rejects a duplicate key as a parse error', async () => {
    const dir = await caseDir();
    const file = await writeConfig(dir, 'log_level: info\nlog_level: debug\n');
    assert.equal(configError(() => loadConfig(file, registry, {})).code, 'GW_ERR_CONFIG_PARSE');
  });
});

await test('loadConfig accepts good configs', async (t) => {
  await t.test('fills the production defaults', async () => {
    const dir = await caseDir();
    const file = await writeConfig(dir, { platforms: { scripted: {} } });
    const { config } = loadConfig(file, registry, {});
    assert.equal(config.shutdown_timeout_ms, DEFAULTS.shutdownTimeoutMs);
    assert.equal(config.heartbeat_interval_ms, DEFAULTS.heartbeatIntervalMs);
    assert.equal(config.log_level, DEFAULTS.logLevel);
    assert.equal(config.handler.type, 'echo');
    assert.equal(config.state_file, undefined);
    assert.deepEqual(enabledPlatforms(config), ['scripted']);
  });

  await t.test('interpolates ${VAR}, ${VAR:-default} and keeps $${ literal', async () => {
    const dir = await caseDir();
    const file = await writeConfig(dir, {
      state_file: '${HGW_STATE_DIR}/state.json',
      log_level: '${HGW_UNSET_LEVEL:-warn}',
      platforms: {
        scripted: { error_code: 'GW_ERR_$${NOT_A_VAR}', steps: ['${HGW_STEP}'] },
      },
    });
    const env = { HGW_STATE_DIR: '/srv/state', HGW_STEP: 'connecting' };
    const { config } = loadConfig(file, registry, env);
    assert.equal(config.state_file, '/srv/state/state.json');
    assert.equal(config.log_level, 'warn');
    const scripted = config.platforms.scripted as unknown as {
      error_code: string;
      steps: string[];
    };
    assert.equal(scripted.error_code, 'GW_ERR_${NOT_A_VAR}');
    assert.deepEqual(scripted.steps, ['connecting']);
  });

  await t.test('resolves a relative state_file against the config directory', async () => {
    const dir = await caseDir();
    const file = await writeConfig(dir, {
      state_file: 'run/state.json',
      platforms: { scripted: {} },
    });
    assert.equal(loadConfig(file, registry, {}).config.state_file, join(dir, 'run/state.json'));
  });

  await t.test(
    'reads a secret from ${VAR}, from token_file (relative to the config) and from $CREDENTIALS_DIRECTORY',
    async () => {
      const dir = await caseDir();
      const credentials = join(dir, 'credentials');
      await mkdir(credentials);
      await writeFile(join(credentials, 'bot-token'), 'from-credential\n');
      await writeFile(join(dir, 'token.txt'), 'from-file\n');
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ token: '${HGW_TOKEN}' }, 'from-env'],
        [{ token_file: 'token.txt' }, 'from-file'],
        [{ token_file: join(dir, 'token.txt') }, 'from-file'],
        [{ token_credential: 'bot-token' }, 'from-credential'],
      ];
      for (const [tokenKeys, expected] of cases) {
        const file = await writeConfig(dir, { platforms: { secretive: tokenKeys } });
        const env = { HGW_TOKEN: 'from-env', CREDENTIALS_DIRECTORY: credentials };
        const { config } = loadConfig(file, registry, env);
        const token = (config.platforms.secretive as unknown as { token: unknown }).token;
        assert.ok(token instanceof Secret, JSON.stringify(tokenKeys));
        assert.equal(token.reveal(), expected);
      }
    },
  );

  await t.test(
    'never shows a secret: JSON.stringify, util.inspect, String and a pino line',
    async () => {
      const dir = await caseDir();
      const file = await writeConfig(dir, { platforms: { secretive: { token: '${HGW_TOKEN}' } } });
      const loaded = loadConfig(file, registry, { HGW_TOKEN: SECRET_VALUE });
      const token = (loaded.config.platforms.secretive as unknown as { token: Secret }).token;
      assert.equal(token.reveal(), SECRET_VALUE);
      const shown = [
        JSON.stringify(loaded),
        inspect(loaded, { depth: null, showHidden: true }),
        inspect(token),
        String(token),
        `${String(token)}`,
        JSON.stringify({ nested: { deeper: [token] } }),
      ];
      const { log, raw } = captureLogger('trace');
      log.info(
        { config: loaded.config, credential: token, nested: { value: token } },
        `t=${String(token)}`,
      );
      log.error({ err: new Error(`failed with ${String(token)}`) }, 'x');
      shown.push(...raw);
      for (const text of shown) {
        assert.ok(!text.includes(SECRET_VALUE), `secret shown in: ${text}`);
      }
      assert.ok(raw.join('').includes('[redacted]'));
    },
  );
});

await test('locateConfig: --config > $HERMES_GATEWAY_CONFIG > $XDG_CONFIG_HOME', async (t) => {
  const env = { HERMES_GATEWAY_CONFIG: '/env/c.yaml', XDG_CONFIG_HOME: '/xdg', HOME: '/home/u' };

  await t.test('takes the flag first', () => {
    assert.equal(locateConfig('/flag/c.yaml', env), '/flag/c.yaml');
  });

  await t.test('then $HERMES_GATEWAY_CONFIG', () => {
    assert.equal(locateConfig(undefined, env), '/env/c.yaml');
  });

  await t.test('then $XDG_CONFIG_HOME/hermes-gateway/config.yaml, then ~/.config', () => {
    assert.equal(
      locateConfig(undefined, { XDG_CONFIG_HOME: '/xdg', HOME: '/home/u' }),
      '/xdg/hermes-gateway/config.yaml',
    );
    assert.equal(
      locateConfig(undefined, { HOME: '/home/u' }),
      '/home/u/.config/hermes-gateway/config.yaml',
    );
  });

  await t.test('makes a relative path absolute', () => {
    assert.equal(locateConfig('rel/c.yaml', {}), join(process.cwd(), 'rel/c.yaml'));
  });
});
