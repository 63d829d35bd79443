import type { PlatformRegistry } from '../../src/adapters/platform.js';
import { scriptedPlatform } from './scripted-platform.js';
import { secretPlatform } from './secret-platform.js';

/** `shipped` plus the test platforms: `scripted`, `scripted2` and `secretive`. */
export function withTestPlatforms(shipped: PlatformRegistry): PlatformRegistry {
  const registry = new Map(shipped);
  for (const name of ['scripted', 'scripted2']) registry.set(name, scriptedPlatform(name));
  registry.set('secretive', secretPlatform('secretive'));
  return registry;
}
