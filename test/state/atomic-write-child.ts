/**
 * Child process of atomic-write.test.ts: the real StateStore writing to `path`, in a process
 * the test can limit or end mid-write. Argv: <path> <mode>.
 * - `fail`: one commit, run under `ulimit -f 0` so that the write into the temp file fails
 *   (EFBIG) after the temp file was created; prints the error's code and errno.
 * - `exit`: one commit, then a second one during which the process exits as soon as the temp
 *   file exists on disk.
 */
import { readdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import pino from 'pino';
import { isGatewayError } from '../../src/errors.js';
import { StateStore } from '../../src/state/store.js';

const [path, mode] = process.argv.slice(2);
if (path === undefined || mode === undefined) throw new Error('usage: <path> fail|exit');
const store = new StateStore({ path, heartbeatIntervalMs: 60_000, log: pino({ level: 'silent' }) });

if (mode === 'fail') {
  // Past RLIMIT_FSIZE the kernel sends SIGXFSZ (which would kill us) and write() fails with
  // EFBIG: ignore the signal to see the error.
  process.on('SIGXFSZ', () => undefined);
  const outcome = await store.commit().then(
    () => ({ code: 'none', errno: 'none' }),
    (err: unknown) => ({
      code: isGatewayError(err) ? err.code : 'not a GatewayError',
      errno: isGatewayError(err) ? String(err.details.errno) : 'none',
    }),
  );
  process.stdout.write(JSON.stringify(outcome) + '\n');
} else if (mode === 'exit') {
  await store.commit();
  const dir = dirname(path);
  const name = basename(path);
  void store.commit();
  // Queued after the write's own microtask, which creates and fills the temp file on this
  // thread and then waits for its fsync on libuv's thread pool: this loop sees the temp file
  // while the fsync is still out, so the process exits with the write not finished.
  queueMicrotask(() => {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (readdirSync(dir).some((entry) => entry !== name)) {
        process.stdout.write('exiting mid-write\n');
        process.exit(3);
      }
    }
    process.stdout.write('the temp file never appeared\n');
    process.exit(4);
  });
} else {
  throw new Error(`unknown mode ${mode}`);
}
