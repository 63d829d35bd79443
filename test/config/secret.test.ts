import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { Secret } from '../../src/config/secret.js';
import { GatewayError } from '../../src/errors.js';
import { captureLogger } from '../support/capture.js';

const VALUE = 'xoxb-very-secret-value';

await test('Secret', async (t) => {
  await t.test('reveals its value only through reveal()', () => {
    assert.equal(new Secret(VALUE).reveal(), VALUE);
  });

  await t.test(
    'never prints: JSON, inspect, String, template literals, spread, structuredClone',
    () => {
      const secret = new Secret(VALUE);
      const shown = [
        JSON.stringify(secret),
        JSON.stringify({ a: { b: [secret] } }),
        inspect(secret),
        inspect({ secret }, { depth: null, showHidden: true }),
        String(secret),
        `${String(secret)}`,
        secret.toString(),
        JSON.stringify({ ...secret }),
        inspect(structuredClone({ ...secret })),
      ];
      for (const text of shown) assert.ok(!text.includes(VALUE), text);
      assert.equal(JSON.stringify(secret), '"[redacted]"');
    },
  );

  await t.test('never reaches a pino line, as a field, nested, in a message or in an error', () => {
    const secret = new Secret(VALUE);
    const { log, raw } = captureLogger('trace');
    log.info({ secret, credential: secret, deep: { x: { y: secret } } }, `value ${String(secret)}`);
    log.error(
      {
        err: new GatewayError('GW_ERR_INTERNAL', `failed ${String(secret)}`, {
          details: { secret },
        }),
      },
      'boom',
    );
    assert.equal(raw.length, 2);
    for (const line of raw) assert.ok(!line.includes(VALUE), line);
  });

  await t.test('the logger also blanks raw secret strings under the usual key names', () => {
    const { log, raw } = captureLogger('trace');
    log.info(
      {
        token: VALUE,
        client_secret: VALUE,
        headers: { authorization: `Bearer ${VALUE}` },
        platform: { access_token: VALUE },
      },
      'request',
    );
    assert.ok(!raw.join('').includes(VALUE), raw.join(''));
  });
});
