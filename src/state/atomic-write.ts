/**
 * The durable atomic replace of one small file: a new temp file beside the target, written
 * and fsynced, renamed over the target, then the directory fsynced. It took the place of
 * write-file-atomic, which paid on every write for what the state file does not need
 * (realpath, stat, chown, path-based chmod, an unlink of the renamed temp name, and signal
 * handlers installed and removed by signal-exit), and it overlaps the steps whose order does
 * not matter: each step is a round trip to libuv's thread pool, and on a busy machine those
 * waits cost as much as the fsyncs. Figures in docs/performance.md.
 */
import { randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { openDirectory, type OpenDirectory } from '../util/fsync-dir.js';

/** Temp files that may exist now: removed if the process exits in the middle of a write. */
const pending = new Set<string>();
let exitHookInstalled = false;

function removePending(): void {
  for (const tmp of pending) {
    try {
      unlinkSync(tmp);
    } catch {
      // Not created yet, or already gone.
    }
  }
}

/** Waits for every operation, then rejects with the first failure, if any. */
async function settleAll(operations: Array<Promise<unknown>>): Promise<void> {
  for (const result of await Promise.allSettled(operations)) {
    if (result.status === 'rejected') throw result.reason;
  }
}

/**
 * Replaces `path` with `data` (mode exactly `mode`, whatever the umask). Resolves once the new
 * content and its name are on disk: the temp file is written and fsynced before the rename,
 * the directory fsynced after it. Rejects with the errno error of the step that failed; the
 * previous file is then untouched (unless only closing failed after the rename) and the temp
 * file removed.
 */
export async function replaceFileDurably(path: string, data: string, mode: number): Promise<void> {
  if (!exitHookInstalled) {
    // Once per process, not per write: listeners added and removed per write cost syscalls.
    process.on('exit', removePending);
    exitHookInstalled = true;
  }
  // Random, so that no other process or earlier run picks the same name.
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  // Before the open: the file exists as soon as the open completes, before we hear of it.
  pending.add(tmp);
  // The directory is opened now, beside the temp file: only its fsync must follow the rename.
  // 'wx' (O_EXCL): never writes into, or through a link at, a name that already exists.
  const [file, directory] = await Promise.allSettled([
    open(tmp, 'wx', mode),
    openDirectory(dirname(path)),
  ]);
  if (file.status === 'rejected' || directory.status === 'rejected') {
    if (file.status === 'fulfilled') await discard(file.value, tmp);
    if (directory.status === 'fulfilled') closeQuietly(directory.value);
    pending.delete(tmp);
    throw file.status === 'rejected' ? file.reason : (directory as PromiseRejectedResult).reason;
  }
  try {
    await writeAndRename(file.value, tmp, path, data, mode);
    // The rename is durable only once the directory is: without this, a power cut can bring
    // back the previous file after the caller went on as if the new one were written.
    await directory.value.sync();
  } catch (err) {
    closeQuietly(directory.value);
    throw err;
  } finally {
    pending.delete(tmp);
  }
  directory.value.close();
}

/** Closes a directory after a failure: the first error is the one to report. */
function closeQuietly(directory: OpenDirectory): void {
  try {
    directory.close();
  } catch {
    // Nothing to add to the failure being reported.
  }
}

/** Writes, fsyncs and closes the new temp file and renames it over `path`. */
async function writeAndRename(
  handle: FileHandle,
  tmp: string,
  path: string,
  data: string,
  mode: number,
): Promise<void> {
  try {
    // open() applied the umask: the mode is set again, beside the write; both end before
    // the fsync, so the file reaches the disk and its name with this mode.
    await settleAll([handle.chmod(mode), handle.writeFile(data)]);
    await handle.sync();
  } catch (err) {
    await discard(handle, tmp);
    throw err;
  }
  // The data is on disk; the descriptor plays no part in the rename, so it closes meanwhile.
  const [closed, renamed] = await Promise.allSettled([handle.close(), rename(tmp, path)]);
  if (renamed.status === 'rejected') {
    await unlink(tmp).catch(() => undefined);
    throw renamed.reason;
  }
  if (closed.status === 'rejected') throw closed.reason;
}

/** Closes and removes a temp file that will not be renamed; errors here change nothing. */
async function discard(handle: FileHandle, tmp: string): Promise<void> {
  await handle.close().catch(() => undefined);
  await unlink(tmp).catch(() => undefined);
}
