/**
 * A rename is durable only once the directory holding the new name is on disk: after a
 * crash, an fsynced file may otherwise come back under its old name (or not at all).
 */
import { closeSync, fsync, open } from 'node:fs';
import { promisify } from 'node:util';

const openAsync = promisify(open);
const fsyncAsync = promisify(fsync);

/** An open directory, kept for an fsync after a rename in it. */
export interface OpenDirectory {
  /** fsyncs the directory; rejects with the errno error. */
  sync(): Promise<void>;
  /**
   * Closes it, on the calling thread: closing a read-only directory descriptor does no I/O,
   * so this costs microseconds where a round trip to the thread pool costs a wait.
   */
  close(): void;
}

/**
 * Opens directory `dir` (read-only, as POSIX allows) for an fsync. The caller may open it
 * before the rename it makes durable, as long as it fsyncs it after; it closes it.
 */
export async function openDirectory(dir: string): Promise<OpenDirectory> {
  const fd = await openAsync(dir, 'r');
  return { sync: () => fsyncAsync(fd), close: () => closeSync(fd) };
}

/** fsyncs directory `dir`; rejects with the errno error of the open, fsync or close. */
export async function fsyncDirectory(dir: string): Promise<void> {
  const directory = await openDirectory(dir);
  try {
    await directory.sync();
  } finally {
    directory.close();
  }
}
