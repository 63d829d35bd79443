/**
 * The sliding-window pacer behind Discord's gateway command limit and REST global limit: at
 * most `limit` actions in any window, on an injected clock.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WindowPacer } from '../../src/util/window-pacer.js';

await test('at most `limit` actions in any window; room again when the oldest leaves it', () => {
  let now = 1_000;
  const pacer = new WindowPacer(3, 100, () => now);
  assert.equal(pacer.tryTake(), true);
  now += 10;
  assert.equal(pacer.tryTake(), true);
  assert.equal(pacer.tryTake(), true);
  assert.equal(pacer.tryTake(), false, 'the 4th within the window waits');
  assert.equal(pacer.waitMs(), 90, 'until the first action is 100 ms old');
  now += 90;
  assert.equal(pacer.waitMs(), 0);
  assert.equal(pacer.tryTake(), true);
  assert.equal(pacer.tryTake(), false, 'the two at t=1010 are still in the window');
  assert.equal(pacer.inWindow(), 3);
});

await test('a limit below 1 is refused', () => {
  assert.throws(() => new WindowPacer(0, 100), RangeError);
});
