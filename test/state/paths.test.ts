import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultStatePath } from '../../src/state/paths.js';

await test('defaultStatePath (DESIGN §4)', async (t) => {
  await t.test('uses $STATE_DIRECTORY (its first entry) when systemd sets it', () => {
    assert.equal(
      defaultStatePath({ STATE_DIRECTORY: '/var/lib/a:/var/lib/b', XDG_STATE_HOME: '/x' }),
      '/var/lib/a/gateway_state.json',
    );
  });

  await t.test('else $XDG_STATE_HOME/hermes-gateway', () => {
    assert.equal(
      defaultStatePath({ XDG_STATE_HOME: '/x/state', HOME: '/home/u' }),
      '/x/state/hermes-gateway/gateway_state.json',
    );
  });

  await t.test('else ~/.local/state/hermes-gateway', () => {
    assert.equal(
      defaultStatePath({ HOME: '/home/u' }),
      '/home/u/.local/state/hermes-gateway/gateway_state.json',
    );
    assert.equal(
      defaultStatePath({ HOME: '/home/u', XDG_STATE_HOME: '', STATE_DIRECTORY: '' }),
      '/home/u/.local/state/hermes-gateway/gateway_state.json',
    );
  });
});
