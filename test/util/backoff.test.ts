/**
 * Backoff steps, cap, jitter bounds, and a sleep that a stop ends at once.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff, sleep } from '../../src/util/backoff.js';

await test('steps are used in order and the last one repeats as the cap', () => {
  const backoff = new Backoff({ stepsMs: [2_000, 5_000, 10_000, 30_000, 60_000], jitterRatio: 0 });
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 50].map((a) => backoff.delayFor(a)),
    [2_000, 5_000, 10_000, 30_000, 60_000, 60_000, 60_000],
  );
  assert.equal(backoff.delayFor(0), 2_000);
  assert.equal(backoff.totalFor(3), 17_000);
});

await test('jitter only shortens a step, by at most the ratio', () => {
  const low = new Backoff({ stepsMs: [1_000], jitterRatio: 0.25, random: () => 0.999999 });
  const high = new Backoff({ stepsMs: [1_000], jitterRatio: 0.25, random: () => 0 });
  assert.equal(low.delayFor(1), 750);
  assert.equal(high.delayFor(1), 1_000);
  const real = new Backoff({ stepsMs: [1_000], jitterRatio: 0.25 });
  for (let i = 0; i < 100; i++) {
    const ms = real.delayFor(1);
    assert.ok(ms >= 750 && ms <= 1_000, String(ms));
  }
});

await test('bad steps are refused', () => {
  assert.throws(() => new Backoff({ stepsMs: [], jitterRatio: 0 }), RangeError);
  assert.throws(() => new Backoff({ stepsMs: [-1], jitterRatio: 0 }), RangeError);
});

await test('sleep resolves true after the wait, false at once when aborted', async () => {
  const controller = new AbortController();
  assert.equal(await sleep(5, controller.signal), true);
  const started = Date.now();
  const pending = sleep(60_000, controller.signal);
  controller.abort();
  assert.equal(await pending, false);
  assert.ok(Date.now() - started < 100);
  assert.equal(await sleep(10, controller.signal), false, 'an aborted signal never waits');
});
