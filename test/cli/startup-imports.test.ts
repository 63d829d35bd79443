/**
 * `run` loads what its config needs and nothing else before it is running (GitHub issue 12,
 * target 3; docs/performance.md): with a QQ-only config and the delivery store off, the built
 * CLI loads neither the NATS client nor better-sqlite3, no other platform, no other command
 * and no fake. Asserted on the modules the process loaded (test/support/module-log.ts), never
 * on time.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { withProductRun } from '../support/product-run.js';
import { killAllChildren, makeTempDir, removeTempDir } from '../support/spawn-gateway.js';

after(killAllChildren);

const MODULE_LOG = fileURLToPath(new URL('../support/module-log.js', import.meta.url));

/** Runs the product CLI on a one-QQ-instance config until it is running and connected; returns what it loaded. */
async function modulesLoadedBy(top: Record<string, unknown>): Promise<string[]> {
  const dir = await makeTempDir('hgw-startup-imports-');
  try {
    const log = join(dir, 'modules.log');
    const env = { NODE_OPTIONS: `--import ${MODULE_LOG}`, HGW_MODULE_LOG: log };
    return await withProductRun(dir, { top, env }, () => readFileSync(log, 'utf8').split('\n'));
  } finally {
    await removeTempDir(dir);
  }
}

function matching(loaded: string[], pattern: RegExp): string[] {
  return loaded.filter((m) => pattern.test(m));
}

await test('run with a QQ-only config and the store off loads only what it runs', async () => {
  const loaded = await modulesLoadedBy({ delivery: { enabled: false } });
  // The log sees each way a module comes in: the CLI entry (an ES module), the QQ adapter and
  // the metrics (modules of the bundle, evaluated) and, in the next test, better-sqlite3
  // (through createRequire).
  assert.ok(matching(loaded, /\/src\/cli\/main\.js$/).length > 0, 'the CLI entry');
  assert.ok(matching(loaded, /\/src\/adapters\/qqbot\/index\.js$/).length > 0, 'the QQ adapter');
  assert.ok(matching(loaded, /\/src\/metrics\.js$/).length > 0, 'the metrics');
  const unwanted: Array<[string, RegExp]> = [
    ['the NATS client', /\/node_modules\/@nats-io\//],
    ['the nats handler', /\/src\/handlers\/nats\/(gateway|broker|messaging|worker)\.js$/],
    ['better-sqlite3', /\/node_modules\/better-sqlite3\//],
    ['another platform', /\/src\/adapters\/(?!qqbot\/)[^/]+\/index\.js$/],
    ['another command', /\/src\/cli\/(check|status|doctor|demo|service|send|worker)\.js$/],
    ['a fake', /\/src\/fakes\//],
    ['the control server (no control.listen)', /\/src\/control\/server\.js$/],
  ];
  for (const [what, pattern] of unwanted) {
    assert.deepEqual(matching(loaded, pattern), [], `${what} was loaded`);
  }
});

await test('run with the store on (the default) loads better-sqlite3, and still no NATS client', async () => {
  const loaded = await modulesLoadedBy({});
  assert.ok(matching(loaded, /\/node_modules\/better-sqlite3\//).length > 0, 'better-sqlite3');
  assert.deepEqual(matching(loaded, /\/node_modules\/@nats-io\//), [], 'the NATS client');
});
