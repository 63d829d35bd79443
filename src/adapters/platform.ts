import type { z } from 'zod';
import type { Adapter } from './contract.js';

/**
 * How a platform plugs into the gateway: its config schema (a strict zod object under
 * `platforms.<name>`) and a factory. The config has been validated against `schema`.
 */
export interface PlatformDefinition<C extends { enabled: boolean } = { enabled: boolean }> {
  readonly name: string;
  readonly schema: z.ZodType<C, z.ZodTypeDef, unknown>;
  create(config: C): Adapter;
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
