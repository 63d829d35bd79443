/**
 * Issue #16, item 1, on the QQ side: endpoints that repeat the credentials they received in
 * their error text. The real CLI (dist/src/cli/main.js) runs against the fake QQ server,
 * scripted to echo: gateway discovery and message sends answer 401 quoting `QQBot <access
 * token>`, the token endpoint quotes the request body, where a client secret with a quote and
 * a backslash is JSON-escaped. No form of any secret may reach stdout, stderr, the state file
 * or the output of `check --probe`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { FakeQQServerOptions } from '../../../src/fakes/qq/options.js';
import { FakeQQServer } from '../../../src/fakes/qq/server.js';
import { killAllChildren, sandboxEnv } from '../../support/spawn-gateway.js';
import { testConfig, type Json } from './harness.js';

const CLI = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));
const SECRET_ENV = 'HGW_TEST_QQ_SECRET';

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
  state: string;
}

interface Started {
  finished: Promise<Finished>;
  stop: () => void;
  stdout: () => string;
}

function start(dir: string, fake: FakeQQServer, args: string[], extra: Json = {}): Started {
  const statePath = join(dir, 'gateway_state.json');
  const configPath = join(dir, 'config.yaml');
  const config = {
    state_file: statePath,
    log_level: 'trace',
    shutdown_timeout_ms: 2_000,
    platforms: {
      qqbot: testConfig(fake, {
        client_secret: `\${${SECRET_ENV}}`,
        reconnect: { max_attempts: 2 },
        timeouts: { rest_ms: 2_000, token_ms: 2_000 },
        ...extra,
      }),
    },
  };
  let stdout = '';
  let stderr = '';
  const written = writeFile(configPath, stringify(config), { mode: 0o600 });
  let child: ReturnType<typeof spawn> | null = null;
  const finished = written.then(
    () =>
      new Promise<Finished>((resolve, reject) => {
        child = spawn(process.execPath, [CLI, ...args, '--config', configPath], {
          env: sandboxEnv(dir, { [SECRET_ENV]: fake.settings.clientSecret }),
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        const timer = setTimeout(() => {
          child?.kill('SIGKILL');
          reject(new Error(`CLI did not exit within 90 s\n${stdout}\n${stderr}`));
        }, 90_000);
        child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
        child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
        child.on('close', (code) => {
          clearTimeout(timer);
          const state = existsSync(statePath) ? readFileSync(statePath, 'utf8') : '';
          resolve({ code, stdout, stderr, state });
        });
      }),
  );
  return { finished, stop: () => child?.kill('SIGTERM'), stdout: () => stdout };
}

async function withFake(
  options: FakeQQServerOptions,
  body: (fake: FakeQQServer, dir: string) => Promise<void>,
): Promise<void> {
  const fake = await FakeQQServer.start({ heartbeatIntervalMs: 200, ...options });
  const dir = await mkdtemp(join(tmpdir(), 'hgw-qq-echo-'));
  try {
    await body(fake, dir);
  } finally {
    killAllChildren();
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Every form a secret may take in text: raw, JSON-escaped (once, twice), URL-encoded. */
function forms(secret: string): string[] {
  const once = JSON.stringify(secret).slice(1, -1);
  const twice = JSON.stringify(once).slice(1, -1);
  return [secret, once, twice, encodeURIComponent(secret)];
}

function assertNowhere(secrets: string[], outputs: Record<string, string>): void {
  for (const secret of secrets) {
    for (const form of forms(secret)) {
      for (const [where, text] of Object.entries(outputs)) {
        assert.ok(!text.includes(form), `a form of a secret (${form.slice(0, 4)}…) is in ${where}`);
      }
    }
  }
}

await test('item 1: gateway discovery answering 401 with the access token it received', async () => {
  await withFake({}, async (fake, dir) => {
    fake.setGatewayFault('unauthorized_echo');
    const run = await start(dir, fake, ['run']).finished;
    assert.notEqual(run.code, 0, run.stdout);
    assert.ok(fake.issuedTokens.length > 0, 'tokens were issued and used');
    assert.match(run.stdout, /GW_ERR_QQ_GATEWAY_FAILED/);
    assert.match(run.stdout, /invalid token: QQBot \[redacted\]/, 'the echo itself is logged');
    assert.match(run.state, /"last_error"/);
    assertNowhere([...fake.issuedTokens, fake.settings.clientSecret], {
      stdout: run.stdout,
      stderr: run.stderr,
      'state file': run.state,
    });
  });
});

await test('item 1: a send answering 401 with the access token it received', async () => {
  await withFake({}, async (fake, dir) => {
    const ready = fake.waitFor('ready', 60_000);
    const gateway = start(dir, fake, ['run']);
    await ready;
    fake.queueSendFaults({ kind: 'unauthorized_echo' }, { kind: 'unauthorized_echo' });
    const refused = fake.waitFor('send-request', 60_000, (r) => r.status === 401);
    fake.dispatchC2CMessage({ content: 'hello' });
    await refused;
    const deadline = Date.now() + 60_000;
    while (!gateway.stdout().includes('GW_ERR_QQ_SEND_UNAUTHORIZED')) {
      assert.ok(Date.now() < deadline, `no send failure logged:\n${gateway.stdout()}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    gateway.stop();
    const run = await gateway.finished;
    assert.equal(run.code, 0, run.stdout);
    assert.match(run.stdout, /invalid token: QQBot \[redacted\]/);
    assertNowhere([...fake.issuedTokens, fake.settings.clientSecret], {
      stdout: run.stdout,
      stderr: run.stderr,
      'state file': run.state,
    });
  });
});

await test('item 1: the token endpoint quoting a body whose secret has a quote and a backslash', async () => {
  const clientSecret = 'qq"se\\cret-7d1e0b';
  await withFake({ clientSecret }, async (fake, dir) => {
    fake.setTokenFault('echo_body');
    const run = await start(dir, fake, ['run']).finished;
    assert.equal(run.code, 78, run.stdout);
    assert.match(run.state, /GW_ERR_QQ_CREDENTIALS_REJECTED/);
    const probe = await start(dir, fake, ['check', '--probe']).finished;
    assert.equal(probe.code, 78, probe.stderr);
    assert.match(probe.stderr, /GW_ERR_QQ_CREDENTIALS_REJECTED/);
    assert.match(probe.stderr, /invalid appid or secret in/, 'the echo itself is reported');
    const outputs = {
      'run stdout': run.stdout,
      'run stderr': run.stderr,
      'state file': run.state,
      'check stdout': probe.stdout,
      'check stderr': probe.stderr,
    };
    assertNowhere([clientSecret], outputs);
    for (const [where, text] of Object.entries(outputs)) {
      assert.ok(!text.includes('cret-7d1e0b'), `a piece of the secret is in ${where}`);
    }
  });
});
