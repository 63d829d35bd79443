/**
 * A rename is durable only once the directory holding the new name is on disk: after a
 * crash, an fsynced file may otherwise come back under its old name (or not at all).
 */
import { open, type FileHandle } from 'node:fs/promises';

/**
 * Opens directory `dir` for an fsync (read-only, as POSIX allows). The caller may open it
 * before the rename it makes durable, as long as it fsyncs it after; it closes the handle.
 */
export function openDirectory(dir: string): Promise<FileHandle> {
  return open(dir, 'r');
}

/** fsyncs directory `dir`; rejects with the errno error of the open, fsync or close. */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await openDirectory(dir);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
