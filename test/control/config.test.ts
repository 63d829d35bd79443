import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { Secret } from '../../src/config/secret.js';
import { checkControlConfig, loadControlConfig, parseListen } from '../../src/control/config.js';
import { GatewayError } from '../../src/errors.js';
import { testRegistry } from '../support/test-registry.js';

function codeAndKey(fn: () => unknown): { code: string; key: unknown; message: string } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof GatewayError, String(err));
    return { code: err.code, key: err.details.key, message: err.message };
  }
  assert.fail('expected a GatewayError');
}

await test('control.listen', async (t) => {
  await t.test('loopback addresses and absolute socket paths are accepted', () => {
    assert.deepEqual(parseListen('127.0.0.1:8765'), { kind: 'tcp', host: '127.0.0.1', port: 8765 });
    assert.deepEqual(parseListen('127.3.2.1:1'), { kind: 'tcp', host: '127.3.2.1', port: 1 });
    assert.deepEqual(parseListen('[::1]:9000'), { kind: 'tcp', host: '::1', port: 9000 });
    assert.deepEqual(parseListen('localhost:80'), { kind: 'tcp', host: 'localhost', port: 80 });
    assert.deepEqual(parseListen('/run/user/1000/hermes.sock'), {
      kind: 'unix',
      path: '/run/user/1000/hermes.sock',
    });
    assert.deepEqual(parseListen('unix:/run/user/1000/h.sock'), {
      kind: 'unix',
      path: '/run/user/1000/h.sock',
    });
  });

  await t.test('anything reachable from the network, or malformed, is refused', () => {
    for (const bad of [
      '0.0.0.0:8765',
      '[::]:8765',
      '192.168.1.10:8765',
      'example.org:80',
      '127.0.0.1',
      '127.0.0.1:99999',
      '8765',
      'unix:relative.sock',
      '256.0.0.1:1',
    ]) {
      assert.equal(typeof parseListen(bad), 'string', bad);
    }
  });
});

await test('control config in the config file', async (t) => {
  const env = { HGW_CONTROL_TOKEN: 'tok-from-env', XDG_RUNTIME_DIR: '/run/user/4242' };
  const dir = await mkdtemp(join(tmpdir(), 'hgw-control-config-'));
  t.after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function file(name: string, yaml: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, `platforms:\n  scripted: {}\n${yaml}`);
    return path;
  }

  await t.test(
    'a non-loopback address is rejected at validation, naming control.listen',
    async () => {
      const path = await file(
        'wide.yaml',
        'control:\n  listen: 0.0.0.0:8765\n  token: ${HGW_CONTROL_TOKEN}\n',
      );
      const { code, key, message } = codeAndKey(() => loadConfig(path, testRegistry(), env));
      assert.equal(code, 'GW_ERR_CONFIG_INVALID');
      assert.equal(key, 'control.listen');
      assert.match(message, /control\.listen: .*not a loopback address/);
    },
  );

  await t.test('listen without a token is rejected, naming control.token', async () => {
    const path = await file('notoken.yaml', 'control:\n  listen: 127.0.0.1:8765\n');
    const { code, key } = codeAndKey(() => loadConfig(path, testRegistry(), env));
    assert.equal(code, 'GW_ERR_CONFIG_INVALID');
    assert.equal(key, 'control.token');
  });

  await t.test('an inline token is refused like every secret', async () => {
    const path = await file(
      'inline.yaml',
      'control:\n  listen: 127.0.0.1:8765\n  token: hunter2\n',
    );
    assert.equal(
      codeAndKey(() => loadConfig(path, testRegistry(), env)).code,
      'GW_ERR_CONFIG_SECRET_INLINE',
    );
  });

  await t.test(
    'token from the environment or token_file becomes a Secret; defaults apply',
    async () => {
      await writeFile(join(dir, 'token.txt'), 'tok-from-file\n');
      const path = await file(
        'ok.yaml',
        'control:\n  listen: "[::1]:8765"\n  token_file: token.txt\n',
      );
      const { config } = loadConfig(path, testRegistry(), env);
      assert.ok(config.control?.token instanceof Secret);
      assert.equal(config.control.token.reveal(), 'tok-from-file');
      assert.deepEqual(config.control.listen, { kind: 'tcp', host: '::1', port: 8765 });
      assert.equal(config.control.max_body_bytes, 65_536);
      assert.equal(config.control.request_timeout_ms, 10_000);
      assert.equal(config.control.send_timeout_ms, 30_000);
    },
  );

  await t.test('no control section: the API is off', async () => {
    const path = await file('off.yaml', '');
    assert.equal(loadConfig(path, testRegistry(), env).config.control, undefined);
  });

  await t.test('unknown keys under control are rejected', async () => {
    const path = await file(
      'unknown.yaml',
      'control:\n  listen: 127.0.0.1:1\n  token: ${HGW_CONTROL_TOKEN}\n  bind_all: true\n',
    );
    assert.equal(codeAndKey(() => loadConfig(path, testRegistry(), env)).key, 'control.bind_all');
  });

  await t.test('a unix socket must be under $XDG_RUNTIME_DIR', () => {
    const control = { listen: { kind: 'unix', path: '/tmp/hermes.sock' } } as const;
    const outside = codeAndKey(() => checkControlConfig(control as never, 'c.yaml', env));
    assert.equal(outside.code, 'GW_ERR_CONFIG_INVALID');
    assert.equal(outside.key, 'control.listen');
    const unset = codeAndKey(() => checkControlConfig(control as never, 'c.yaml', {}));
    assert.equal(unset.key, 'control.listen');
    const escape = { listen: { kind: 'unix', path: '/run/user/4242/../4243/h.sock' } } as const;
    assert.equal(
      codeAndKey(() => checkControlConfig(escape as never, 'c.yaml', env)).code,
      'GW_ERR_CONFIG_INVALID',
    );
    assert.doesNotThrow(() =>
      checkControlConfig(
        { listen: { kind: 'unix', path: '/run/user/4242/hermes/c.sock' } } as never,
        'c.yaml',
        env,
      ),
    );
  });

  await t.test(
    'loadControlConfig reads only the control section (platform secrets need not resolve)',
    async () => {
      const path = join(dir, 'send.yaml');
      await writeFile(
        path,
        'platforms:\n  secretive:\n    client_secret: ${NOT_SET_IN_THIS_SHELL}\ncontrol:\n  listen: /run/user/4242/h.sock\n  token: ${HGW_CONTROL_TOKEN}\n',
      );
      const control = loadControlConfig(path, env);
      assert.deepEqual(control.listen, { kind: 'unix', path: '/run/user/4242/h.sock' });
      assert.equal(control.token?.reveal(), 'tok-from-env');
      const off = await file('send-off.yaml', '');
      assert.equal(codeAndKey(() => loadControlConfig(off, env)).code, 'GW_ERR_CONTROL_DISABLED');
    },
  );
});
