import type { PlatformDefinition, PlatformRegistry } from './platform.js';

/** Every platform the gateway ships with, by config name. */
export function defaultRegistry(): PlatformRegistry {
  const platforms: PlatformDefinition[] = [];
  return new Map(platforms.map((p) => [p.name, p]));
}
