/**
 * End to end: the built CLI (dist/src/cli/main.js, where telegram is registered) spawned
 * against the fake Bot API in this test process. Asserts the exit code, the state file the
 * child wrote and its log lines, and that the token appears in none of them.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { StateDocument } from '../../../src/state/schema.js';
import { FakeTelegramServer, TEXTS } from '../../../src/fakes/telegram/server.js';
import { sandboxEnv } from '../../support/spawn-gateway.js';
import type { Json } from './harness.js';

const CLI = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));
const TOKEN_ENV = 'HGW_TEST_TG_TOKEN';

const children = new Set<ChildProcess>();
after(() => {
  for (const child of children) child.kill('SIGKILL');
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  state: StateDocument | null;
  lines: Array<Record<string, unknown>>;
  elapsedMs: number;
}

/** Writes a config for `fake` and spawns `hermes-gateway run`; `telegram` overrides keys. */
async function spawnCli(
  dir: string,
  fake: FakeTelegramServer,
  telegram: Json = {},
  timeoutMs = 15_000,
): Promise<{ child: ChildProcess; done: Promise<Run>; statePath: string }> {
  const statePath = join(dir, 'gateway_state.json');
  const config = {
    state_file: statePath,
    log_level: 'debug',
    shutdown_timeout_ms: 2_000,
    platforms: {
      telegram: {
        enabled: true,
        token: `\${${TOKEN_ENV}}`,
        api_base: fake.apiBase,
        polling: { timeout_s: 1 },
        reconnect: { backoff_ms: [20, 40], max_attempts: 3, healthy_after_ms: 10_000 },
        timeouts: { rest_ms: 1_000, poll_slack_ms: 500 },
        send: { private_interval_ms: 0, group_interval_ms: 0, global_interval_ms: 0 },
        jitter: false,
        ...telegram,
      },
    },
  };
  const configPath = join(dir, 'config.yaml');
  await writeFile(configPath, stringify(config), { mode: 0o600 });
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, 'run', '--config', configPath], {
    env: sandboxEnv(dir, { [TOKEN_ENV]: fake.token }),
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
      clearTimeout(timer);
      children.delete(child);
      const state = existsSync(statePath)
        ? (JSON.parse(readFileSync(statePath, 'utf8')) as StateDocument)
        : null;
      const lines = stdout
        .split('\n')
        .map((l) => l.replace(/^<\d>/, ''))
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, stdout, stderr, state, lines, elapsedMs: Date.now() - started });
    });
  });
  return { child, done, statePath };
}

async function withFake(
  body: (fake: FakeTelegramServer, dir: string) => Promise<void>,
): Promise<void> {
  const fake = await FakeTelegramServer.start();
  const dir = await mkdtemp(join(tmpdir(), 'hgw-tg-cli-'));
  try {
    await body(fake, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await fake.close();
  }
}

/** The token, and its secret half alone, appear nowhere an operator or a log reader could see. */
function assertNoToken(fake: FakeTelegramServer, run: Run): void {
  const secretHalf = fake.token.split(':')[1]!;
  for (const [where, text] of [
    ['stdout', run.stdout],
    ['stderr', run.stderr],
    ['state file', JSON.stringify(run.state)],
  ] as const) {
    assert.ok(!text.includes(secretHalf), `the token is not in ${where}`);
  }
}

function waitForState(
  path: string,
  predicate: (s: StateDocument) => boolean,
  what: string,
  timeoutMs = 8_000,
): Promise<StateDocument> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      try {
        const doc = JSON.parse(readFileSync(path, 'utf8')) as StateDocument;
        if (predicate(doc)) {
          resolve(doc);
          return;
        }
      } catch {
        // not written yet, or mid-rename
      }
      if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(check, 10);
    };
    check();
  });
}

await test('CLI: token rejected (401, the platform text echoing the token) → exit 78, UNAUTHORIZED persisted, the token nowhere', async () => {
  await withFake(async (fake, dir) => {
    // A platform text (or a proxy) that repeats the URL must still not leak the token.
    fake.fault(
      'getMe',
      FakeTelegramServer.error(
        401,
        `Unauthorized: bad token ${fake.token} /bot${fake.token}/getMe`,
      ),
    );
    const { done } = await spawnCli(dir, fake);
    const run = await done;
    assert.equal(run.code, 78);
    assert.equal(run.state?.gateway.state, 'fatal');
    assert.equal(run.state?.platforms.telegram?.state, 'fatal');
    assert.equal(run.state?.platforms.telegram?.last_error?.code, 'GW_ERR_TELEGRAM_UNAUTHORIZED');
    const fatal = run.lines.find(
      (l) => l.code === 'GW_ERR_TELEGRAM_UNAUTHORIZED' && l.level === 50,
    );
    assert.ok(fatal, 'the fatal is logged at error with its code');
    assertNoToken(fake, run);
  });
});

await test("CLI: the original bug's twin — every poll fails → RECONNECT_EXHAUSTED persisted, exit 1 within budget × steps", async () => {
  await withFake(async (fake, dir) => {
    fake.faultAlways('getUpdates', FakeTelegramServer.error(502, TEXTS.badGateway));
    const { done } = await spawnCli(dir, fake);
    const run = await done;
    assert.equal(run.code, 1);
    assert.equal(run.state?.gateway.state, 'fatal');
    assert.equal(run.state?.gateway.exit_code, 1);
    assert.equal(
      run.state?.platforms.telegram?.last_error?.code,
      'GW_ERR_TELEGRAM_RECONNECT_EXHAUSTED',
    );
    assert.equal(fake.polls, 4, 'max_attempts (3) + 1 polls');
    // 20 + 40 + 40 ms of backoff; the rest is process start-up on a loaded machine.
    assert.ok(run.elapsedMs < 10_000, `exited after ${run.elapsedMs} ms`);
    assertNoToken(fake, run);
  });
});

await test('CLI: a webhook is set and delete_webhook_on_start is false → exit 78 WEBHOOK_ACTIVE', async () => {
  await withFake(async (fake, dir) => {
    fake.setWebhookState('https://example.invalid/hook');
    const run = await (await spawnCli(dir, fake)).done;
    assert.equal(run.code, 78);
    assert.equal(run.state?.platforms.telegram?.last_error?.code, 'GW_ERR_TELEGRAM_WEBHOOK_ACTIVE');
  });
});

await test('CLI: token revoked while running → exit 78 UNAUTHORIZED', async () => {
  await withFake(async (fake, dir) => {
    const { done, statePath } = await spawnCli(dir, fake);
    await waitForState(statePath, (s) => s.platforms.telegram?.state === 'connected', 'connected');
    fake.revokeToken();
    const run = await done;
    assert.equal(run.code, 78);
    assert.equal(run.state?.platforms.telegram?.last_error?.code, 'GW_ERR_TELEGRAM_UNAUTHORIZED');
    assertNoToken(fake, run);
  });
});

await test('CLI: a message round trip through the echo handler, then SIGTERM → exit 0, stopped, the token nowhere', async () => {
  await withFake(async (fake, dir) => {
    const { child, done, statePath } = await spawnCli(dir, fake);
    await waitForState(statePath, (s) => s.platforms.telegram?.state === 'connected', 'connected');
    const sent = fake.waitFor<{ text: string; replyTo: number | null }>('sent', 8_000);
    const { messageId } = fake.message('ping from a user');
    const reply = await sent;
    assert.match(reply.text, /ping from a user/);
    assert.equal(reply.replyTo, messageId);
    child.kill('SIGTERM');
    const run = await done;
    assert.equal(run.code, 0);
    assert.equal(run.state?.gateway.state, 'stopped');
    assert.equal(run.state?.platforms.telegram?.state, 'stopped');
    assert.equal(fake.pendingUpdates, 0);
    assertNoToken(fake, run);
  });
});
