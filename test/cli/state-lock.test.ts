/**
 * Issue #16, items 2 and 3: one writer per state file, and no write through a symlink or
 * into a directory someone else owns. A second `run` on a live gateway's state file exits 78
 * with GW_ERR_ALREADY_RUNNING naming the holder and writes nothing (bad config or good); the
 * lock dies with its holder, kill -9 included. A symlink planted at the state path, or a
 * state directory not owned by the user, is refused with GW_ERR_STATE_PATH_UNSAFE (78) and
 * the symlink's target is left as it was.
 */
import assert from 'node:assert/strict';
import { chown, lstat, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { StateStore } from '../../src/state/store.js';
import { captureLogger } from '../support/capture.js';
import {
  allConnected,
  killAllChildren,
  launchGateway,
  runGatewayCli,
  sandboxEnv,
  scratchRoot,
  writeConfig,
} from '../support/spawn-gateway.js';

const root = await scratchRoot('hgw-state-lock-');
let counter = 0;

async function caseDir(): Promise<string> {
  const dir = join(root, `c${++counter}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/**
 * A gateway holding the state file of `dir`, connected. A long heartbeat interval: it writes
 * nothing while the test's other starts try.
 */
async function launchConnected(dir: string): Promise<Awaited<ReturnType<typeof launchGateway>>> {
  const live = await launchGateway(dir, {
    heartbeat_interval_ms: 600_000,
    platforms: { scripted: {} },
  });
  await live.proc.waitForState(live.statePath, allConnected, 'connected', 60_000);
  return live;
}

await test('item 2: a second `run` on a live state file exits 78 and writes nothing', async (t) => {
  t.after(killAllChildren);
  const dir = await caseDir();
  const live = await launchConnected(dir);
  const before = await readFile(live.statePath);
  const env = sandboxEnv(dir, { HGW_TEST_UNSET_VAR: undefined });

  // The case: the same config with a variable missing, five times; plus the same
  // valid config (it used to connect before failing) and --state naming the same file.
  const broken = await writeConfig(
    dir,
    { state_file: live.statePath, log_level: '${HGW_TEST_UNSET_VAR}', platforms: { scripted: {} } },
    'broken.yaml',
  );
  const runs = await Promise.all([
    ...Array.from({ length: 5 }, () =>
      runGatewayCli(['run', '--config', broken], { env, timeoutMs: 60_000 }),
    ),
    runGatewayCli(['run', '--config', live.configPath], { env, timeoutMs: 60_000 }),
    runGatewayCli(['run', '--config', broken, '--state', live.statePath], {
      env,
      timeoutMs: 60_000,
    }),
  ]);
  for (const run of runs) {
    assert.equal(run.code, 78, `${run.stdout}\n${run.stderr}`);
    const line = run.lines.find((l) => l.code === 'GW_ERR_ALREADY_RUNNING');
    assert.ok(line, `logs GW_ERR_ALREADY_RUNNING: ${run.stdout}`);
    assert.equal(line.holder_pid, live.proc.pid);
    assert.equal(line.level, 50);
    assert.ok(String(line.msg).includes(String(live.proc.pid)), 'the message names the pid');
    assert.ok(!run.codes.includes('GW_ERR_CONFIG_ENV_MISSING'), 'refused before the config');
  }
  assert.deepEqual(await readFile(live.statePath), before, 'the state file is byte-identical');
  const status = await runGatewayCli(['status', '--state', live.statePath], {
    env,
    timeoutMs: 60_000,
  });
  assert.equal(status.code, 0, status.stdout);

  // kill -9: the kernel releases the lock; the next run takes over.
  live.proc.kill();
  await live.proc.exited;
  const next = await launchConnected(dir);
  next.proc.signal('SIGTERM');
  assert.equal((await next.proc.waitForExit(60_000)).code, 0);
});

await test('item 3: a symlink at the state path is refused; its target is untouched', async (t) => {
  t.after(killAllChildren);
  const dir = await caseDir();
  const target = join(dir, 'precious.txt');
  await writeFile(target, 'do not overwrite\n', { mode: 0o644 });
  const link = join(dir, 'gateway_state.json');
  await symlink(target, link);
  const good = await writeConfig(
    dir,
    { state_file: link, platforms: { scripted: {} } },
    'good.yaml',
  );
  const bad = await writeConfig(dir, { state_file: link, nope: 1 }, 'bad.yaml');
  const env = sandboxEnv(dir);
  const runs = await Promise.all([
    runGatewayCli(['run', '--config', good], { env, timeoutMs: 60_000 }),
    runGatewayCli(['run', '--config', bad], { env, timeoutMs: 60_000 }),
  ]);
  for (const run of runs) {
    assert.equal(run.code, 78, `${run.stdout}\n${run.stderr}`);
    const line = run.lines.find((l) => l.code === 'GW_ERR_STATE_PATH_UNSAFE');
    assert.ok(line, `logs GW_ERR_STATE_PATH_UNSAFE: ${run.stdout}`);
    assert.equal(line.path, link);
  }
  assert.equal(await readFile(target, 'utf8'), 'do not overwrite\n');
  assert.equal((await stat(target)).mode & 0o777, 0o644);
  assert.ok((await lstat(link)).isSymbolicLink(), 'the link itself is left alone');
});

await test("item 3: a symlink at a live gateway's state path is refused as unsafe, not as held", async (t) => {
  t.after(killAllChildren);
  const dir = await caseDir();
  const live = await launchConnected(dir);
  const target = join(dir, 'precious.txt');
  await writeFile(target, 'do not overwrite\n', { mode: 0o644 });
  await rm(live.statePath);
  await symlink(target, live.statePath);
  // The path's danger is what a second start must report, whoever holds the lock: two
  // starts at once on a planted link each reported the other as the holder (pid 0).
  const run = await runGatewayCli(['run', '--config', live.configPath], {
    env: sandboxEnv(dir),
    timeoutMs: 60_000,
  });
  assert.equal(run.code, 78, `${run.stdout}\n${run.stderr}`);
  assert.ok(run.codes.includes('GW_ERR_STATE_PATH_UNSAFE'), run.stdout);
  assert.ok(!run.codes.includes('GW_ERR_ALREADY_RUNNING'), run.stdout);
  live.proc.kill();
  await live.proc.exited;
  assert.equal(await readFile(target, 'utf8'), 'do not overwrite\n');
});

await test('item 3: a state directory owned by another user is refused', async (t) => {
  t.after(killAllChildren);
  if (process.getuid?.() !== 0) {
    t.skip('needs root to give a directory to another user');
    return;
  }
  const dir = await caseDir();
  const foreign = join(dir, 'foreign');
  await mkdir(foreign, { mode: 0o777 });
  await chown(foreign, 65_534, 65_534);
  const statePath = join(foreign, 'gateway_state.json');
  const file = await writeConfig(dir, { state_file: statePath, platforms: { scripted: {} } });
  const run = await runGatewayCli(['run', '--config', file], {
    env: sandboxEnv(dir),
    timeoutMs: 60_000,
  });
  assert.equal(run.code, 78, run.stdout);
  assert.ok(run.codes.includes('GW_ERR_STATE_PATH_UNSAFE'), run.stdout);
  await assert.rejects(stat(statePath), { code: 'ENOENT' });
});

await test('item 3: a symlink planted while the gateway runs is not written through', async () => {
  const dir = await caseDir();
  const path = join(dir, 'gateway_state.json');
  const store = new StateStore({ path, heartbeatIntervalMs: 1_000, log: captureLogger().log });
  await store.commit();
  const target = join(dir, 'precious.txt');
  await writeFile(target, 'do not overwrite\n', { mode: 0o644 });
  await rm(path);
  await symlink(target, path);
  await assert.rejects(store.commit(), { code: 'GW_ERR_STATE_PATH_UNSAFE' });
  assert.equal(await readFile(target, 'utf8'), 'do not overwrite\n');
  assert.equal((await stat(target)).mode & 0o777, 0o644);
});
