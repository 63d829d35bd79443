/**
 * Access tokens as the platform hands them out (fact sheet §1.1): a re-request within the
 * lifetime returns the same token with its remaining seconds; only within the last
 * `renewWindowSec` is a new one minted, and the old one stays valid until its own end.
 * Expiry is checked lazily against the clock, so no timer is involved.
 */
import { randomBytes } from 'node:crypto';
import { AUTH_PREFIX } from './protocol.js';

interface IssuedToken {
  value: string;
  expiresAt: number;
  /** Revoked by a scripted fault before its end. */
  revoked: boolean;
}

/** Result of checking a presented token. */
export type TokenStatus =
  /** Currently valid. */
  | 'valid'
  /** Missing, or not `QQBot <token>` where the prefix is required. */
  | 'malformed'
  /** Never issued by this fake. */
  | 'unknown'
  /** Its announced lifetime is over: the client should have refreshed. */
  | 'expired'
  /** Revoked by a scripted fault: the client could not know. */
  | 'revoked';

/** What a token request got. */
export interface TokenGrant {
  token: string;
  expiresInSec: number;
  outcome: 'issued' | 'reused' | 'renewed';
}

/** Tokens minted by one fake server. */
export class TokenStore {
  private readonly issued = new Map<string, IssuedToken>();
  private current: IssuedToken | null = null;

  constructor(private readonly lifetime: () => { ttlSec: number; renewWindowSec: number }) {}

  /** Answers a token request with valid credentials. */
  grant(now = Date.now()): TokenGrant {
    const { ttlSec, renewWindowSec } = this.lifetime();
    const current = this.current;
    const live = current !== null && !current.revoked && current.expiresAt > now;
    if (live && current.expiresAt - now > renewWindowSec * 1000) {
      const expiresInSec = toSeconds(current.expiresAt - now);
      return { token: current.value, expiresInSec, outcome: 'reused' };
    }
    const minted: IssuedToken = {
      value: randomBytes(24).toString('base64url'),
      expiresAt: now + ttlSec * 1000,
      revoked: false,
    };
    this.issued.set(minted.value, minted);
    this.current = minted;
    // 'renewed': minted while the previous token is still valid (inside the renew window).
    const outcome = live ? 'renewed' : 'issued';
    return { token: minted.value, expiresInSec: toSeconds(ttlSec * 1000), outcome };
  }

  /**
   * Checks a token as presented in `Authorization` or in Identify/Resume. With
   * `prefixed`, it must read `QQBot <token>`.
   */
  check(presented: unknown, prefixed = true, now = Date.now()): TokenStatus {
    if (typeof presented !== 'string') return 'malformed';
    let value = presented;
    if (prefixed) {
      if (!presented.startsWith(AUTH_PREFIX)) return 'malformed';
      value = presented.slice(AUTH_PREFIX.length);
    }
    const token = this.issued.get(value);
    if (token === undefined) return 'unknown';
    if (token.revoked) return 'revoked';
    return token.expiresAt > now ? 'valid' : 'expired';
  }

  /** Revokes every token issued so far; the next request mints a new one. */
  revokeAll(): void {
    for (const token of this.issued.values()) token.revoked = true;
  }

  /** Every token issued so far, oldest first (for tests that look for leaks). */
  get issuedTokens(): string[] {
    return [...this.issued.keys()];
  }

  /** The token the next request would reuse, if any (for tests). */
  get currentToken(): string | null {
    return this.current?.value ?? null;
  }
}

/** Whole seconds for `expires_in`, rounded up so a live token never announces 0. */
function toSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
