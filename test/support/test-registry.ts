import type { PlatformRegistry } from '../../src/adapters/platform.js';
import { defaultRegistry } from '../../src/adapters/registry.js';
import { withTestPlatforms } from './test-platforms.js';

// Loaded once, here: the config tests build registries synchronously.
const shipped = await defaultRegistry();

/** The shipped platforms plus the test ones: `scripted`, `scripted2` and `secretive`. */
export function testRegistry(): PlatformRegistry {
  return withTestPlatforms(shipped);
}
