import type { z } from 'zod';
import type { Adapter } from './contract.js';

/**
 * How a platform type plugs into the gateway: its config schema (a strict zod object for each
 * instance `platforms.<instance>` whose `type` is this one) and a factory. The config has been
 * validated against `schema`.
 */
export interface PlatformDefinition<C extends { enabled: boolean } = { enabled: boolean }> {
  /** The type name (`qqbot`), what an instance's `type` key names. */
  readonly name: string;
  readonly schema: z.ZodType<C, z.ZodTypeDef, unknown>;
  /**
   * Builds the adapter of one instance. The adapter's `name` must be `instance` (the key under
   * `platforms:`), and so must the `platform` of every event it emits.
   */
  create(config: C, instance: string): Adapter;
  /**
   * A NON-secret identity of the credential the config uses (QQ: `qqbot:<app_id>`). Two
   * instances with the same identity must never run at once: the platform would let only one
   * session live. Used by the credential lock; absent when a platform has no such limit.
   */
  credentialIdentity?(config: C): string;
  /**
   * Optional credential check for `check --probe`. Resolves when the platform accepts the
   * credentials; rejects with a GatewayError (kind `config` when they are rejected).
   */
  probe?(config: C): Promise<void>;
}

export type PlatformRegistry = ReadonlyMap<string, PlatformDefinition>;

/** Erases the config type parameter so definitions of different platforms share one map. */
export function definePlatform<C extends { enabled: boolean }>(
  def: PlatformDefinition<C>,
): PlatformDefinition {
  return def;
}
