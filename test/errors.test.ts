import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ERROR_CODES,
  EXIT,
  GatewayError,
  allErrorCodes,
  exitCodeFor,
  lookupCode,
  registerErrorCodes,
  toGatewayError,
} from '../src/errors.js';

await test('error registry', async (t) => {
  await t.test('names every registered code GW_ERR_UPPER_SNAKE', () => {
    const codes = allErrorCodes();
    assert.ok(codes.length >= Object.keys(ERROR_CODES).length);
    for (const code of codes) assert.match(code, /^GW_ERR_[A-Z0-9_]+$/);
  });

  await t.test('gives every code a kind and a retryable flag', () => {
    for (const code of allErrorCodes()) {
      const info = lookupCode(code);
      assert.ok(info, code);
      assert.ok(['config', 'platform', 'transient', 'internal'].includes(info.kind), code);
      assert.equal(typeof info.retryable, 'boolean', code);
    }
  });

  await t.test('refuses badly named codes and a code registered twice with another meaning', () => {
    assert.throws(() =>
      registerErrorCodes({ gw_err_lower: { kind: 'internal', retryable: true } }),
    );
    assert.throws(() =>
      registerErrorCodes({ GW_ERR_ADAPTER_RETURNED: { kind: 'config', retryable: false } }),
    );
    // The same meaning again is harmless (a module imported twice).
    registerErrorCodes({ GW_ERR_ADAPTER_RETURNED: { kind: 'transient', retryable: true } });
  });

  await t.test('registers extra codes into the same registry', () => {
    registerErrorCodes({ GW_ERR_TEST_ONLY_EXTRA: { kind: 'platform', retryable: false } });
    assert.ok(allErrorCodes().includes('GW_ERR_TEST_ONLY_EXTRA'));
    const err = new GatewayError('GW_ERR_TEST_ONLY_EXTRA', 'x');
    assert.equal(err.kind, 'platform');
    assert.equal(err.retryable, false);
  });

  await t.test('refuses to build an error with an unregistered code', () => {
    assert.throws(() => new GatewayError('GW_ERR_NEVER_REGISTERED', 'x'));
  });
});

await test('GatewayError', async (t) => {
  await t.test('takes kind and retryable from the registry, with a per-occurrence override', () => {
    const err = new GatewayError('GW_ERR_ADAPTER_FAILED', 'x', { details: { close_code: 4004 } });
    assert.equal(err.code, 'GW_ERR_ADAPTER_FAILED');
    assert.equal(err.kind, 'transient');
    assert.equal(err.retryable, true);
    assert.deepEqual(err.details, { close_code: 4004 });
    assert.equal(
      new GatewayError('GW_ERR_ADAPTER_FAILED', 'x', { retryable: false }).retryable,
      false,
    );
  });

  await t.test('keeps the cause', () => {
    const cause = new Error('root');
    assert.equal(new GatewayError('GW_ERR_INTERNAL', 'x', { cause }).cause, cause);
  });

  await t.test(
    'toGatewayError keeps a GatewayError and wraps anything else with the fallback code',
    () => {
      const original = new GatewayError('GW_ERR_STATE_WRITE', 'x');
      assert.equal(toGatewayError(original, 'GW_ERR_INTERNAL'), original);
      const wrapped = toGatewayError(new Error('plain'), 'GW_ERR_BACKGROUND_TASK');
      assert.equal(wrapped.code, 'GW_ERR_BACKGROUND_TASK');
      assert.equal(toGatewayError('a string', 'GW_ERR_INTERNAL').code, 'GW_ERR_INTERNAL');
    },
  );
});

await test('exitCodeFor (DESIGN §5)', async (t) => {
  const exit = (code: string, retryable?: boolean): number =>
    exitCodeFor(new GatewayError(code, 'x', retryable === undefined ? {} : { retryable }));

  await t.test('maps the exit codes to their documented numbers', () => {
    assert.deepEqual(EXIT, { OK: 0, RETRYABLE: 1, USAGE: 2, INTERNAL: 70, CONFIG: 78 });
  });

  await t.test('internal errors exit 70 whatever their retryable flag', () => {
    assert.equal(exit('GW_ERR_UNCAUGHT_EXCEPTION'), 70);
    assert.equal(exit('GW_ERR_STATE_WRITE'), 70);
    assert.equal(exit('GW_ERR_INTERNAL', false), 70);
  });

  await t.test('config errors exit 78 whatever their retryable flag', () => {
    assert.equal(exit('GW_ERR_CONFIG_INVALID'), 78);
    assert.equal(exit('GW_ERR_NOTIFY_UNAVAILABLE'), 78);
    assert.equal(exit('GW_ERR_CONFIG_INVALID', true), 78);
  });

  await t.test('transient and platform errors exit 1 when retryable, 78 when not', () => {
    assert.equal(exit('GW_ERR_ADAPTER_RETURNED'), 1);
    assert.equal(exit('GW_ERR_ADAPTER_FAILED', true), 1);
    assert.equal(exit('GW_ERR_ADAPTER_FAILED', false), 78);
    registerErrorCodes({ GW_ERR_TEST_PLATFORM_KIND: { kind: 'platform', retryable: false } });
    assert.equal(exit('GW_ERR_TEST_PLATFORM_KIND'), 78);
    assert.equal(exit('GW_ERR_TEST_PLATFORM_KIND', true), 1);
  });

  await t.test('maps every registered code to one of 1, 70 and 78', () => {
    for (const code of allErrorCodes()) assert.ok([1, 70, 78].includes(exit(code)), code);
  });
});
