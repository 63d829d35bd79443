/**
 * Webhook signatures (fact sheet §8.2-8.4, DOC sign.md): the Ed25519 key pair derived from the
 * bot secret, verification of `X-Signature-Ed25519` over timestamp + raw body, and the signed
 * answer to callback validation (op 13). Node's own crypto; no dependency.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import type { Secret } from '../../config/secret.js';

/** RFC 8410 PKCS#8 wrapping of a raw 32-byte Ed25519 seed. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SEED_BYTES = 32;
const SIGNATURE_BYTES = 64;

export interface SigningKeys {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/**
 * The seed rule of DOC sign.md: repeat the secret until it has 32 bytes, keep the first 32
 * (a longer secret is truncated). Exported for the test vectors.
 */
export function seedOf(secret: string): Buffer {
  if (secret === '') throw new Error('an empty bot secret derives no key');
  let seed = secret;
  while (Buffer.byteLength(seed) < SEED_BYTES) seed += seed;
  return Buffer.from(seed).subarray(0, SEED_BYTES);
}

/** The bot's key pair, derived from its secret (the secret itself is not kept). */
export function deriveKeys(secret: Secret): SigningKeys {
  const der = Buffer.concat([PKCS8_ED25519_PREFIX, seedOf(secret.reveal())]);
  const privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** The raw 32 bytes of the public key, as hex (test vectors, diagnostics). */
export function publicKeyHex(keys: SigningKeys): string {
  const der = keys.publicKey.export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - SEED_BYTES).toString('hex');
}

/** Hex Ed25519 signature of `message`. */
export function signHex(keys: SigningKeys, message: Buffer | string): string {
  return sign(
    null,
    typeof message === 'string' ? Buffer.from(message) : message,
    keys.privateKey,
  ).toString('hex');
}

/**
 * True when `signatureHex` is a valid signature of `timestamp` followed by `body`. The
 * signature must be exactly 64 bytes of hex with the top three bits of its last byte clear
 * (DOC sign.md); anything else is false, never an exception.
 */
export function verifyCallback(
  keys: SigningKeys,
  timestamp: string,
  body: Buffer,
  signatureHex: string,
): boolean {
  if (!/^[0-9a-fA-F]{128}$/.test(signatureHex)) return false;
  const signature = Buffer.from(signatureHex, 'hex');
  if (signature.length !== SIGNATURE_BYTES || (signature[63]! & 0xe0) !== 0) return false;
  const message = Buffer.concat([Buffer.from(timestamp), body]);
  return verify(null, message, keys.publicKey, signature);
}

/** The body answering callback validation (op 13): `plain_token` and the signature of event_ts + plain_token. */
export function validationAnswer(
  keys: SigningKeys,
  plainToken: string,
  eventTs: string,
): { plain_token: string; signature: string } {
  return { plain_token: plainToken, signature: signHex(keys, eventTs + plainToken) };
}
