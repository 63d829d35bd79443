/**
 * A rename is durable only once the directory holding the new name is on disk: after a
 * crash, an fsynced file may otherwise come back under its old name (or not at all).
 */
import { closeSync, fsync, openSync } from 'node:fs';
import { promisify } from 'node:util';

const fsyncAsync = promisify(fsync);

/** An open directory, kept for an fsync after a rename in it. */
export interface OpenDirectory {
  /** fsyncs the directory on libuv's thread pool; rejects with the errno error. */
  sync(): Promise<void>;
  /** Closes it. Closing a read-only directory descriptor does no I/O. */
  close(): void;
}

/**
 * Opens directory `dir` (read-only, as POSIX allows) for an fsync, on the calling thread:
 * opening an existing directory reads no more than its inode, which costs microseconds where
 * a round trip to the thread pool costs a wake-up. The caller may open it before the rename
 * it makes durable, as long as it fsyncs it after; it closes it. Throws the errno error.
 */
export function openDirectory(dir: string): OpenDirectory {
  const fd = openSync(dir, 'r');
  return { sync: () => fsyncAsync(fd), close: () => closeSync(fd) };
}
