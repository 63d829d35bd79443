import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Secret } from '../../src/config/secret.js';
import { createCommandHandler } from '../../src/handlers/command.js';
import { parseHandlerConfig, type CommandHandlerConfig } from '../../src/handlers/config.js';
import { captureLogger } from '../support/capture.js';
import { makeEvent, rejectsWith } from './helpers.js';

const NODE = process.execPath;
const { log } = captureLogger();
const signal = new AbortController().signal;

function config(script: string, extra: Record<string, unknown> = {}): CommandHandlerConfig {
  return parseHandlerConfig({
    type: 'command',
    argv: [NODE, '-e', script],
    timeout_ms: 2_000,
    kill_grace_ms: 100,
    ...extra,
  }) as CommandHandlerConfig;
}

/** Gone or a zombie (reaped by whoever adopted it, which may take a moment or never in a container). */
function isDead(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

async function waitDead(pid: number, timeoutMs = 2_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (isDead(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return isDead(pid);
}

/**
 * A script that starts a grandchild in its own group, writes both pids to `file`, and hangs.
 * The pids go to a temp file renamed into place, so `file` existing means it is complete.
 */
function hangingFamily(file: string, ignoreTerm = false): string {
  return `
    const { spawn } = require('node:child_process');
    const fs = require('node:fs');
    ${ignoreTerm ? "process.on('SIGTERM', () => {});" : ''}
    const grandchild = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"], { stdio: 'ignore' });
    fs.writeFileSync(${JSON.stringify(`${file}.tmp`)}, JSON.stringify([process.pid, grandchild.pid]));
    fs.renameSync(${JSON.stringify(`${file}.tmp`)}, ${JSON.stringify(file)});
    setInterval(() => {}, 1000);
  `;
}

/** Waits until `file` (written by a child with a rename) exists; fails the test by name. */
async function waitForFile(file: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(file)) {
    if (Date.now() > deadline) assert.fail(`${file} did not appear within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A command that starts a descendant sharing its stdout (in its group, not a new session),
 * writes the descendant's pid to `file`, prints `reply` and exits with `code`: the
 * descendant keeps the pipe open forever.
 */
function exitsLeavingHolder(file: string, reply: string, code: number): string {
  return `
    const { spawn } = require('node:child_process');
    const fs = require('node:fs');
    const holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: ['ignore', 'inherit', 'ignore'] });
    fs.writeFileSync(${JSON.stringify(`${file}.tmp`)}, String(holder.pid));
    fs.renameSync(${JSON.stringify(`${file}.tmp`)}, ${JSON.stringify(file)});
    process.stdout.write(${JSON.stringify(reply)}, () => process.exit(${code}));
  `;
}

await test('command handler with real child processes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hgw-command-'));
  t.after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  await t.test('the event arrives as JSON on stdin; stdout is the reply', async () => {
    const handler = createCommandHandler(
      config(`
        let input = '';
        process.stdin.on('data', (c) => (input += c));
        process.stdin.on('end', () => {
          const event = JSON.parse(input);
          process.stdout.write('you said ' + event.text + ' in ' + event.chat.id + '\\n\\n');
        });
      `),
      { log },
    );
    const replies = await handler.handle(makeEvent({ text: 'hi', chat: 'room7' }), signal);
    assert.deepEqual(replies, [{ text: 'you said hi in room7' }]);
  });

  await t.test(
    'the child gets a minimal environment, the event ids and handler.env (secrets revealed)',
    async () => {
      process.env.HGW_TEST_PARENT_ONLY = 'must-not-leak';
      try {
        const handler = createCommandHandler(
          config('process.stdout.write(JSON.stringify(process.env))', {
            env: { MODE: 'test', API_TOKEN: new Secret('tok-123') },
          }),
          { log },
        );
        const event = makeEvent({ chat: 'c9', chatType: 'group' });
        const [reply] = await handler.handle(event, signal);
        const env = JSON.parse(reply!.text) as Record<string, string>;
        assert.equal(env.HGW_TEST_PARENT_ONLY, undefined);
        assert.equal(env.HERMES_EVENT_ID, event.id);
        assert.equal(env.HERMES_CHAT_TYPE, 'group');
        assert.equal(env.HERMES_CHAT_ID, 'c9');
        assert.equal(env.MODE, 'test');
        assert.equal(env.API_TOKEN, 'tok-123');
      } finally {
        delete process.env.HGW_TEST_PARENT_ONLY;
      }
    },
  );

  await t.test('empty stdout is no reply; a command that ignores stdin is fine', async () => {
    const handler = createCommandHandler(config('process.exit(0)'), { log });
    assert.deepEqual(await handler.handle(makeEvent({ text: 'x'.repeat(200_000) }), signal), []);
  });

  await t.test(
    'a non-zero exit is GW_ERR_HANDLER_COMMAND_EXIT with the status and stderr; no reply',
    async () => {
      const handler = createCommandHandler(
        config("process.stdout.write('partial'); process.stderr.write('boom'); process.exit(3)"),
        { log },
      );
      const err = await rejectsWith(
        handler.handle(makeEvent(), signal),
        'GW_ERR_HANDLER_COMMAND_EXIT',
      );
      assert.equal(err.details.exit_code, 3);
      assert.equal(err.details.stderr, 'boom');
    },
  );

  await t.test(
    'a command that hangs is killed with its whole process group: GW_ERR_HANDLER_COMMAND_TIMEOUT',
    async () => {
      const file = join(dir, 'pids-hang.json');
      // 1.5 s: a loaded machine must get the family started (and the pid file written)
      // before the timeout, or there is nothing to check.
      const handler = createCommandHandler(config(hangingFamily(file), { timeout_ms: 1_500 }), {
        log,
      });
      const started = performance.now();
      await rejectsWith(handler.handle(makeEvent(), signal), 'GW_ERR_HANDLER_COMMAND_TIMEOUT');
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 1_490 && elapsed < 10_000, `took ${elapsed} ms`);
      assert.ok(existsSync(file));
      const [child, grandchild] = JSON.parse(readFileSync(file, 'utf8')) as [number, number];
      assert.ok(isDead(child), 'the command itself is dead');
      // The grandchild ignores SIGTERM: the SIGKILL to the group gets it.
      assert.ok(await waitDead(grandchild), 'the grandchild is dead');
    },
  );

  await t.test('a command that ignores SIGTERM gets SIGKILL after kill_grace_ms', async () => {
    const file = join(dir, 'pids-term.json');
    const handler = createCommandHandler(
      // The SIGTERM handler must be installed before the timeout fires: 1.5 s of start-up.
      config(hangingFamily(file, true), { timeout_ms: 1_500, kill_grace_ms: 150 }),
      { log },
    );
    const started = performance.now();
    await rejectsWith(handler.handle(makeEvent(), signal), 'GW_ERR_HANDLER_COMMAND_TIMEOUT');
    assert.ok(performance.now() - started >= 1_640);
    const [child, grandchild] = JSON.parse(readFileSync(file, 'utf8')) as [number, number];
    assert.ok(isDead(child));
    assert.ok(await waitDead(grandchild));
  });

  await t.test(
    'output beyond max_output_bytes is GW_ERR_HANDLER_RESPONSE_TOO_LARGE and the child is killed',
    async () => {
      const handler = createCommandHandler(
        config(
          "const b = Buffer.alloc(65536, 'y'); const w = () => process.stdout.write(b, w); w();",
          {
            max_output_bytes: 1024,
          },
        ),
        { log },
      );
      await rejectsWith(handler.handle(makeEvent(), signal), 'GW_ERR_HANDLER_RESPONSE_TOO_LARGE');
    },
  );

  await t.test('a command that cannot start is GW_ERR_HANDLER_COMMAND_SPAWN', async () => {
    const handler = createCommandHandler(
      parseHandlerConfig({
        type: 'command',
        argv: [join(dir, 'no-such-command')],
      }) as CommandHandlerConfig,
      { log },
    );
    const err = await rejectsWith(
      handler.handle(makeEvent(), signal),
      'GW_ERR_HANDLER_COMMAND_SPAWN',
    );
    assert.equal(err.details.errno, 'ENOENT');
  });

  await t.test('aborting the signal kills the command: GW_ERR_HANDLER_CANCELLED', async () => {
    const file = join(dir, 'pids-abort.json');
    const handler = createCommandHandler(config(hangingFamily(file), { timeout_ms: 10_000 }), {
      log,
    });
    const controller = new AbortController();
    const pending = handler.handle(makeEvent(), controller.signal);
    await waitForFile(file);
    controller.abort();
    await rejectsWith(pending, 'GW_ERR_HANDLER_CANCELLED');
    const [child, grandchild] = JSON.parse(readFileSync(file, 'utf8')) as [number, number];
    assert.ok(isDead(child));
    assert.ok(await waitDead(grandchild));
  });

  await t.test(
    'a command that exits 0 while a descendant holds stdout: its reply, within the drain bound',
    async () => {
      const file = join(dir, 'holder-ok.pid');
      // The default output_drain_ms (1 s) applies: far below the command timeout.
      const handler = createCommandHandler(
        config(exitsLeavingHolder(file, 'done\n', 0), { timeout_ms: 20_000 }),
        { log },
      );
      const started = performance.now();
      const replies = await handler.handle(makeEvent(), signal);
      const elapsed = performance.now() - started;
      assert.deepEqual(replies, [{ text: 'done' }]);
      assert.ok(elapsed < 10_000, `took ${elapsed} ms`);
      // The holder was in the command's process group: killed once the drain ended.
      assert.ok(await waitDead(Number(readFileSync(file, 'utf8'))), 'the holder is dead');
    },
  );

  await t.test(
    'a command that exits non-zero while a descendant holds stdout: GW_ERR_HANDLER_COMMAND_EXIT',
    async () => {
      const file = join(dir, 'holder-fail.pid');
      const handler = createCommandHandler(
        config(exitsLeavingHolder(file, 'partial', 4), {
          timeout_ms: 20_000,
          output_drain_ms: 100,
        }),
        { log },
      );
      const err = await rejectsWith(
        handler.handle(makeEvent(), signal),
        'GW_ERR_HANDLER_COMMAND_EXIT',
      );
      assert.equal(err.details.exit_code, 4);
      assert.ok(await waitDead(Number(readFileSync(file, 'utf8'))), 'the holder is dead');
    },
  );

  await t.test('argv is not run through a shell', async () => {
    const handler = createCommandHandler(
      parseHandlerConfig({
        type: 'command',
        argv: [NODE, '-p', 'process.argv[1]', '$(echo no); `id`'],
      }) as CommandHandlerConfig,
      { log },
    );
    assert.deepEqual(await handler.handle(makeEvent(), signal), [{ text: '$(echo no); `id`' }]);
  });
});

await test('command config', async (t) => {
  await t.test('argv must be a non-empty array of strings; defaults', () => {
    assert.throws(() => parseHandlerConfig({ type: 'command', argv: [] }));
    assert.throws(() => parseHandlerConfig({ type: 'command', argv: 'echo hi' }));
    const parsed = parseHandlerConfig({ type: 'command', argv: ['cat'] });
    if (parsed.type !== 'command') assert.fail('wrong type');
    assert.equal(parsed.timeout_ms, 30_000);
    assert.equal(parsed.kill_grace_ms, 2_000);
    assert.equal(parsed.max_output_bytes, 65_536);
    assert.equal(parsed.output_drain_ms, 1_000);
  });
});
