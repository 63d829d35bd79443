/** An open-loop load generator: events go out on schedule whether or not replies came back. */
import { sleep } from './util.js';

/**
 * Calls `send(i)` for i = 0..total-1 at `ratePerSec`, catching up on every timer tick (about
 * 1 ms), so the schedule holds on average even when a tick is late. Resolves when all are sent.
 */
export async function openLoop(
  ratePerSec: number,
  total: number,
  send: (i: number) => void,
): Promise<{ seconds: number }> {
  const start = performance.now();
  let i = 0;
  while (i < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * ratePerSec) + 1);
    while (i < due) send(i++);
    if (i < total) await sleep(1);
  }
  return { seconds: (performance.now() - start) / 1000 };
}
