/**
 * The broker keys (handler type nats, the worker's config) are strict like the rest: one way
 * to authenticate, every credential a secret (never inline), unknown keys named, exit 78.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { loadDocument } from '../../src/config/load.js';
import { Secret } from '../../src/config/secret.js';
import { workerConfigSchema } from '../../src/cli/worker.js';
import { DEFAULTS } from '../../src/handlers/nats/config.js';
import { PRODUCT_CLI, runGatewayCli, sandboxEnv } from '../support/spawn-gateway.js';

const ENV = { NATS_TOKEN: 'token-0123456789abcdef', NATS_PASSWORD: 'password-0123456789' };

await test('worker config', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hgw-nats-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  let n = 0;
  const load = async (doc: unknown, env: NodeJS.ProcessEnv = ENV) => {
    const file = join(dir, `w${++n}.yaml`);
    await writeFile(file, stringify(doc), { mode: 0o600 });
    return loadDocument(file, workerConfigSchema, env).config;
  };
  const rejects = async (doc: unknown, code: string, key: RegExp): Promise<void> => {
    await assert.rejects(load(doc), (err: { code?: string; message?: string }) => {
      assert.equal(err.code, code);
      assert.match(err.message ?? '', key);
      return true;
    });
  };

  await t.test('defaults come from one DEFAULTS object; secrets become Secrets', async () => {
    const config = await load({ broker: { token: '${NATS_TOKEN}' }, handler: { type: 'echo' } });
    assert.deepEqual(config.broker.servers, DEFAULTS.servers);
    assert.equal(config.broker.partitions, DEFAULTS.partitions);
    assert.equal(config.broker.ack_wait_ms, DEFAULTS.ackWaitMs);
    assert.ok(config.broker.token instanceof Secret);
    assert.equal(config.broker.token.reveal(), ENV.NATS_TOKEN);
    const creds = join(dir, 'hermes.creds');
    await writeFile(creds, '-----BEGIN NATS USER JWT-----\nx\n', { mode: 0o600 });
    const withCreds = await load({ broker: { creds_file: creds }, handler: { type: 'echo' } });
    assert.ok(withCreds.broker.creds instanceof Secret);
  });

  await t.test('unknown keys are named, at every level', async () => {
    await rejects(
      { broker: {}, handler: { type: 'echo' }, extra: 1 },
      'GW_ERR_CONFIG_INVALID',
      /extra: unknown key/,
    );
    await rejects(
      { broker: { partition: 4 }, handler: { type: 'echo' } },
      'GW_ERR_CONFIG_INVALID',
      /broker\.partition: unknown key/,
    );
  });

  await t.test('a worker cannot run the nats handler itself', async () => {
    await rejects({ broker: {}, handler: { type: 'nats' } }, 'GW_ERR_CONFIG_INVALID', /handler/);
  });

  await t.test('one way to authenticate; user and password together; never inline', async () => {
    await rejects(
      {
        broker: { token: '${NATS_TOKEN}', user: 'u', password: '${NATS_PASSWORD}' },
        handler: { type: 'echo' },
      },
      'GW_ERR_CONFIG_INVALID',
      /only one of token/,
    );
    await rejects(
      { broker: { user: 'u' }, handler: { type: 'echo' } },
      'GW_ERR_CONFIG_INVALID',
      /password: user and password go together/,
    );
    await rejects(
      { broker: { password: 'inline-password' }, handler: { type: 'echo' } },
      'GW_ERR_CONFIG_SECRET_INLINE',
      /broker\.password/,
    );
    await rejects(
      { broker: { token: 'inline-token' }, handler: { type: 'echo' } },
      'GW_ERR_CONFIG_SECRET_INLINE',
      /broker\.token/,
    );
  });

  await t.test('hermes-gateway worker exits 78 on a bad config, naming the key', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, stringify({ broker: { stream: 'has.dot' }, handler: { type: 'echo' } }));
    const result = await runGatewayCli(['worker', '--config', file], {
      cli: PRODUCT_CLI,
      env: sandboxEnv(dir),
      timeoutMs: 30_000,
    });
    assert.equal(result.code, 78);
    assert.ok(result.codes.includes('GW_ERR_CONFIG_INVALID'));
    assert.match(result.stdout, /broker\.stream/);
  });
});
