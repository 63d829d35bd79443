/**
 * End to end: the real CLI (dist/src/cli/main.js, where qqbot is registered) spawned against
 * the fake QQ server running in this test process. Asserts the process exit code, the state
 * file the child wrote, and its log lines; and that the secret appears in none of them.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { StateDocument } from '../../../src/state/schema.js';
import type { FakeQQServerOptions } from '../../../src/fakes/qq/options.js';
import { FakeQQServer } from '../../../src/fakes/qq/server.js';
import { runGatewayCli, sandboxEnv, stderrCode } from '../../support/spawn-gateway.js';
import { controlRequest } from '../../../src/control/client.js';
import type { Json } from './harness.js';
import { qqbotInstanceFor } from '../../support/qq-instance.js';

const CLI = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));
const SECRET_ENV = 'HGW_TEST_QQ_SECRET';

const children = new Set<ChildProcess>();
after(() => {
  for (const child of children) child.kill('SIGKILL');
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  state: StateDocument | null;
  exitedAt: number;
  lines: Array<Record<string, unknown>>;
}

interface Child {
  process: ChildProcess;
  done: Promise<Run>;
}

/** Writes a config for `fake` and spawns `hermes-gateway <args>`; the state file is in `dir`. */
async function spawnCli(
  dir: string,
  fake: FakeQQServer,
  qqbot: Json,
  args: string[] = ['run'],
  secret = fake.settings.clientSecret,
  /** Top-level config keys merged over the defaults below. */
  top: Json = {},
  timeoutMs = 15_000,
  more: { config?: Json; env?: Record<string, string> } = {},
): Promise<Child> {
  const statePath = join(dir, 'gateway_state.json');
  const config = {
    state_file: statePath,
    log_level: 'debug',
    shutdown_timeout_ms: 2_000,
    ...top,
    platforms: {
      qqbot: {
        enabled: true,
        ...qqbotInstanceFor(fake, SECRET_ENV),
        reconnect: { backoff_ms: [20, 40], max_attempts: 3, healthy_after_ms: 10_000 },
        timeouts: { rest_ms: 1_000, token_ms: 1_000, close_ms: 200 },
        jitter: false,
        ...qqbot,
      },
    },
    ...more.config,
  };
  const configPath = join(dir, 'config.yaml');
  await writeFile(configPath, stringify(config), { mode: 0o600 });
  const child = spawn(process.execPath, [CLI, ...args, '--config', configPath], {
    env: sandboxEnv(dir, { [SECRET_ENV]: secret, ...more.env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const done = new Promise<Run>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`CLI did not exit within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      const exitedAt = Date.now();
      clearTimeout(timer);
      children.delete(child);
      const state = existsSync(statePath)
        ? (JSON.parse(readFileSync(statePath, 'utf8')) as StateDocument)
        : null;
      const lines = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, stdout, stderr, state, exitedAt, lines });
    });
  });
  return { process: child, done };
}

async function withFake(
  options: FakeQQServerOptions,
  body: (fake: FakeQQServer, dir: string) => Promise<void>,
): Promise<void> {
  const fake = await FakeQQServer.start({ heartbeatIntervalMs: 200, ...options });
  const dir = await mkdtemp(join(tmpdir(), 'hgw-qq-cli-'));
  try {
    await body(fake, dir);
  } finally {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await test('CLI: rejected credentials → exit 78, the platform text logged, the secret nowhere', async () => {
  await withFake({}, async (fake, dir) => {
    const wrong = 'wrong-secret-7f3a9c1e';
    const { done } = await spawnCli(dir, fake, {}, ['run'], wrong);
    const run = await done;
    assert.equal(run.code, 78);
    assert.equal(run.state?.gateway.state, 'fatal');
    assert.equal(run.state?.gateway.exit_code, 78);
    assert.equal(run.state?.platforms.qqbot?.state, 'fatal');
    assert.equal(run.state?.platforms.qqbot?.last_error?.code, 'GW_ERR_QQ_CREDENTIALS_REJECTED');
    const fatal = run.lines.find(
      (l) => l.code === 'GW_ERR_QQ_CREDENTIALS_REJECTED' && l.level === 50,
    );
    assert.ok(fatal, 'the fatal is logged at error with its code');
    assert.match(String(fatal.msg), /invalid appid or secret/);
    const errors = run.lines.filter((l) => typeof l.level === 'number' && l.level >= 50);
    assert.equal(errors.length, 1, `one fatal, one error line: ${JSON.stringify(errors)}`);
    for (const [where, text] of [
      ['stdout', run.stdout],
      ['stderr', run.stderr],
      ['state file', JSON.stringify(run.state)],
    ] as const) {
      assert.ok(!text.includes(wrong), `the secret is not in ${where}`);
    }
  });
});

await test('CLI: the original bug, every reconnect refused → exit 1, fatal GW_ERR_QQ_RECONNECT_EXHAUSTED, within budget × steps', async () => {
  await withFake({}, async (fake, dir) => {
    const ready = fake.waitFor('ready', 10_000);
    const { done } = await spawnCli(dir, fake, {});
    await ready;
    fake.refuseConnections();
    const closedAt = Date.now();
    fake.closeClient(4009);
    const run = await done;
    assert.equal(run.code, 1);
    assert.equal(run.state?.gateway.state, 'fatal');
    assert.equal(run.state?.gateway.exit_code, 1);
    assert.equal(run.state?.platforms.qqbot?.state, 'fatal');
    assert.equal(run.state?.platforms.qqbot?.last_error?.code, 'GW_ERR_QQ_RECONNECT_EXHAUSTED');
    assert.equal(run.state?.platforms.qqbot?.reconnect_attempt, 3);
    assert.equal(fake.refusedUpgrades.length, 3, 'one refusal per reconnect attempt');
    // Budget × steps: 20 + 40 + 40 ms of backoff; a generous bound for process exit.
    assert.ok(
      run.exitedAt - closedAt < 3_000,
      `exit ${run.exitedAt - closedAt} ms after the close`,
    );
    const sinceLastRefusal = run.exitedAt - fake.refusedUpgrades.at(-1)!.at;
    assert.ok(sinceLastRefusal < 1_000, `exit ${sinceLastRefusal} ms after the last refusal`);
    assert.ok(run.lines.some((l) => l.code === 'GW_ERR_QQ_RECONNECT_EXHAUSTED' && l.level === 50));
    const errors = run.lines.filter((l) => typeof l.level === 'number' && l.level >= 50);
    assert.equal(errors.length, 1, `one fatal, one error line: ${JSON.stringify(errors)}`);
  });
});

// Written by hand from the fact sheet (§5: shard, sharding, version, intents, intents not
// authorized, delisted, banned), never from CLOSE_CODE_TABLE: the table is what is under test.
const FATAL_CLOSES: ReadonlyArray<readonly [number, string]> = [
  [4010, 'invalid shard'],
  [4011, 'sharding required'],
  [4012, 'invalid API version'],
  [4013, 'invalid intents'],
  [4014, 'intents not authorized'],
  [4914, 'bot offline or delisted'],
  [4915, 'bot banned'],
];

for (const [code, meaning] of FATAL_CLOSES) {
  const errorCode = `GW_ERR_QQ_CLOSE_${code}`;
  await test(`CLI: close ${code} (${meaning}) → exit 78, fatal ${errorCode}`, async () => {
    await withFake({}, async (fake, dir) => {
      const ready = fake.waitFor('ready', 10_000);
      const { done } = await spawnCli(dir, fake, {});
      await ready;
      // A gateway that reconnects instead of exiting fails here at once, not at the timeout.
      const reconnected = fake.waitFor('connection', 15_000).then(
        (c) => ({ reconnected: c.connectionId }),
        () => null,
      );
      fake.closeClient(code, 'scripted');
      const first = await Promise.race([done, reconnected]);
      if (first !== null && 'reconnected' in first) {
        assert.fail(`connection ${first.reconnected} opened after close ${code}: not fatal`);
      }
      const run = await done;
      assert.equal(run.code, 78);
      assert.equal(run.state?.gateway.state, 'fatal');
      assert.equal(run.state?.gateway.exit_code, 78);
      assert.equal(run.state?.platforms.qqbot?.state, 'fatal');
      assert.equal(run.state?.platforms.qqbot?.last_error?.code, errorCode);
      assert.equal(run.state?.platforms.qqbot?.last_error?.retryable, false);
      assert.equal(fake.connections.length, 1, 'no reconnect');
      const errors = run.lines.filter((l) => typeof l.level === 'number' && l.level >= 50);
      assert.deepEqual(
        errors.map((l) => l.code),
        [errorCode],
        'one fatal, one error line',
      );
    });
  });
}

await test('CLI: SIGTERM while connected → exit 0, stopped', async () => {
  await withFake({}, async (fake, dir) => {
    const ready = fake.waitFor('ready', 10_000);
    const child = await spawnCli(dir, fake, {});
    await ready;
    child.process.kill('SIGTERM');
    const run = await child.done;
    assert.equal(run.code, 0);
    assert.equal(run.state?.gateway.state, 'stopped');
    assert.equal(run.state?.platforms.qqbot?.state, 'stopped');
  });
});

await test('CLI (the real entry point): an adapter that cannot finish its stop still lets the process exit, stopped, exit 0', async () => {
  // A peer that never answers the close handshake: the adapter's close waits close_ms (60 s),
  // far beyond shutdown_timeout_ms. Nothing in the adapter can be aborted faster than that,
  // so only the runner's forced stop and main.js's process.exit end the process.
  const shutdownTimeoutMs = 300;
  await withFake({}, async (fake, dir) => {
    const ready = fake.waitFor('ready', 10_000);
    const child = await spawnCli(
      dir,
      fake,
      { timeouts: { rest_ms: 1_000, token_ms: 1_000, close_ms: 60_000 } },
      ['run'],
      fake.settings.clientSecret,
      { shutdown_timeout_ms: shutdownTimeoutMs },
    );
    await ready;
    fake.goHalfOpen();
    const sentAt = Date.now();
    child.process.kill('SIGTERM');
    const run = await child.done;
    const tookMs = run.exitedAt - sentAt;
    assert.equal(run.code, 0, run.stderr);
    assert.ok(tookMs >= shutdownTimeoutMs, `exited after ${tookMs} ms, before the deadline`);
    assert.ok(tookMs < shutdownTimeoutMs + 3_000, `exited after ${tookMs} ms`);
    assert.equal(run.state?.pid, child.process.pid, "the final state is this process's");
    assert.equal(run.state?.gateway.state, 'stopped');
    assert.equal(run.state?.gateway.exit_code, 0);
    assert.equal(run.state?.platforms.qqbot?.state, 'stopped');
    assert.equal(run.state?.platforms.qqbot?.last_error?.code, 'GW_ERR_STOP_TIMEOUT');
    assert.ok(run.lines.some((l) => l.code === 'GW_ERR_STOP_TIMEOUT' && l.level === 50));
  });
});

await test('CLI: check --probe accepts good credentials (exit 0) and rejects bad ones (exit 78)', async () => {
  await withFake({}, async (fake, dir) => {
    const good = await (await spawnCli(dir, fake, {}, ['check', '--probe'])).done;
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /qqbot: credentials accepted/);
    const wrong = 'another-wrong-secret';
    const bad = await (await spawnCli(dir, fake, {}, ['check', '--probe'], wrong)).done;
    assert.equal(bad.code, 78);
    assert.match(bad.stderr, /GW_ERR_QQ_CREDENTIALS_REJECTED/);
    assert.ok(!bad.stderr.includes(wrong) && !bad.stdout.includes(wrong));
  });
});

await test('CLI: a redelivered message is answered once, the copy dropped by the pipeline', async () => {
  await withFake({}, async (fake, dir) => {
    const ready = fake.waitFor('ready', 10_000);
    const child = await spawnCli(dir, fake, {});
    await ready;
    const first = fake.dispatchC2CMessage({ content: 'once', id: 'ROBOT1.0_redelivered' });
    fake.dispatch('C2C_MESSAGE_CREATE', first.d); // the same message again, as after a resume
    const markerReply = fake.waitFor(
      'message-sent',
      10_000,
      (m) => (m.body as { content?: string }).content === 'marker',
    );
    fake.dispatchC2CMessage({ content: 'marker' });
    await markerReply;
    const replies = fake.sentMessages.map((m) => (m.body as { msg_id?: string }).msg_id);
    assert.equal(replies.filter((id) => id === 'ROBOT1.0_redelivered').length, 1);
    child.process.kill('SIGTERM');
    const run = await child.done;
    assert.equal(run.code, 0);
    const dropped = run.lines.filter((l) => l.msg === 'duplicate event dropped');
    assert.deepEqual(
      dropped.map((l) => l.event_id),
      ['qqbot:ROBOT1.0_redelivered'],
    );
  });
});

await test('CLI: chat ids the platform cannot have are refused by /send and `send` before any request', async () => {
  await withFake({ allowActiveSends: true }, async (fake, dir) => {
    const runtime = join(dir, 'runtime');
    await mkdir(runtime, { recursive: true, mode: 0o700 });
    const token = 'qq-cli-control-token-51c2';
    const socket = join(runtime, 'control.sock');
    const env = { XDG_RUNTIME_DIR: runtime, HGW_CONTROL_TOKEN: token };
    const ready = fake.waitFor('ready', 10_000);
    const child = await spawnCli(dir, fake, {}, ['run'], undefined, {}, 30_000, {
      config: { control: { listen: socket, token: '${HGW_CONTROL_TOKEN}' } },
      env,
    });
    await ready;
    const listen = { kind: 'unix' as const, path: socket };
    const deadline = Date.now() + 10_000;
    while (!existsSync(socket)) {
      if (Date.now() > deadline) assert.fail('the control socket did not appear within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const id of ['..', 'a/b', 'x?y', 'x#y', 'a\nb']) {
      const response = await controlRequest({
        listen,
        method: 'POST',
        path: '/send',
        token,
        body: { platform: 'qqbot', chat: { type: 'group', id }, text: 'x' },
        timeoutMs: 5_000,
      });
      assert.equal(response.status, 400, JSON.stringify(id));
      const error = (response.json as { error: { code: string } }).error;
      assert.equal(error.code, 'GW_ERR_QQ_CHAT_ID_INVALID');
    }
    const cliEnv = sandboxEnv(dir, env);
    const configPath = join(dir, 'config.yaml');
    const refused = await runGatewayCli(['send', '--config', configPath, 'qqbot:c2c:..', 'x'], {
      env: cliEnv,
    });
    assert.equal(refused.code, 1, refused.stderr);
    assert.equal(stderrCode(refused.stderr), 'GW_ERR_QQ_CHAT_ID_INVALID');
    assert.equal(fake.sendRequests.length, 0);
    // A good id still goes out, as one encoded segment.
    const sent = await runGatewayCli(['send', '--config', configPath, 'qqbot:c2c:U 1', 'hi'], {
      env: cliEnv,
    });
    assert.equal(sent.code, 0, sent.stderr);
    assert.deepEqual(
      fake.sendRequests.map((r) => r.path),
      ['/v2/users/U%201/messages'],
    );
    child.process.kill('SIGTERM');
    assert.equal((await child.done).code, 0);
  });
});

await test('CLI: check --probe exits 1 when it cannot tell (token endpoint 5xx, timeout, malformed, unreachable)', async () => {
  await withFake({}, async (fake, dir) => {
    for (const fault of ['http500', 'timeout', 'malformed_json'] as const) {
      fake.setTokenFault(fault);
      const run = await (await spawnCli(dir, fake, {}, ['check', '--probe'])).done;
      assert.equal(run.code, 1, `${fault}: ${run.stderr}`);
      assert.match(run.stderr, /^error GW_ERR_QQ_TOKEN_FAILED:/m, fault);
    }
    fake.setTokenFault('none', 0);
    // Nothing listens there any more: connection refused.
    const closed = await FakeQQServer.start({});
    const unreachable = closed.tokenUrl;
    await closed.close();
    const run = await (
      await spawnCli(dir, fake, { token_url: unreachable }, ['check', '--probe'])
    ).done;
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /^error GW_ERR_QQ_TOKEN_FAILED:/m);
  });
});
