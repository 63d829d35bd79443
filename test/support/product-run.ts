/**
 * `hermes-gateway run` of the product CLI (the bundle, as installed) on a config of one QQ
 * instance against a fake QQ server, from the start until it is running and connected, then
 * a SIGTERM that must end it with exit 0. For the tests that look at how the product starts
 * (test/cli/startup-imports.test.ts, test/cli/compile-cache.test.ts).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FakeQQServer } from '../../src/fakes/qq/server.js';
import {
  GatewayProcess,
  PRODUCT_CLI,
  sandboxEnv,
  waitForState,
  writeConfig,
} from './spawn-gateway.js';
import { qqbotInstanceFor } from './qq-instance.js';

const SECRET_ENV = 'HGW_TEST_QQ_SECRET';
/** Generous: the machine may be loaded; no test of a start is about time. */
const DEADLINE_MS = 20_000;

export interface ProductRunOptions {
  /** Top-level config keys beside the QQ instance (the handler is echo unless set). */
  top?: Record<string, unknown>;
  /** Extra environment of the gateway, in a sandbox of `dir` (sandboxEnv). */
  env?: Record<string, string>;
}

/**
 * Runs the product CLI in `dir` with a fake of its own until it is running and connected,
 * calls `whileRunning` with the process, then stops it: resolves with what `whileRunning` did.
 */
export async function withProductRun<T>(
  dir: string,
  options: ProductRunOptions,
  whileRunning: (gateway: GatewayProcess) => Promise<T> | T,
): Promise<T> {
  const fake = await FakeQQServer.start();
  try {
    const statePath = join(dir, 'gateway_state.json');
    const config = await writeConfig(dir, {
      state_file: statePath,
      handler: { type: 'echo' },
      ...options.top,
      platforms: {
        qqbot: qqbotInstanceFor(fake, SECRET_ENV),
      },
    });
    const gateway = new GatewayProcess(['run', '--config', config], {
      cli: PRODUCT_CLI,
      env: sandboxEnv(dir, { [SECRET_ENV]: fake.settings.clientSecret, ...options.env }),
    });
    await waitForState(
      statePath,
      (d) => d.gateway.state === 'running' && d.platforms.qqbot?.state === 'connected',
      'running + qqbot connected',
      DEADLINE_MS,
    );
    const result = await whileRunning(gateway);
    gateway.signal('SIGTERM');
    assert.equal((await gateway.waitForExit(DEADLINE_MS)).code, 0, gateway.stdout);
    assert.ok(!gateway.stdout.includes(fake.settings.clientSecret), 'no secret in the log');
    return result;
  } finally {
    await fake.close();
  }
}
