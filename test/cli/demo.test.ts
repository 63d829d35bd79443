/**
 * `hermes-gateway demo --platform qqbot|telegram|discord|all`, through the product CLI: exit code, one
 * round trip per platform (the echo reply seen at the fake), and a clean stop of the gateway
 * child (SIGTERM → exit 0, every instance `stopped` in the state file).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  killAllChildren,
  PRODUCT_CLI,
  runGatewayCli,
  sandboxEnv,
  scratchRoot,
} from '../support/spawn-gateway.js';

const dir = await scratchRoot('hgw-demo-');
const env = sandboxEnv(dir);
/** The demo's own steps are bounded at 8 s each; a loaded machine gets the whole run. */
const RUN = { env, cli: PRODUCT_CLI, timeoutMs: 60_000 };

function assertRoundTrip(stdout: string, platform: string): void {
  const text = `hello from the demo (${platform})`;
  assert.ok(stdout.includes(`✓ ${platform} connected`), `${platform} connected:\n${stdout}`);
  assert.ok(stdout.includes(`a ${platform} user says  "${text}"`), stdout);
  assert.ok(stdout.includes(`the bot says          "${text}"`), `echo reply:\n${stdout}`);
}

await test('demo --platform telegram: the echo round trip through the fake Bot API, SIGTERM → exit 0, stopped', async (t) => {
  t.after(killAllChildren);
  const result = await runGatewayCli(['demo', '--platform', 'telegram'], RUN);
  assert.equal(result.code, 0, result.stderr);
  assertRoundTrip(result.stdout, 'telegram');
  assert.match(result.stdout, /✓ SIGTERM: exit 0, gateway stopped, telegram stopped/);
  assert.ok(!result.stdout.includes('qqbot'), 'only the chosen platform runs');
});

await test('demo --platform discord: the echo round trip through the fake Discord gateway, SIGTERM → exit 0, stopped', async (t) => {
  t.after(killAllChildren);
  const result = await runGatewayCli(['demo', '--platform', 'discord'], RUN);
  assert.equal(result.code, 0, result.stderr);
  assertRoundTrip(result.stdout, 'discord');
  assert.match(result.stdout, /✓ SIGTERM: exit 0, gateway stopped, discord stopped\n/);
  assert.ok(!result.stdout.includes('qqbot'), 'only the chosen platform runs');
});

await test('demo --platform all: QQ, Telegram and Discord in one gateway, every round trip, a clean stop', async (t) => {
  t.after(killAllChildren);
  const result = await runGatewayCli(['demo', '--platform', 'all'], RUN);
  assert.equal(result.code, 0, result.stderr);
  assertRoundTrip(result.stdout, 'qqbot');
  assertRoundTrip(result.stdout, 'telegram');
  assertRoundTrip(result.stdout, 'discord');
  assert.match(
    result.stdout,
    /gateway running, qqbot connected, telegram connected, discord connected/,
  );
  assert.match(
    result.stdout,
    /✓ SIGTERM: exit 0, gateway stopped, qqbot stopped, telegram stopped, discord stopped/,
  );
});

await test('demo without --platform is the QQ demo; an unknown platform is a usage error (exit 2)', async (t) => {
  t.after(killAllChildren);
  const plain = await runGatewayCli(['demo'], RUN);
  assert.equal(plain.code, 0, plain.stderr);
  assertRoundTrip(plain.stdout, 'qqbot');
  assert.ok(!plain.stdout.includes('telegram'));
  const unknown = await runGatewayCli(['demo', '--platform', 'discordx'], RUN);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /qqbot, telegram, discord, all/);
});
