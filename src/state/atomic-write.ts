/**
 * The durable atomic replace of one small file: a new temp file beside the target, written
 * and fsynced, renamed over the target, then the directory fsynced. It took the place of
 * write-file-atomic, which paid on every write for what the state file does not need
 * (realpath, stat, chown, path-based chmod, an unlink of the renamed temp name, and signal
 * handlers installed and removed by signal-exit).
 *
 * Only the steps that wait for the disk or the journal (the two fsyncs and the rename) go to
 * libuv's thread pool. Creating, writing and closing a file of a few KiB touch the page
 * cache alone: done on the calling thread they cost tens of microseconds, where each round
 * trip to the pool costs a wake-up of the event loop, which on a small VM costs as much as
 * the fsync itself. Figures in docs/performance.md.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsync, openSync, rename, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { openDirectory } from '../util/fsync-dir.js';

const fsyncAsync = promisify(fsync);
const renameAsync = promisify(rename);

/** Temp files that may exist now: removed if the process exits in the middle of a write. */
const pending = new Set<string>();
let exitHookInstalled = false;

function removeQuietly(tmp: string): void {
  try {
    unlinkSync(tmp);
  } catch {
    // Not created yet, or already gone.
  }
}

function removePending(): void {
  for (const tmp of pending) removeQuietly(tmp);
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Nothing to add to the failure being reported.
  }
}

/**
 * Replaces `path` with `data` (mode exactly `mode`, whatever the umask). Resolves once the new
 * content and its name are on disk: the temp file is written and fsynced before the rename,
 * the directory fsynced after it. Rejects with the errno error of the step that failed; the
 * previous file is then untouched (unless the directory fsync failed after the rename) and
 * the temp file removed.
 */
export async function replaceFileDurably(path: string, data: string, mode: number): Promise<void> {
  if (!exitHookInstalled) {
    // Once per process, not per write: listeners added and removed per write cost syscalls.
    process.on('exit', removePending);
    exitHookInstalled = true;
  }
  const directory = openDirectory(dirname(path));
  // Random, so that no other process or earlier run picks the same name.
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  pending.add(tmp);
  try {
    // 'wx' (O_EXCL): never writes into, or through a link at, a name that already exists.
    const fd = openSync(tmp, 'wx', mode);
    try {
      // open() applied the umask: the mode is set again before the fsync, so the file
      // reaches the disk and its name with this mode.
      fchmodSync(fd, mode);
      writeFileSync(fd, data);
      await fsyncAsync(fd);
    } catch (err) {
      closeQuietly(fd);
      removeQuietly(tmp);
      throw err;
    }
    try {
      closeSync(fd);
      await renameAsync(tmp, path);
    } catch (err) {
      removeQuietly(tmp);
      throw err;
    }
    // The rename is durable only once the directory is: without this, a power cut can bring
    // back the previous file after the caller went on as if the new one were written.
    await directory.sync();
  } finally {
    pending.delete(tmp);
    directory.close();
  }
}
