/**
 * The product CLI's compile cache end to end (src/cli/bundle-loader.ts, docs/performance.md):
 * the first `run` compiles the bundle from source and writes the cache once it is READY, the
 * next `run` starts from it. Asserted on the debug line `run` logs and on the file, never on
 * time (the bench measures the start-up: bench/sections/footprint.ts).
 */
import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { withProductRun } from '../support/product-run.js';
import { killAllChildren, scratchRoot, type LogLine } from '../support/spawn-gateway.js';

after(killAllChildren);

const dir = await scratchRoot('hgw-compile-cache-');
const cacheDir = join(dir, '.cache', 'hermes-gateway');

/** Runs the product CLI until it is connected; returns its `compile cache` debug line. */
function start(env: Record<string, string> = {}): Promise<LogLine> {
  return withProductRun(
    dir,
    { top: { log_level: 'debug', delivery: { enabled: false } }, env },
    (gateway) =>
      gateway.waitForLine((l) => l.msg === 'compile cache', 'the compile cache line', 20_000),
  );
}

await test('the first run writes the cache after READY, in the XDG cache home', async () => {
  const line = await start();
  assert.equal(line.status, 'miss');
  assert.equal(line.outcome, 'written');
  const files = await readdir(cacheDir);
  assert.equal(files.length, 1, files.join(', '));
  assert.equal(line.file, join(cacheDir, files[0]!));
  assert.match(files[0]!, /^run-[0-9a-f]{16}-v8-.+\.cache$/);
  assert.equal((await stat(join(cacheDir, files[0]!))).size, line.bytes);
});

await test('the next run starts from it and leaves it alone', async () => {
  const before = await stat(join(cacheDir, (await readdir(cacheDir))[0]!));
  const line = await start();
  assert.equal(line.status, 'hit');
  assert.equal(line.outcome, 'unchanged');
  const after = await stat(line.file as string);
  assert.equal(after.mtimeMs, before.mtimeMs);
});

await test('NODE_DISABLE_COMPILE_CACHE turns it off', async () => {
  const line = await start({ NODE_DISABLE_COMPILE_CACHE: '1' });
  assert.equal(line.status, 'off');
  assert.equal(line.file, null);
  assert.equal(line.outcome, 'unchanged');
});
