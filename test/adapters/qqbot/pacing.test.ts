/**
 * Reconnect pacing, measured from below at the fake: the gaps between the adapter's
 * connection attempts must be at least the configured backoff steps (a reconnect storm is as
 * bad as no reconnect), and not absurdly longer. With jitter on, every gap must stay within
 * the documented range: jitter only shortens a step, by at most a quarter
 * (docs/platforms/qqbot.md, `reconnect.backoff_ms`).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withHarness, type QQHarness } from './harness.js';

/** Timers never fire early; this only absorbs millisecond rounding of the two clocks' reads. */
const EARLY_TOLERANCE_MS = 3;
/** A loaded 2-core machine can be late by this much; a step far beyond it is a bug too. */
const LATE_SLACK_MS = 1_000;

/**
 * Refuses every reconnect after a 4009 close and returns the gaps between the close and each
 * attempt the fake saw (the refused upgrades), in ms.
 */
async function attemptGaps(h: QQHarness, attempts: number): Promise<number[]> {
  await h.connected();
  h.fake.refuseConnections();
  h.fake.closeClient(4009, 'pacing test');
  await h.fake.until(
    () => h.fake.refusedUpgrades.length >= attempts,
    10_000,
    `${attempts} reconnect attempts`,
  );
  const closedAt = h.fake.disconnects[0]!.at;
  const times = [closedAt, ...h.fake.refusedUpgrades.slice(0, attempts).map((r) => r.at)];
  return times.slice(1).map((at, i) => at - times[i]!);
}

/**
 * Asserts gap i is within [shortest × step i − tolerance, step i + slack]: `shortest` is 1
 * without jitter, 0.75 with it (jitter only shortens, by at most a quarter).
 */
function assertPaced(gaps: number[], expected: number[], shortest: number): void {
  expected.forEach((step, i) => {
    const gap = gaps[i]!;
    const all = `(gaps ${gaps.join(', ')} for steps ${expected.join(', ')})`;
    assert.ok(
      gap >= shortest * step - EARLY_TOLERANCE_MS,
      `attempt ${i + 1} came ${gap} ms after the previous, below ${shortest} × its ${step} ms step ${all}`,
    );
    assert.ok(
      gap <= step + LATE_SLACK_MS,
      `attempt ${i + 1} came ${gap} ms after the previous, far beyond its ${step} ms step ${all}`,
    );
  });
}

await test('jitter off: each reconnect waits its configured step (the last step repeats)', async () => {
  const steps = [40, 80, 160];
  const expected = [40, 80, 160, 160, 160];
  await withHarness(
    { config: { jitter: false, reconnect: { backoff_ms: steps, max_attempts: 10 } } },
    async (h) => {
      assertPaced(await attemptGaps(h, expected.length), expected, 1);
      // The persisted wait reason is the backoff, attempt by attempt.
      const attempts = h.states
        .filter((d) => d.platforms.qqbot?.detail === 'backoff')
        .map((d) => d.platforms.qqbot?.reconnect_attempt);
      assert.deepEqual(attempts.slice(0, expected.length), [1, 2, 3, 4, 5]);
    },
  );
});

await test('jitter on: each wait stays within [0.75 × step, step], also at the most jitter', async () => {
  const steps = [200, 400];
  const expected = [200, 400, 400];
  // The largest draw jitter can get: every wait is as short as the documented range allows.
  await withHarness(
    {
      config: { jitter: true, reconnect: { backoff_ms: steps, max_attempts: 10 } },
      random: () => 0.999_999,
    },
    async (h) => assertPaced(await attemptGaps(h, expected.length), expected, 0.75),
  );
});

await test('jitter on with Math.random: every wait within [0.75 × step, step + slack]', async () => {
  const steps = [100, 200];
  const expected = [100, 200, 200, 200];
  await withHarness(
    { config: { jitter: true, reconnect: { backoff_ms: steps, max_attempts: 10 } } },
    async (h) => assertPaced(await attemptGaps(h, expected.length), expected, 0.75),
  );
});
