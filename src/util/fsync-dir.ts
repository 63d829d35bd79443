/**
 * A rename is durable only once the directory holding the new name is on disk: after a
 * crash, an fsynced file may otherwise come back under its old name (or not at all).
 */
import { open } from 'node:fs/promises';

/** fsyncs directory `dir` (opened read-only, as POSIX allows); rejects with the errno error. */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
