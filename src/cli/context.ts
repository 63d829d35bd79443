import type { PlatformRegistry } from '../adapters/platform.js';
import type { CliIo } from './io.js';

/** Where commands get the platforms from: loaded when a command needs them. */
export interface PlatformSource {
  /** Every platform (`check`, `status`, `doctor`). */
  all(): Promise<PlatformRegistry>;
  /**
   * The platforms a config's `platforms:` section (as read, before validation) names: what
   * `run` loads, so it pays for no other platform's code.
   */
  forPlatforms(section: unknown): Promise<PlatformRegistry>;
}

/** What every command's registration gets: where to write, the platforms, and the exit code slot. */
export interface CommandContext {
  registry: PlatformSource;
  io: CliIo;
  /** The command's action stores its exit code here; commander itself only parses. */
  result: { code: number };
}
