/** The fact sheet's §8 test vectors: key derivation, dispatch signature, validation answer. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  deriveKeys,
  publicKeyHex,
  seedOf,
  signHex,
  validationAnswer,
  verifyCallback,
} from '../../../src/adapters/qqbot/signature.js';
import { Secret } from '../../../src/config/secret.js';

const BODY =
  '{"op":0,"id":"evt-1","s":1,"t":"C2C_MESSAGE_CREATE","d":{"id":"msg-1","content":"hi"}}';
const BODY_SIGNATURE =
  'bad2cd465f10c6aff452ee999139fd52352f37b713e09a91421e4b613ab0af433e03ce01d8310c59f004878d44cb5e18c549961f2814d5bc3b39a93526d25c0b';

await test('key derivation: the secret is doubled to 32 bytes, a longer one truncated (DOC sign.md)', () => {
  assert.equal(
    seedOf('naOC0ocQE3shWLAfffVLB1rhYPG7').toString(),
    'naOC0ocQE3shWLAfffVLB1rhYPG7naOC',
  );
  assert.equal(seedOf('abc').toString(), 'abcabcabcabcabcabcabcabcabcabcab');
  assert.equal(seedOf('x'.repeat(40)).length, 32);
  const keys = deriveKeys(new Secret('naOC0ocQE3shWLAfffVLB1rhYPG7'));
  assert.equal(
    publicKeyHex(keys),
    'd7c362fe78aef81ff23287b493628b5db02a3c4fe30b215e4d19609b5d76673a',
  );
  assert.equal(
    publicKeyHex(deriveKeys(new Secret('DG5g3B4j9X2KOErG'))),
    '8b28ded5630f9051c205dd04c6ec56ad0b08b8812b2fe30ee9aece0ab41926f3',
  );
});

await test('validation answer (op 13): the official vector', () => {
  const keys = deriveKeys(new Secret('DG5g3B4j9X2KOErG'));
  assert.deepEqual(validationAnswer(keys, 'Arq0D5A61EgUu4OxUvOp', '1725442341'), {
    plain_token: 'Arq0D5A61EgUu4OxUvOp',
    signature:
      '87befc99c42c651b3aac0278e71ada338433ae26fcb24307bdc5ad38c1adc2d01bcfcadc0842edac85e85205028a1132afe09280305f13aa6909ffc2d652c706',
  });
});

await test('dispatch signature: timestamp + raw body, verified over the exact bytes', () => {
  const keys = deriveKeys(new Secret('DG5g3B4j9X2KOErG'));
  assert.equal(signHex(keys, `1725442341${BODY}`), BODY_SIGNATURE);
  assert.equal(verifyCallback(keys, '1725442341', Buffer.from(BODY), BODY_SIGNATURE), true);
  assert.equal(
    verifyCallback(keys, '1725442341', Buffer.from(BODY), BODY_SIGNATURE.toUpperCase()),
    true,
  );
  // Any change of timestamp, body bytes (re-serialised JSON included) or signature fails.
  assert.equal(verifyCallback(keys, '1725442342', Buffer.from(BODY), BODY_SIGNATURE), false);
  const reserialised = JSON.stringify(JSON.parse(BODY) as unknown, null, 1);
  assert.equal(
    verifyCallback(keys, '1725442341', Buffer.from(reserialised), BODY_SIGNATURE),
    false,
  );
  assert.equal(verifyCallback(keys, '1725442341', Buffer.from(`${BODY} `), BODY_SIGNATURE), false);
  const flipped = `${BODY_SIGNATURE.slice(0, 10)}${BODY_SIGNATURE[10] === '0' ? '1' : '0'}${BODY_SIGNATURE.slice(11)}`;
  assert.equal(verifyCallback(keys, '1725442341', Buffer.from(BODY), flipped), false);
  // Wrong length, not hex, high bits of the last byte set: false, never a throw.
  assert.equal(
    verifyCallback(keys, '1725442341', Buffer.from(BODY), BODY_SIGNATURE.slice(2)),
    false,
  );
  assert.equal(verifyCallback(keys, '1725442341', Buffer.from(BODY), 'zz'.repeat(64)), false);
  assert.equal(
    verifyCallback(keys, '1725442341', Buffer.from(BODY), `${BODY_SIGNATURE.slice(0, 126)}ff`),
    false,
  );
  // Another bot's key.
  const other = deriveKeys(new Secret('naOC0ocQE3shWLAfffVLB1rhYPG7'));
  assert.equal(verifyCallback(other, '1725442341', Buffer.from(BODY), BODY_SIGNATURE), false);
});
