import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ADAPTER_STATES } from '../../src/adapters/contract.js';
import { canAdapterMove, canGatewayMove } from '../../src/runner/transitions.js';
import { GATEWAY_STATES } from '../../src/state/schema.js';
import { statusLine } from '../../src/runner/status-line.js';

await test('adapter transitions', async (t) => {
  await t.test('allows the documented lifecycle', () => {
    for (const [from, to] of [
      ['starting', 'connecting'],
      ['connecting', 'connected'],
      ['connecting', 'connecting'],
      ['connecting', 'reconnecting'],
      ['connected', 'reconnecting'],
      ['reconnecting', 'reconnecting'],
      ['reconnecting', 'connected'],
    ] as const) {
      assert.ok(canAdapterMove(from, to), `${from} -> ${to}`);
    }
  });

  await t.test('rejects going back to connecting and skipping the handshake', () => {
    assert.equal(canAdapterMove('connected', 'connecting'), false);
    assert.equal(canAdapterMove('reconnecting', 'connecting'), false);
    assert.equal(canAdapterMove('starting', 'connected'), false);
    assert.equal(canAdapterMove('connected', 'connected'), false);
  });

  await t.test(
    'lets every live state end stopped or fatal, and nothing leave a terminal state',
    () => {
      for (const from of ADAPTER_STATES) {
        const terminal = from === 'stopped' || from === 'fatal';
        for (const to of ADAPTER_STATES) {
          if (terminal) assert.equal(canAdapterMove(from, to), false, `${from} -> ${to}`);
        }
        if (!terminal) {
          assert.ok(canAdapterMove(from, 'stopped'), `${from} -> stopped`);
          assert.ok(canAdapterMove(from, 'fatal'), `${from} -> fatal`);
        }
      }
    },
  );
});

await test('gateway transitions', async (t) => {
  await t.test('starting -> running -> stopping -> stopped, or fatal from any live state', () => {
    assert.ok(canGatewayMove('starting', 'running'));
    assert.ok(canGatewayMove('running', 'stopping'));
    assert.ok(canGatewayMove('stopping', 'stopped'));
    for (const from of ['starting', 'running', 'stopping'] as const) {
      assert.ok(canGatewayMove(from, 'fatal'), from);
    }
    for (const to of GATEWAY_STATES) {
      assert.equal(canGatewayMove('stopped', to), false, `stopped -> ${to}`);
      assert.equal(canGatewayMove('fatal', to), false, `fatal -> ${to}`);
    }
    assert.equal(canGatewayMove('running', 'starting'), false);
    assert.equal(canGatewayMove('running', 'stopped'), false);
  });
});

await test('statusLine', async (t) => {
  await t.test(
    'names the gateway state and every adapter with its state, attempt and error code',
    () => {
      const line = statusLine({
        gateway: { state: 'running', since: '', reason: null, exit_code: null },
        platforms: {
          qq: {
            state: 'reconnecting',
            since: '',
            reconnect_attempt: 2,
            max_reconnect_attempts: 5,
            last_error: { code: 'GW_ERR_X', message: '', retryable: true, at: '' },
            last_event_at: null,
            resumable: true,
            detail: null,
          },
          tg: {
            state: 'connected',
            since: '',
            reconnect_attempt: 0,
            max_reconnect_attempts: null,
            last_error: { code: 'GW_ERR_OLD', message: '', retryable: true, at: '' },
            last_event_at: null,
            resumable: false,
            detail: null,
          },
        },
      });
      assert.equal(line, 'running: qq reconnecting (attempt 2/5) [GW_ERR_X], tg connected');
      assert.ok(!line.includes('\n'));
    },
  );
});
