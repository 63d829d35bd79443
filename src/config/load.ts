import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { z } from 'zod';
import type { PlatformRegistry } from '../adapters/platform.js';
import { GatewayError } from '../errors.js';
import { assertDistinctCredentials, enabledInstances } from './instances.js';
import { buildConfigSchema, type GatewayConfig } from './schema.js';
import { interpolate } from './interpolate.js';
import { cutText, readConfigDocument } from './read.js';
import { resolveConfigValues } from './secrets.js';

export interface LoadedConfig {
  /** Absolute path of the file the config came from. */
  file: string;
  config: GatewayConfig;
  /** Problems that do not stop the gateway (GW_ERR_CONFIG_SECRET_FILE_MODE): logged by `run`, printed by `check`. */
  warnings: GatewayError[];
}

/** `--config`, else `$HERMES_GATEWAY_CONFIG`, else the XDG default (DESIGN §6). */
export function locateConfig(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const chosen = flag || env.HERMES_GATEWAY_CONFIG;
  if (chosen) return resolve(chosen);
  const xdg = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(xdg, 'hermes-gateway', 'config.yaml');
}

function keyPath(path: ReadonlyArray<string | number>): string {
  return path.reduce<string>(
    (acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part),
    '',
  );
}

/** Problems listed in one message; the rest are counted (40k unknown keys are not echoed). */
const MAX_LISTED_ISSUES = 20;

/**
 * One line per problem, each naming the key, so the operator can fix all of them at once.
 * Keys and messages are cut (zod quotes the received value whole), and only the first
 * MAX_LISTED_ISSUES problems are listed.
 */
function describeIssues(issues: z.ZodIssue[]): { text: string; firstKey: string } {
  const lines: string[] = [];
  let firstKey = '';
  let total = 0;
  const add = (path: string, what: string): void => {
    firstKey ||= path;
    total += 1;
    if (lines.length < MAX_LISTED_ISSUES) lines.push(`${cutText(path)}: ${cutText(what)}`);
  };
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) add(keyPath([...issue.path, key]), 'unknown key');
      continue;
    }
    add(keyPath(issue.path) || '(top level)', issue.message);
  }
  if (total > lines.length) lines.push(`and ${total - lines.length} more problems`);
  return { text: lines.join('; '), firstKey };
}

/**
 * Reads, interpolates and validates the config file. Every failure is a GatewayError of kind
 * `config` (exit 78) whose message names the file and the key.
 */
export function loadConfig(
  file: string,
  registry: PlatformRegistry,
  env: NodeJS.ProcessEnv = process.env,
): LoadedConfig {
  const { config, warnings } = loadDocument(file, buildConfigSchema(registry), env);
  assertDistinctCredentials(enabledInstances(config.platforms, registry), file);
  if (config.state_file && !isAbsolute(config.state_file)) {
    config.state_file = resolve(dirname(file), config.state_file);
  }
  return { file, config, warnings };
}

/**
 * Reads, interpolates, resolves the secrets of and validates one config file against
 * `schema` (the gateway's, the worker's). Failures are GatewayErrors of kind `config`.
 */
export function loadDocument<T>(
  file: string,
  schema: z.ZodType<T, z.ZodTypeDef, unknown>,
  env: NodeJS.ProcessEnv,
): { config: T; warnings: GatewayError[] } {
  const raw = readConfigDocument(file);
  const warnings: GatewayError[] = [];
  const resolved = resolveConfigValues(raw, env, file, dirname(file), warnings);
  const parsed = schema.safeParse(resolved);
  if (!parsed.success) {
    const { text: problems, firstKey } = describeIssues(parsed.error.issues);
    throw new GatewayError('GW_ERR_CONFIG_INVALID', `${file}: ${problems}`, {
      details: { file, key: firstKey },
    });
  }
  return { config: parsed.data, warnings };
}

/** Names of the platform instances whose config is present and enabled. */
export function enabledPlatforms(config: GatewayConfig): string[] {
  return Object.entries(config.platforms)
    .filter(([, value]) => value?.enabled === true)
    .map(([name]) => name);
}

/**
 * Only the `state_file` setting of a config, for `status`: it must work where the secrets
 * the full config needs are not in the environment. Null when absent or unreadable.
 */
export function stateFileSetting(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): string | null {
  try {
    const raw = readConfigDocument(file);
    if (typeof raw.state_file !== 'string' || raw.state_file === '') return null;
    const value = interpolate(raw.state_file, env, 'state_file', file);
    return isAbsolute(value) ? value : resolve(dirname(file), value);
  } catch {
    return null;
  }
}
