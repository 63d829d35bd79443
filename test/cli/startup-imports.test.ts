/**
 * `run` loads what its config needs and nothing else before it is running (GitHub issue 12,
 * target 3; docs/performance.md): with a QQ-only config and the delivery store off, the built
 * CLI loads neither the NATS client nor better-sqlite3, no other platform, no other command
 * and no fake. Asserted on the modules the process loaded (test/support/module-log.ts), never
 * on time.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { FakeQQServer } from '../../src/fakes/qq/server.js';
import {
  GatewayProcess,
  killAllChildren,
  makeTempDir,
  PRODUCT_CLI,
  removeTempDir,
  sandboxEnv,
  waitForState,
  writeConfig,
} from '../support/spawn-gateway.js';

after(killAllChildren);

const MODULE_LOG = fileURLToPath(new URL('../support/module-log.js', import.meta.url));
const SECRET_ENV = 'HGW_TEST_QQ_SECRET';
/** Generous: the machine may be loaded; no test here is about time. */
const DEADLINE_MS = 20_000;

/** Runs the product CLI on a one-QQ-instance config until it is running and connected; returns what it loaded. */
async function modulesLoadedBy(top: Record<string, unknown>): Promise<string[]> {
  const dir = await makeTempDir('hgw-startup-imports-');
  const fake = await FakeQQServer.start();
  try {
    const statePath = join(dir, 'gateway_state.json');
    const log = join(dir, 'modules.log');
    const config = await writeConfig(dir, {
      state_file: statePath,
      handler: { type: 'echo' },
      ...top,
      platforms: {
        qqbot: {
          app_id: fake.settings.appId,
          client_secret: `\${${SECRET_ENV}}`,
          token_url: fake.tokenUrl,
          api_base: fake.apiBase,
        },
      },
    });
    const gateway = new GatewayProcess(['run', '--config', config], {
      cli: PRODUCT_CLI,
      env: sandboxEnv(dir, {
        [SECRET_ENV]: fake.settings.clientSecret,
        NODE_OPTIONS: `--import ${MODULE_LOG}`,
        HGW_MODULE_LOG: log,
      }),
    });
    await waitForState(
      statePath,
      (d) => d.gateway.state === 'running' && d.platforms.qqbot?.state === 'connected',
      'running + qqbot connected',
      DEADLINE_MS,
    );
    const loaded = withBundledModules(readFileSync(log, 'utf8').split('\n'));
    gateway.signal('SIGTERM');
    assert.equal((await gateway.waitForExit(DEADLINE_MS)).code, 0, gateway.stdout);
    return loaded;
  } finally {
    await fake.close();
    await removeTempDir(dir);
  }
}

const CLI_DIR = dirname(PRODUCT_CLI);
/** The banner of scripts/bundle-cli's main.js. */
const BUNDLE_MARKER = '// hermes-gateway CLI bundle';

/**
 * The modules loaded, with those inside the bundled CLI (scripts/bundle-cli) added: each
 * file of the bundle that was loaded stands for the source modules esbuild put in it
 * (dist/src/cli/bundle/meta.json). Without a bundle (only tsc ran) the list is as logged.
 */
function withBundledModules(loaded: string[]): string[] {
  const metaFile = join(CLI_DIR, 'bundle', 'meta.json');
  if (!existsSync(metaFile) || !readFileSync(PRODUCT_CLI, 'utf8').includes(BUNDLE_MARKER)) {
    return loaded;
  }
  const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as {
    outputs: Record<string, { inputs: Record<string, unknown> }>;
  };
  const inputsOf = new Map<string, string[]>();
  for (const [output, { inputs }] of Object.entries(meta.outputs)) {
    // Paths from dist/src/cli; written into .bundle/ and moved up one level after the build.
    const file = join(CLI_DIR, output.replace(/^\.bundle\//, ''));
    inputsOf.set(
      file,
      Object.keys(inputs).map((input) => join(CLI_DIR, input)),
    );
  }
  const expanded = [...loaded];
  for (const entry of loaded) {
    const file = entry.startsWith('file://') ? fileURLToPath(entry) : entry;
    expanded.push(...(inputsOf.get(file) ?? []));
  }
  return expanded;
}

function matching(loaded: string[], pattern: RegExp): string[] {
  return loaded.filter((m) => pattern.test(m));
}

await test('run with a QQ-only config and the store off loads only what it runs', async () => {
  const loaded = await modulesLoadedBy({ delivery: { enabled: false } });
  // The log sees both kinds of module: the QQ adapter (an ES module) and prom-client's
  // registry (a CommonJS one, through createRequire), which `run` always loads.
  assert.ok(matching(loaded, /\/src\/adapters\/qqbot\/index\.js$/).length > 0, 'the QQ adapter');
  assert.ok(matching(loaded, /\/prom-client\/lib\/registry\.js$/).length > 0, 'prom-client');
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
