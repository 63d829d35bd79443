/**
 * The durable atomic replace of one small file: a new temp file beside the target, written
 * and fsynced, renamed over the target, then the directory fsynced. It took the place of
 * write-file-atomic, which paid on every write for what the state file does not need
 * (realpath, stat, chown, path-based chmod, an unlink of the renamed temp name, and signal
 * handlers installed and removed by signal-exit): 2.4× the CPU of the bare syscalls per write,
 * see docs/performance.md.
 */
import { randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fsyncDirectory } from '../util/fsync-dir.js';

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

/**
 * Replaces `path` with `data` (mode exactly `mode`, whatever the umask). Resolves once the new
 * content and its name are on disk: the temp file is fsynced before the rename and the
 * directory after it. Rejects with the errno error of the step that failed; the previous file
 * is then untouched and the temp file removed.
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
  let handle: FileHandle | undefined;
  let created = false;
  try {
    // 'wx' (O_EXCL): never writes into, or through a link at, a name that already exists.
    handle = await open(tmp, 'wx', mode);
    created = true;
    // open() applied the umask; the file must have exactly `mode`.
    await handle.chmod(mode);
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmp, path);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    if (created) await unlink(tmp).catch(() => undefined);
    throw err;
  } finally {
    pending.delete(tmp);
  }
  // The rename is durable only once the directory is: without this, a power cut can bring
  // back the previous file after the caller went on as if the new one were written.
  await fsyncDirectory(dirname(path));
}
