/**
 * HolderLock against real processes: a second taker learns the holder's pid and description,
 * and a holder killed with SIGKILL leaves no stale lock behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { HolderLock } from '../../src/util/holder-lock.js';

const lockModule = fileURLToPath(new URL('../../src/util/holder-lock.js', import.meta.url));

/** A child process that takes `key` and prints `held` (or `refused <pid>`), then waits. */
function childHolding(key: string) {
  const code = `
    const { HolderLock } = await import(${JSON.stringify(lockModule)});
    const r = await HolderLock.acquire(${JSON.stringify(key)}, 'child holder');
    console.log(r.ok ? 'held' : 'refused ' + r.holder.pid);
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8');
    child.stdout.once('data', (chunk: string) => resolve(chunk.trim()));
    child.once('exit', (c) => reject(new Error(`child exited ${c} before taking the lock`)));
  });
  return { child, line };
}

await test('a second taker in the same process is refused and told who holds it', async () => {
  const key = `same-process ${process.pid} ${Date.now()}`;
  const first = await HolderLock.acquire(key, 'first holder');
  assert.ok(first.ok);
  const second = await HolderLock.acquire(key, 'second holder');
  assert.equal(second.ok, false);
  if (!second.ok) assert.deepEqual(second.holder, { pid: process.pid, holder: 'first holder' });
  await first.lock.release();
  const third = await HolderLock.acquire(key, 'third holder');
  assert.ok(third.ok, 'released lock can be taken again');
  if (third.ok) await third.lock.release();
});

await test('a lock held by another process is refused with its pid; kill -9 frees it at once', async () => {
  const key = `cross-process ${process.pid} ${Date.now()}`;
  const { child, line } = childHolding(key);
  try {
    assert.equal(await line, 'held');
    const refused = await HolderLock.acquire(key, 'parent');
    assert.equal(refused.ok, false);
    if (!refused.ok) assert.deepEqual(refused.holder, { pid: child.pid, holder: 'child holder' });
    child.kill('SIGKILL');
    await once(child, 'exit');
    const taken = await HolderLock.acquire(key, 'parent');
    assert.ok(taken.ok, 'the lock of a killed holder is free without any clean-up');
    if (taken.ok) await taken.lock.release();
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

await test('different keys do not collide', async () => {
  const a = await HolderLock.acquire(`key-a ${process.pid}`, 'a');
  const b = await HolderLock.acquire(`key-b ${process.pid}`, 'b');
  assert.ok(a.ok && b.ok);
  if (a.ok) await a.lock.release();
  if (b.ok) await b.lock.release();
});
