/**
 * `mkdir -p` that reports the real reason. Node's recursive mkdir answers ENOENT for a
 * failure to create a missing level (seen on a read-only file system: EROFS becomes
 * ENOENT), which sends an operator looking for a missing parent that is not missing.
 */
import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Creates `path` and its missing parents with `mode`. Resolves when the directory exists;
 * rejects with the errno of the level that could not be created (EROFS, EACCES, ENOTDIR...).
 */
export async function makeDirectory(path: string, mode: number): Promise<void> {
  try {
    await mkdir(path, { recursive: true, mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // One level at a time, so the level that fails says why.
    await makeStepwise(path, mode);
    // Stepwise worked (a parent appeared meanwhile): nothing to report.
  }
}

async function makeStepwise(path: string, mode: number): Promise<void> {
  const parent = dirname(path);
  if (parent !== path) {
    try {
      await stat(parent);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await makeStepwise(parent, mode);
    }
  }
  try {
    await mkdir(path, { mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}
