/** Comparing a presented secret with the expected one in constant time (control token, webhook secret). */
import { createHash, timingSafeEqual } from 'node:crypto';

/** SHA-256 of `value`: both sides of a comparison get the same length this way. */
export function secretDigest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** True when `presented` is the secret whose digest is `expected`; constant time in its content. */
export function secretMatches(presented: string | undefined, expected: Buffer): boolean {
  if (presented === undefined) return false;
  return timingSafeEqual(secretDigest(presented), expected);
}
