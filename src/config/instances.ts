/**
 * `platforms:` as named instances: each key names one adapter instance, its `type` picks the
 * platform (default: the key itself, so `platforms.qqbot` stays a QQ bot named `qqbot`), and
 * the rest of its keys are validated by that type's own strict schema.
 */
import { z } from 'zod';
import type { PlatformDefinition, PlatformRegistry } from '../adapters/platform.js';
import { GatewayError } from '../errors.js';

/** Instance names: short, lower-case, safe in a label, a log field, a path and `send`'s target. */
export const INSTANCE_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** One instance's validated config: its type schema's output, plus the type. */
export interface InstanceConfig {
  type: string;
  enabled: boolean;
  [key: string]: unknown;
}

/** An instance with the definition of its type, as `run` and `check` use it. */
export interface Instance {
  name: string;
  type: string;
  definition: PlatformDefinition;
  config: InstanceConfig;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The schema of `platforms`: a map of instance name to config. Every problem is reported with
 * its path under the instance (`platforms.<instance>.<key>`), the way a fixed schema would.
 */
export function platformsSchema(
  registry: PlatformRegistry,
): z.ZodType<Record<string, InstanceConfig>, z.ZodTypeDef, unknown> {
  const known = [...registry.keys()].sort().join(', ');
  return z
    .record(z.unknown())
    .default({})
    .transform((raw, ctx) => {
      const out: Record<string, InstanceConfig> = {};
      for (const [name, value] of Object.entries(raw)) {
        if (!INSTANCE_NAME.test(name)) {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: [name],
            message: `bad instance name ${JSON.stringify(name)}: use 1-32 of a-z, 0-9, _ and -, starting with a letter or digit`,
          });
          continue;
        }
        if (!isPlainObject(value)) {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: [name],
            message: 'expected a mapping of the instance settings',
          });
          continue;
        }
        const { type: given, ...settings } = value;
        if (given !== undefined && typeof given !== 'string') {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: [name, 'type'],
            message: `expected a platform type (one of ${known})`,
          });
          continue;
        }
        const type = given ?? name;
        const definition = registry.get(type);
        if (!definition) {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            // Without `type`, the key itself is what names the unknown type.
            path: given === undefined ? [name] : [name, 'type'],
            message: `unknown platform type ${JSON.stringify(type)} (known types: ${known})`,
          });
          continue;
        }
        const parsed = definition.schema.safeParse(settings);
        if (!parsed.success) {
          for (const issue of parsed.error.issues) {
            ctx.addIssue({ ...issue, path: [name, ...issue.path] });
          }
          continue;
        }
        out[name] = { type, ...parsed.data };
      }
      return out;
    });
}

/** The enabled instances, in config order, each with its type's definition. */
export function enabledInstances(
  platforms: Record<string, InstanceConfig | undefined>,
  registry: PlatformRegistry,
): Instance[] {
  const out: Instance[] = [];
  for (const [name, config] of Object.entries(platforms)) {
    if (config?.enabled !== true) continue;
    const definition = registry.get(config.type);
    // The schema only lets through instances of registered types.
    if (!definition) throw new Error(`instance ${name}: type ${config.type} is not registered`);
    out.push({ name, type: config.type, definition, config });
  }
  return out;
}

/** One instance's claim on a credential, by its non-secret identity. */
export interface CredentialClaim {
  instance: string;
  identity: string;
}

/** The credential claims of `instances` whose type declares a credential identity. */
export function credentialClaims(instances: readonly Instance[]): CredentialClaim[] {
  const claims: CredentialClaim[] = [];
  for (const { name, definition, config } of instances) {
    const identity = definition.credentialIdentity?.(config);
    if (identity !== undefined) claims.push({ instance: name, identity });
  }
  return claims;
}

/**
 * Refuses a config in which two enabled instances use one credential: both would fight over
 * the platform's single session (QQ and Discord drop the older one, Telegram answers 409).
 * Throws `GW_ERR_CREDENTIAL_IN_USE` naming both instances and the identity, never a secret.
 */
export function assertDistinctCredentials(instances: readonly Instance[], file: string): void {
  const seen = new Map<string, string>();
  for (const { instance, identity } of credentialClaims(instances)) {
    const first = seen.get(identity);
    if (first === undefined) {
      seen.set(identity, instance);
      continue;
    }
    throw new GatewayError(
      'GW_ERR_CREDENTIAL_IN_USE',
      `${file}: platforms.${instance}: uses credential ${identity}, as does platforms.${first}; one credential can run in one instance only`,
      { details: { file, key: `platforms.${instance}`, identity, instances: [first, instance] } },
    );
  }
}
