import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The CLI entry point, from the package's root. */
export const CLI_FROM_ROOT = join('dist', 'src', 'cli', 'main.js');

/**
 * The package's root folder: the nearest folder above `moduleUrl` that holds the CLI entry
 * point (dist/src/cli/main.js). Found by walking up rather than by a fixed number of `..`,
 * because the same source runs from the compiled tree (dist/src/<folder>/) and from the
 * bundled CLI (dist/src/cli/main.js and its chunks in dist/src/cli/bundle/). Asks no
 * package.json: a copy of the built files is enough. Never throws (it runs when a module is
 * loaded): with no such folder, the root as seen from the compiled tree.
 */
export function packageRoot(moduleUrl: string = import.meta.url): string {
  const start = dirname(fileURLToPath(moduleUrl));
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, CLI_FROM_ROOT))) return dir;
    if (dirname(dir) === dir) return resolve(start, '../../..');
  }
}
