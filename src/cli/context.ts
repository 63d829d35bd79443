import type { PlatformRegistry } from '../adapters/platform.js';
import type { CliIo } from './io.js';

/** What every command's registration gets: where to write, the platforms, and the exit code slot. */
export interface CommandContext {
  registry: PlatformRegistry;
  io: CliIo;
  /** The command's action stores its exit code here; commander itself only parses. */
  result: { code: number };
}
