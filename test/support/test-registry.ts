import type { PlatformRegistry } from '../../src/adapters/platform.js';
import { defaultRegistry } from '../../src/adapters/registry.js';
import { scriptedPlatform } from './scripted-platform.js';
import { secretPlatform } from './secret-platform.js';

// Loaded once, here: the config tests build registries synchronously.
const shipped = await defaultRegistry();

/** The shipped platforms plus the test ones: `scripted`, `scripted2` and `secretive`. */
export function testRegistry(): PlatformRegistry {
  const registry = new Map(shipped);
  for (const name of ['scripted', 'scripted2']) registry.set(name, scriptedPlatform(name));
  registry.set('secretive', secretPlatform('secretive'));
  return registry;
}
