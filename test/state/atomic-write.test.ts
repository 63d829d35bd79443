/**
 * What the state file's atomic writer promises beyond the happy path, watched with real files
 * and real processes: a write that fails after its temp file was created leaves the previous
 * file whole and no temp file behind; a process that exits in the middle of a write leaves no
 * temp file behind; the file's mode is 0600 whatever the umask.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { StateDocument } from '../../src/state/schema.js';
import { StateStore } from '../../src/state/store.js';
import { scratchRoot } from '../support/spawn-gateway.js';

const CHILD = fileURLToPath(new URL('./atomic-write-child.js', import.meta.url));
const root = await scratchRoot('hgw-atomic-');
let counter = 0;

/** A fresh directory holding a good state file (write_seq 1, reason 'good'). */
async function goodStateFile(): Promise<{ dir: string; path: string }> {
  const dir = join(root, `d${++counter}`);
  await mkdir(dir);
  const path = join(dir, 'gateway_state.json');
  const store = new StateStore({ path, heartbeatIntervalMs: 1000, log: pino({ level: 'silent' }) });
  store.setGateway({ reason: 'good' });
  await store.commit();
  return { dir, path };
}

async function readDoc(path: string): Promise<StateDocument> {
  return JSON.parse(await readFile(path, 'utf8')) as StateDocument;
}

function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  delete env.NODE_OPTIONS;
  return env;
}

await test('a write that fails after creating its temp file removes it; the old file stays whole', async () => {
  const { dir, path } = await goodStateFile();
  // RLIMIT_FSIZE 0: creating the temp file works, writing a byte into it fails (EFBIG).
  const run = spawnSync(
    'sh',
    ['-c', 'ulimit -f 0 && exec "$0" "$@"', process.execPath, CHILD, path, 'fail'],
    { env: childEnv(), encoding: 'utf8', timeout: 30_000 },
  );
  assert.equal(run.status, 0, run.stdout + run.stderr);
  const outcome = JSON.parse(run.stdout) as { code: string; errno: string };
  assert.deepEqual(outcome, { code: 'GW_ERR_STATE_WRITE', errno: 'EFBIG' });
  assert.deepEqual(await readdir(dir), ['gateway_state.json']);
  const doc = await readDoc(path);
  assert.equal(doc.gateway.reason, 'good');
  assert.equal(doc.write_seq, 1);
});

await test('a process that exits in the middle of a write leaves no temp file', async () => {
  const dir = join(root, `d${++counter}`);
  await mkdir(dir);
  const path = join(dir, 'gateway_state.json');
  const run = spawnSync(process.execPath, [CHILD, path, 'exit'], {
    env: childEnv(),
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(run.status, 3, run.stdout + run.stderr);
  assert.deepEqual(await readdir(dir), ['gateway_state.json']);
  assert.equal((await readDoc(path)).write_seq, 1);
});

await test('the state file is 0600 even under a umask that takes owner bits away', async () => {
  const dir = join(root, `d${++counter}`);
  await mkdir(dir);
  const path = join(dir, 'gateway_state.json');
  const store = new StateStore({ path, heartbeatIntervalMs: 1000, log: pino({ level: 'silent' }) });
  // 0377: open(..., 0600) alone would create the file 0400.
  const previous = process.umask(0o377);
  try {
    await store.commit();
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    await store.commit();
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  } finally {
    process.umask(previous);
  }
  assert.deepEqual(await readdir(dir), ['gateway_state.json']);
});
