/**
 * End to end: the built CLI (dist/src/cli/main.js, where discord is registered) spawned
 * against the fake Discord running in this test process, with the echo handler and the
 * delivery store. Asserts exit codes, the state file and log lines, that the token appears
 * nowhere, and the zero-loss restart: a planned stop closes with 4000, messages sent while the
 * gateway is down are replayed to the next process by a Resume at the persisted point and
 * answered exactly once.
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
import { FakeDiscordServer, type FakeDiscordOptions } from '../../../src/fakes/discord/index.js';
import type { StateDocument } from '../../../src/state/schema.js';
import { sandboxEnv } from '../../support/spawn-gateway.js';
import type { Json } from '../qqbot/harness.js';

const CLI = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));
const TOKEN_ENV = 'HGW_TEST_DISCORD_TOKEN';

const children = new Set<ChildProcess>();
after(() => {
  for (const child of children) child.kill('SIGKILL');
});

interface Run {
  code: number | null;
  stdout: string;
  state: StateDocument | null;
  lines: Array<Record<string, unknown>>;
}

function spawnCli(
  dir: string,
  fake: FakeDiscordServer,
  discord: Json = {},
  token = fake.settings.token,
  timeoutMs = 20_000,
): { process: ChildProcess; done: Promise<Run>; lines: () => Array<Record<string, unknown>> } {
  const statePath = join(dir, 'gateway_state.json');
  const configPath = join(dir, 'config.yaml');
  const config = {
    state_file: statePath,
    log_level: 'debug',
    shutdown_timeout_ms: 2_000,
    platforms: {
      discord: {
        token: `\${${TOKEN_ENV}}`,
        api_base: fake.apiBase,
        reconnect: {
          backoff_ms: [20, 40],
          max_attempts: 3,
          invalid_session_wait_ms: [10, 20],
          identify_interval_ms: 60,
        },
        timeouts: { rest_ms: 1_000, close_ms: 200 },
        jitter: false,
        ...discord,
      },
    },
  };
  const ready = writeFile(configPath, stringify(config), { mode: 0o600 });
  let stdout = '';
  let child: ChildProcess | null = null;
  const parse = (): Array<Record<string, unknown>> =>
    stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const done = ready.then(
    () =>
      new Promise<Run>((resolve, reject) => {
        const proc = spawn(process.execPath, [CLI, 'run', '--config', configPath], {
          env: sandboxEnv(dir, { [TOKEN_ENV]: token }),
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        child = proc;
        children.add(proc);
        proc.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
        proc.stderr.setEncoding('utf8').on('data', (c: string) => (stdout += c));
        const timer = setTimeout(() => {
          proc.kill('SIGKILL');
          reject(new Error(`CLI did not exit within ${timeoutMs} ms\n${stdout}`));
        }, timeoutMs);
        proc.on('close', (code) => {
          clearTimeout(timer);
          children.delete(proc);
          const state = existsSync(statePath)
            ? (JSON.parse(readFileSync(statePath, 'utf8')) as StateDocument)
            : null;
          resolve({ code, stdout, state, lines: parse() });
        });
      }),
  );
  return {
    get process(): ChildProcess {
      if (child === null) throw new Error('not spawned yet');
      return child;
    },
    done,
    lines: parse,
  };
}

async function withFake(
  options: FakeDiscordOptions,
  body: (fake: FakeDiscordServer, dir: string) => Promise<void>,
): Promise<void> {
  const fake = await FakeDiscordServer.start({
    heartbeatIntervalMs: 200,
    identifyWindowMs: 50,
    ...options,
  });
  const dir = await mkdtemp(join(tmpdir(), 'hgw-discord-cli-'));
  try {
    await body(fake, dir);
  } finally {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function assertNoToken(run: Run, token: string): void {
  assert.ok(!run.stdout.includes(token), 'the token is not in the output');
  assert.ok(!JSON.stringify(run.state).includes(token), 'the token is not in the state file');
}

await test('CLI: echo over Discord, then SIGTERM → exit 0, closed with 4000', async () => {
  await withFake({}, async (fake, dir) => {
    const child = spawnCli(dir, fake);
    await fake.until(() => fake.liveSessions() === 1, 'a session', 10_000);
    fake.dispatchMessage({ content: 'echo me', mentionsBot: true });
    await fake.until(() => fake.sent.length === 1, 'the echo', 10_000);
    assert.equal(fake.sent[0]!.body.content, 'echo me');
    assert.equal(fake.sent[0]!.body.enforce_nonce, true);
    child.process.kill('SIGTERM');
    const run = await child.done;
    assert.equal(run.code, 0);
    assert.equal(run.state?.platforms.discord?.state, 'stopped');
    assert.deepEqual(fake.records.clientCloses, [4000]);
    assertNoToken(run, fake.settings.token);
    fake.assertNoViolations();
  });
});

await test('CLI: the original bug, every reconnect refused → exit 1, fatal GW_ERR_DISCORD_RECONNECT_EXHAUSTED', async () => {
  await withFake({}, async (fake, dir) => {
    const child = spawnCli(dir, fake);
    await fake.until(() => fake.liveSessions() === 1, 'a session', 10_000);
    fake.refuseConnections(true);
    fake.terminateClient();
    const run = await child.done;
    assert.equal(run.code, 1);
    assert.equal(run.state?.gateway.state, 'fatal');
    assert.equal(run.state?.platforms.discord?.state, 'fatal');
    assert.equal(
      run.state?.platforms.discord?.last_error?.code,
      'GW_ERR_DISCORD_RECONNECT_EXHAUSTED',
    );
    const fatal = run.lines.find(
      (l) => l.code === 'GW_ERR_DISCORD_RECONNECT_EXHAUSTED' && l.level === 50,
    );
    assert.ok(fatal, 'the fatal is logged at error with its code');
  });
});

await test('CLI: 4014 → exit 78 naming the Developer Portal toggle; the token nowhere', async () => {
  await withFake({ allowedPrivilegedIntents: 0 }, async (fake, dir) => {
    const run = await spawnCli(dir, fake).done;
    assert.equal(run.code, 78);
    assert.equal(run.state?.platforms.discord?.last_error?.code, 'GW_ERR_DISCORD_CLOSE_4014');
    assert.match(run.state?.platforms.discord?.last_error?.message ?? '', /Developer Portal/);
    assertNoToken(run, fake.settings.token);
  });
});

await test('CLI: a wrong token → exit 78 GW_ERR_DISCORD_UNAUTHORIZED, the wrong token nowhere', async () => {
  await withFake({}, async (fake, dir) => {
    const wrong = 'MTIzNDU2Nzg5MDEyMzQ1Njc4.wrongy.secret-never-logged-7f3a9c1e';
    const run = await spawnCli(dir, fake, {}, wrong).done;
    assert.equal(run.code, 78);
    assert.equal(run.state?.platforms.discord?.last_error?.code, 'GW_ERR_DISCORD_UNAUTHORIZED');
    assertNoToken(run, wrong);
  });
});

await test('CLI zero-loss: SIGTERM, messages during the gap, restart → Resume at the persisted point, each answered once', async () => {
  await withFake({}, async (fake, dir) => {
    const first = spawnCli(dir, fake);
    await fake.until(() => fake.liveSessions() === 1, 'a session', 10_000);
    for (let i = 0; i < 3; i++) fake.dispatchMessage({ content: `before ${i}`, mentionsBot: true });
    await fake.until(() => fake.sent.length === 3, 'three echoes', 10_000);
    first.process.kill('SIGTERM');
    assert.equal((await first.done).code, 0);
    assert.deepEqual(fake.records.clientCloses, [4000], 'a planned stop keeps the session');
    // The gap: Discord keeps the session and queues what arrives.
    for (let i = 0; i < 4; i++) fake.dispatchMessage({ content: `gap ${i}`, mentionsBot: true });

    const second = spawnCli(dir, fake);
    await fake.until(() => fake.sent.length === 7, 'the gap answered', 10_000);
    assert.equal(fake.acceptedIdentifies, 1, 'no new session');
    assert.equal(fake.acceptedResumes, 1);
    assert.equal(fake.records.resumes[0]!.path, '/resume');
    // A little more time for any duplicate to show up.
    fake.dispatchMessage({ content: 'after', mentionsBot: true });
    await fake.until(() => fake.sent.length === 8, 'the live message', 10_000);
    second.process.kill('SIGTERM');
    const run = await second.done;
    assert.equal(run.code, 0);
    const contents = fake.sent.map((m) => m.body.content);
    assert.deepEqual(contents, [
      'before 0',
      'before 1',
      'before 2',
      'gap 0',
      'gap 1',
      'gap 2',
      'gap 3',
      'after',
    ]);
    assert.ok(
      run.lines.some((l) => l.msg === 'resuming the previous process session at its handled seq'),
    );
    fake.assertNoViolations();
  });
});

await test('CLI zero-loss: SIGKILL mid-stream, restart → every message answered exactly once', async () => {
  await withFake({ bucketLimit: { count: 1_000, windowMs: 1_000 } }, async (fake, dir) => {
    const first = spawnCli(dir, fake);
    await fake.until(() => fake.liveSessions() === 1, 'a session', 10_000);
    const expected: string[] = [];
    for (let i = 0; i < 30; i++) {
      expected.push(`m${i}`);
      fake.dispatchMessage({
        content: `m${i}`,
        mentionsBot: true,
        channelId: `3100000000000000${10 + (i % 5)}`,
      });
    }
    await fake.until(() => fake.sent.length >= 3, 'the first echoes', 10_000);
    first.process.kill('SIGKILL');
    await first.done;
    for (let i = 30; i < 35; i++) {
      expected.push(`m${i}`);
      fake.dispatchMessage({ content: `m${i}`, mentionsBot: true });
    }
    const second = spawnCli(dir, fake);
    const answered = (): Set<unknown> => new Set(fake.sent.map((m) => m.body.content));
    await fake.until(() => answered().size === expected.length, 'every message answered', 15_000);
    second.process.kill('SIGTERM');
    assert.equal((await second.done).code, 0);
    const contents = fake.sent.map((m) => m.body.content as string);
    assert.equal(contents.length, expected.length, `no duplicate: ${contents.join(',')}`);
    assert.deepEqual([...contents].sort(), [...expected].sort());
    assert.equal(fake.acceptedIdentifies, 1, 'resumed, not a new session');
  });
});
