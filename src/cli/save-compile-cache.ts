/**
 * When the bundled CLI writes its compile cache (src/cli/compile-cache.ts): right after a
 * daemon's READY=1.
 */
import type { Logger } from '../log/logger.js';
import { onReady, type Notifier } from '../systemd/notify.js';
import { compileCacheHandle } from './compile-cache.js';

/**
 * The notifier, with the compile cache written right after READY=1 goes out: by then the
 * start has compiled everything it runs, and READY is not held up by the write. Only a
 * daemon's start is cached (`run`, `worker`); a failed write costs the next start its speed,
 * nothing else, so it is logged at debug.
 */
export function savingCompileCacheOnReady(notifier: Notifier, log: Logger): Notifier {
  const handle = compileCacheHandle();
  if (handle === undefined) return notifier;
  let saved = false;
  return onReady(notifier, () => {
    if (saved) return;
    saved = true;
    setImmediate(() => {
      const result = handle.save();
      log.debug({ status: handle.status, file: handle.file, ...result }, 'compile cache');
    });
  });
}
