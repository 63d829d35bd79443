/**
 * The bundle loader's code cache (src/cli/bundle-loader.ts) on small real bundles in a temp
 * folder, each start a process of its own: written once a daemon's start is done, used by
 * the next start, never used for a bundle it was not made from (same length, other bytes),
 * rejected and rewritten when damaged, and never in the way of a start when the folder
 * cannot be written. The CLI end to end: test/cli/compile-cache.test.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { cachedCommand, compileCacheDir } from '../../src/cli/bundle-loader.js';
import type { CompileCacheSaved, CompileCacheStatus } from '../../src/cli/compile-cache.js';
import { scratchRoot } from '../support/spawn-gateway.js';

const CHILD = fileURLToPath(new URL('./bundle-loader-child.js', import.meta.url));
const root = await scratchRoot('hgw-bundle-loader-');
let serial = 0;

/** What a test bundle records when it runs: its marker and what the loader gave it. */
interface Ran {
  marker: string;
  filename: string;
  pathJoin: string;
  exportsIsThis: boolean;
}

interface Start {
  status: CompileCacheStatus;
  file: string | null;
  saved: CompileCacheSaved | null;
  ran: Ran[];
}

/** A bundle of `functions` functions (enough code for a cache worth its name), all called. */
function bundleSource(marker: string, functions = 50): string {
  const defs = Array.from(
    { length: functions },
    (_, i) => `function f${i}(x) { return [x, ${i}, '${marker}'].join(':'); }`,
  );
  const calls = Array.from({ length: functions }, (_, i) => `f${i}(${i});`);
  return [
    '// a test bundle, ASCII only',
    ...defs,
    ...calls,
    `globalThis[Symbol.for('hermes-gateway.test.bundle-ran')].push({ marker: '${marker}',`,
    `  filename: __filename, pathJoin: require('node:path').join('a', 'b'),`,
    '  exportsIsThis: this === module.exports && exports === module.exports });',
  ].join('\n');
}

async function setUp(source: string): Promise<{ bundle: string; env: NodeJS.ProcessEnv }> {
  const dir = join(root, `case-${serial++}`);
  await mkdir(dir);
  const bundle = join(dir, 'cli.cjs');
  await writeFile(bundle, source);
  return { bundle, env: { XDG_CACHE_HOME: join(dir, 'cache') } };
}

const RUN = ['node', 'main.js', 'run', '--config', 'x.yaml'];

/** One start in a fresh process (bundle-loader-child.ts says why), saving the cache after it. */
function start(bundle: string, env: NodeJS.ProcessEnv, argv: string[] = RUN, save = true): Start {
  const child = spawnSync(process.execPath, [CHILD, bundle, JSON.stringify({ argv, env, save })], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout) as Start;
}

await test('the command decides whether a start is cached: the daemons only', () => {
  assert.equal(cachedCommand(RUN), 'run');
  assert.equal(cachedCommand(['node', 'main.js', 'worker', '-c', 'w.yaml']), 'worker');
  assert.equal(cachedCommand(['node', 'main.js', '--version']), null);
  assert.equal(cachedCommand(['node', 'main.js', 'status']), null);
  assert.equal(cachedCommand(['node', 'main.js']), null);
});

await test('the cache folder: systemd CacheDirectory=, else the XDG cache home, else ~/.cache', () => {
  assert.equal(compileCacheDir({ CACHE_DIRECTORY: '/c/a:/c/b', XDG_CACHE_HOME: '/x' }), '/c/a');
  assert.equal(compileCacheDir({ XDG_CACHE_HOME: '/x', HOME: '/h' }), '/x/hermes-gateway');
  assert.equal(compileCacheDir({ HOME: '/h' }), '/h/.cache/hermes-gateway');
});

await test('a miss runs the bundle, save writes the cache (0600 in 0700), the next start hits', async () => {
  const { bundle, env } = await setUp(bundleSource('one'));
  const first = start(bundle, env);
  assert.equal(first.status, 'miss');
  assert.deepEqual(first.ran, [
    { marker: 'one', filename: bundle, pathJoin: join('a', 'b'), exportsIsThis: true },
  ]);
  assert.equal(first.saved?.outcome, 'written', JSON.stringify(first.saved));
  const file = first.file!;
  assert.equal(join(file, '..'), join(env.XDG_CACHE_HOME!, 'hermes-gateway'));
  assert.match(file, /\/run-[0-9a-f]{16}-v8-[^/]+\.cache$/);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.equal((await stat(join(file, '..'))).mode & 0o777, 0o700);
  assert.equal((await readFile(file)).length, (first.saved as { bytes: number }).bytes);

  const second = start(bundle, env);
  assert.equal(second.status, 'hit');
  assert.equal(second.file, file);
  assert.deepEqual(second.saved, { outcome: 'unchanged' }, 'a hit leaves the file alone');
  assert.deepEqual(second.ran, first.ran);
});

await test('a bundle of the same length but other bytes never gets the old cache', async () => {
  const { bundle, env } = await setUp(bundleSource('old'));
  const first = start(bundle, env);
  assert.equal(first.saved?.outcome, 'written');
  const changed = bundleSource('new');
  assert.equal(changed.length, bundleSource('old').length);
  await writeFile(bundle, changed);
  // What a process killed while writing its cache leaves behind.
  await writeFile(`${first.file!}.12345.tmp`, 'half a cache');
  const second = start(bundle, env);
  assert.equal(second.status, 'miss');
  assert.notEqual(second.file, first.file);
  assert.deepEqual(
    second.ran.map((r) => r.marker),
    ['new'],
    'the new code ran',
  );
  // Writing the new bundle's cache removed the old one and the leftover: one file per command.
  assert.equal(second.saved?.outcome, 'written');
  assert.deepEqual(await readdir(join(second.file!, '..')), [second.file!.split('/').pop()]);
});

await test('a damaged cache is rejected: the bundle runs from source and the cache is rewritten', async () => {
  const { bundle, env } = await setUp(bundleSource('damaged'));
  const first = start(bundle, env);
  assert.equal(first.saved?.outcome, 'written');
  const bad = Buffer.from(await readFile(first.file!));
  bad.fill(0x5a, 64);
  await writeFile(first.file!, bad);
  const second = start(bundle, env);
  assert.equal(second.status, 'rejected');
  assert.deepEqual(
    second.ran.map((r) => r.marker),
    ['damaged'],
  );
  assert.equal(second.saved?.outcome, 'written');
  assert.equal(start(bundle, env).status, 'hit');
});

await test("V8's own check: a whole cache of other code under this bundle's name is rejected", async () => {
  const other = await setUp(bundleSource('other', 80));
  const donor = start(other.bundle, other.env);
  assert.equal(donor.saved?.outcome, 'written');
  const { bundle, env } = await setUp(bundleSource('mine'));
  const mine = start(bundle, env);
  assert.equal(mine.saved?.outcome, 'written');
  // Its digest is right (the file is whole); only V8 can tell it belongs to other code.
  await writeFile(mine.file!, await readFile(donor.file!));
  const again = start(bundle, env);
  assert.equal(again.status, 'rejected');
  assert.deepEqual(
    again.ran.map((r) => r.marker),
    ['mine'],
  );
});

await test('a cache file cut short is rejected, down to an empty one', async () => {
  const { bundle, env } = await setUp(bundleSource('short'));
  const first = start(bundle, env);
  assert.equal(first.saved?.outcome, 'written');
  const whole = await readFile(first.file!);
  for (const length of [whole.length - 1, 21, 20, 3, 0]) {
    await writeFile(first.file!, whole.subarray(0, length));
    assert.equal(start(bundle, env, RUN, false).status, 'rejected', `${length} bytes`);
  }
});

await test('a cache folder that cannot be made: the start goes on, save says why', async () => {
  const { bundle, env } = await setUp(bundleSource('unwritable'));
  // A file where the folder should be: mkdir fails (EEXIST/ENOTDIR), whoever runs the test.
  await writeFile(env.XDG_CACHE_HOME!, 'not a folder');
  const handle = start(bundle, env);
  assert.equal(handle.status, 'miss');
  assert.deepEqual(
    handle.ran.map((r) => r.marker),
    ['unwritable'],
  );
  assert.equal(handle.saved?.outcome, 'failed');
  assert.match((handle.saved as { error: string }).error, /EEXIST|ENOTDIR/);
});

await test('NODE_DISABLE_COMPILE_CACHE and the other commands: no cache read or written', async () => {
  const { bundle, env } = await setUp(bundleSource('off'));
  const disabled = start(bundle, { ...env, NODE_DISABLE_COMPILE_CACHE: '1' });
  assert.equal(disabled.status, 'off');
  assert.equal(disabled.file, null);
  assert.deepEqual(disabled.saved, { outcome: 'unchanged' });
  const status = start(bundle, env, ['node', 'main.js', 'status']);
  assert.equal(status.status, 'off');
  assert.deepEqual(status.saved, { outcome: 'unchanged' });
  await assert.rejects(readdir(env.XDG_CACHE_HOME!), { code: 'ENOENT' });
  assert.equal(disabled.ran.length + status.ran.length, 2, 'both ran');
});

await test("each daemon keeps its own cache: writing run's leaves worker's", async () => {
  const { bundle, env } = await setUp(bundleSource('both'));
  const worker = start(bundle, env, ['node', 'main.js', 'worker']);
  assert.equal(worker.saved?.outcome, 'written');
  const run = start(bundle, env);
  assert.equal(run.status, 'miss', "the worker's cache is not run's");
  assert.equal(run.saved?.outcome, 'written');
  const names = (await readdir(join(run.file!, '..'))).sort();
  assert.deepEqual(
    names.map((n) => n.split('-')[0]),
    ['run', 'worker'],
  );
});
