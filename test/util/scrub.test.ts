/**
 * The secret scrubber (issue #16, item 1): every live secret, in every form an endpoint may
 * echo it (raw, JSON-escaped once or twice, \u-escaped, URL-encoded), is blanked from text
 * that came from outside; a rotated token stays scrubbed for a grace period, then is forgotten.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Secret } from '../../src/config/secret.js';
import { GatewayError, toGatewayError } from '../../src/errors.js';
import { SecretScrubber, scrub } from '../../src/util/scrub.js';
import { captureLogger } from '../support/capture.js';

await test('every form of a registered secret is replaced', () => {
  const s = new SecretScrubber();
  const secret = 'a"b\\c/é d&e\u0001';
  s.register(secret);
  const once = JSON.stringify(secret).slice(1, -1);
  const samples = [
    secret,
    once,
    JSON.stringify(once).slice(1, -1),
    encodeURIComponent(secret),
    new URLSearchParams({ k: secret }).toString().slice(2),
    // Python's json.dumps (ensure_ascii) and PHP's json_encode (escaped slashes).
    'a\\"b\\\\c/\\u00e9 d&e\\u0001',
    'a\\"b\\\\c\\/é d&e\\u0001',
  ];
  for (const sample of samples) {
    assert.equal(s.scrub(`<${sample}>`), '<[redacted]>', sample);
  }
  assert.equal(s.scrub('nothing here'), 'nothing here');
});

await test('a retired secret is scrubbed until its time, then forgotten', () => {
  let now = 1_000;
  const s = new SecretScrubber(() => now);
  s.register('old-token-1234');
  s.register('new-token-5678');
  s.retire('old-token-1234', 5_000);
  assert.equal(s.scrub('old-token-1234 new-token-5678'), '[redacted] [redacted]');
  now = 5_001;
  assert.equal(s.scrub('old-token-1234 new-token-5678'), 'old-token-1234 [redacted]');
  assert.equal(s.size, 1);
  // Registered again (handed out again): live again.
  s.register('old-token-1234');
  assert.equal(s.scrub('old-token-1234'), '[redacted]');
});

await test('a Secret registers itself with the process scrubber', () => {
  const value = `registered-${Math.random().toString(36).slice(2)}`;
  assert.equal(scrub(`x ${value} y`), `x ${value} y`);
  const secret = new Secret(value);
  assert.equal(scrub(`x ${value} y`), 'x [redacted] y');
  assert.equal(secret.reveal(), value);
});

await test('GatewayError messages and string details are scrubbed at construction', () => {
  const value = `in-error-${Math.random().toString(36).slice(2)}`;
  new Secret(value);
  const err = new GatewayError('GW_ERR_INTERNAL', `answer: ${value}`, {
    details: { excerpt: `"${value}"`, nested: { text: value }, status: 401 },
  });
  assert.equal(err.message, 'answer: [redacted]');
  assert.deepEqual(err.details, {
    excerpt: '"[redacted]"',
    nested: { text: '[redacted]' },
    status: 401,
  });
  assert.equal(
    toGatewayError(new Error(`boom ${value}`), 'GW_ERR_INTERNAL').message,
    'boom [redacted]',
  );
});

await test('the logger scrubs a finished line (the last fence, for text logged directly)', () => {
  const value = `logged-${Math.random().toString(36).slice(2)}`;
  new Secret(value);
  const { log, raw } = captureLogger();
  log.warn({ platform_message: `echo ${value}` }, `answer was ${JSON.stringify({ k: value })}`);
  assert.equal(raw.length, 1);
  assert.ok(!raw[0]!.includes(value), raw[0]);
  assert.match(raw[0]!, /echo \[redacted\]/);
});
