// The inbound webhook server the webhook transports share registers its codes with the platforms.
import '../ingress/errors.js';
import type { PlatformDefinition, PlatformRegistry } from './platform.js';

/**
 * Every platform the gateway ships with, by type name: how to load its definition. A platform
 * is loaded only when a config names its type, so `run` pays for the platforms it runs and no
 * other (docs/performance.md). A new platform is one line here.
 */
const PLATFORMS: Readonly<Record<string, () => Promise<PlatformDefinition>>> = {
  qqbot: async () => (await import('./qqbot/index.js')).qqbotPlatform,
  telegram: async () => (await import('./telegram/index.js')).telegramPlatform,
  discord: async () => (await import('./discord/index.js')).discordPlatform,
};

/** The registry of the platform types `types` names (every platform by default). */
export async function loadRegistry(
  types: Iterable<string> = Object.keys(PLATFORMS),
): Promise<PlatformRegistry> {
  const wanted = new Set(types);
  const names = Object.keys(PLATFORMS).filter((name) => wanted.has(name));
  const definitions = await Promise.all(names.map((name) => PLATFORMS[name]!()));
  return new Map(definitions.map((p) => [p.name, p]));
}

/** Every platform the gateway ships with, by config name. */
export function defaultRegistry(): Promise<PlatformRegistry> {
  return loadRegistry();
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The registry a config needs, from its `platforms:` section as read (before validation): the
 * types its instances name, enabled or not (the schema checks every instance). When an
 * instance names no known type, or the section is not what the schema takes, every platform:
 * the schema's message then lists every known type, exactly as with the full registry.
 */
export function registryForPlatforms(section: unknown): Promise<PlatformRegistry> {
  if (section === undefined) return loadRegistry([]);
  if (!isPlainObject(section)) return loadRegistry();
  const types = new Set<string>();
  for (const [name, value] of Object.entries(section)) {
    const type = isPlainObject(value) ? (value.type ?? name) : undefined;
    if (typeof type !== 'string' || !Object.hasOwn(PLATFORMS, type)) return loadRegistry();
    types.add(type);
  }
  return loadRegistry(types);
}
