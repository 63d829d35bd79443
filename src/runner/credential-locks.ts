/**
 * The credential lock: one credential, one holder, across every gateway process of the user.
 * Each instance's credential identity is locked with a HolderLock (an abstract unix socket the
 * kernel releases when the holder dies, kill -9 included), so a second gateway with the same
 * bot is refused at start instead of fighting the first over the platform's session.
 */
import type { CredentialClaim } from '../config/instances.js';
import { GatewayError } from '../errors.js';
import { HolderLock } from '../util/holder-lock.js';

/** The locks one gateway holds; `release()` lets them go (idempotent). */
export interface CredentialLocks {
  readonly identities: readonly string[];
  release(): Promise<void>;
}

/** The lock key of a credential identity (HolderLock hashes it into the socket name). */
export function credentialLockKey(identity: string): string {
  return `credential:${identity}`;
}

/**
 * Takes the lock of every claim, before any adapter connects. Resolves with the locks; rejects
 * with `GW_ERR_CREDENTIAL_IN_USE` naming the other holder (its instance and pid) when one is
 * taken, after releasing the ones already taken, so a refused start holds nothing.
 */
export async function acquireCredentialLocks(
  claims: readonly CredentialClaim[],
): Promise<CredentialLocks> {
  const held: HolderLock[] = [];
  const release = async (): Promise<void> => {
    await Promise.all(held.map((lock) => lock.release()));
  };
  try {
    for (const { instance, identity } of claims) {
      const result = await HolderLock.acquire(credentialLockKey(identity), `instance ${instance}`);
      if (!result.ok) {
        const { pid, holder } = result.holder;
        throw new GatewayError(
          'GW_ERR_CREDENTIAL_IN_USE',
          `platforms.${instance}: credential ${identity} is in use by ${holder} of pid ${pid}; one credential can run in one gateway only`,
          {
            details: {
              key: `platforms.${instance}`,
              identity,
              holder_pid: pid,
              holder,
            },
          },
        );
      }
      held.push(result.lock);
    }
  } catch (err) {
    await release();
    throw err;
  }
  return { identities: claims.map((c) => c.identity), release };
}
