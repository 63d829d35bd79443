/**
 * ws is loaded at the first connection, not with the adapters (src/net/gateway-socket.ts):
 * READY=1 comes before any adapter connects, so a start does not pay for ws and the modules
 * it pulls in before systemd hears from it (GitHub issue 12, target 3). Asserted on Node's
 * CommonJS module cache in a fresh process, never on time.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const GATEWAY_SOCKET = new URL('../../src/net/gateway-socket.js', import.meta.url).href;

/** Whether a fresh process that runs `script` after importing gateway-socket.js has ws loaded. */
function wsLoadedAfter(script: string): boolean {
  const code = [
    `const { createRequire } = await import('node:module');`,
    `const socket = await import(${JSON.stringify(GATEWAY_SOCKET)});`,
    script,
    `const cache = createRequire(import.meta.url).cache;`,
    `console.log(JSON.stringify(Object.keys(cache).some((k) => k.includes('/node_modules/ws/'))));`,
  ].join('\n');
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  delete env.NODE_OPTIONS;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    env,
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout.trim()) as boolean;
}

await test('importing the gateway socket does not load ws', () => {
  assert.equal(wsLoadedAfter(''), false);
});

await test('the same check sees ws once something loads it (the probe can fail)', () => {
  assert.equal(wsLoadedAfter(`createRequire(import.meta.url)('ws'); void socket;`), true);
});
