/**
 * `check --probe` exit codes: 0 the credentials are accepted, 78 rejected, 1 could not tell.
 * The QQ cases run against the fake (test/adapters/qqbot/cli.test.ts); here, a platform whose
 * probe fails in ways the fake cannot produce (an uncoded error, an internal one).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { z } from 'zod';
import { definePlatform, type PlatformRegistry } from '../../src/adapters/platform.js';
import { checkCommand } from '../../src/cli/check.js';
import { GatewayError } from '../../src/errors.js';

function registryProbing(probe: () => Promise<void>): PlatformRegistry {
  const def = definePlatform({
    name: 'probing',
    schema: z.object({ enabled: z.boolean().default(true) }).strict(),
    create: () => {
      throw new Error('not run by check');
    },
    probe,
  });
  return new Map([['probing', def]]);
}

await test('check --probe: 0 accepted, 78 rejected, 1 for anything that cannot tell', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hgw-check-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'config.yaml');
  await writeFile(config, 'platforms:\n  probing:\n    enabled: true\n', { mode: 0o600 });
  const cases: Array<[string, () => Promise<void>, number, string | null]> = [
    ['accepted', () => Promise.resolve(), 0, null],
    [
      'rejected',
      () => Promise.reject(new GatewayError('GW_ERR_CONFIG_INVALID', 'refused')),
      78,
      'GW_ERR_CONFIG_INVALID',
    ],
    [
      'transient',
      () => Promise.reject(new GatewayError('GW_ERR_ADAPTER_FAILED', 'endpoint down')),
      1,
      'GW_ERR_ADAPTER_FAILED',
    ],
    [
      'internal',
      () => Promise.reject(new GatewayError('GW_ERR_INTERNAL', 'bug')),
      1,
      'GW_ERR_INTERNAL',
    ],
    ['uncoded', () => Promise.reject(new Error('socket hang up')), 1, 'GW_ERR_INTERNAL'],
  ];
  for (const [name, probe, exit, code] of cases) {
    const err: string[] = [];
    const io = { out: () => undefined, err: (text: string) => err.push(text), env: {} };
    const result = await checkCommand({ config, probe: true }, registryProbing(probe), io);
    assert.equal(result, exit, `${name}: ${err.join('\n')}`);
    if (code !== null) assert.match(err.join('\n'), new RegExp(`^error ${code}:`, 'm'), name);
  }
});
