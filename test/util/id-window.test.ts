/**
 * IdWindow: the bound, the add order, an id added again, age-based dropping, and the same
 * answers as a plain Map + array model over a long random run.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IdWindow } from '../../src/util/id-window.js';

function held(window: IdWindow, candidates: readonly string[]): string[] {
  return candidates.filter((id) => window.addedAt(id) !== undefined);
}

await test('holds at most capacity adds, the oldest forgotten first, with their times', () => {
  const window = new IdWindow(3);
  for (const [i, id] of ['a', 'b', 'c', 'd', 'e'].entries()) window.add(id, i * 10);
  assert.equal(window.size, 3);
  assert.deepEqual(held(window, ['a', 'b', 'c', 'd', 'e']), ['c', 'd', 'e']);
  assert.equal(window.addedAt('c'), 20);
  assert.equal(window.addedAt('e'), 40);
  assert.equal(window.addedAt('a'), undefined);
});

await test('an id added again keeps its newest time when its older add is dropped', () => {
  const window = new IdWindow(3);
  window.add('a', 1);
  window.add('b', 2);
  window.add('a', 3); // two slots for a
  window.add('c', 4); // drops the first a: a stays, with time 3
  assert.equal(window.addedAt('a'), 3);
  assert.deepEqual(held(window, ['a', 'b', 'c']), ['a', 'b', 'c']);
  window.add('d', 5); // drops b
  window.add('e', 6); // drops the second a
  assert.deepEqual(held(window, ['a', 'b', 'c', 'd', 'e']), ['c', 'd', 'e']);
});

await test('dropAddedUpTo forgets from the oldest while added at or before the cutoff', () => {
  const window = new IdWindow(10);
  for (const [i, id] of ['a', 'b', 'c', 'd'].entries()) window.add(id, i);
  window.dropAddedUpTo(1);
  assert.deepEqual(held(window, ['a', 'b', 'c', 'd']), ['c', 'd']);
  window.dropAddedUpTo(-5);
  assert.equal(window.size, 2);
  window.dropAddedUpTo(100);
  assert.equal(window.size, 0);
  // Empty and wrapped around: adds go on where the ring stands.
  for (let i = 0; i < 25; i++) window.add(`x${i}`, 200 + i);
  assert.equal(window.size, 10);
  assert.equal(window.addedAt('x15'), 215);
  assert.equal(window.addedAt('x14'), undefined);
});

await test('capacity 0 holds nothing', () => {
  const window = new IdWindow(0);
  window.add('a', 1);
  assert.equal(window.size, 0);
  assert.equal(window.addedAt('a'), undefined);
  window.dropAddedUpTo(10);
});

/** Random adds and age drops, every answer checked against a plain array model. */
function modelRun(
  capacity: number,
  pool: number,
  steps: number,
  maxAge: number,
  sizeEvery = 1,
): void {
  const window = new IdWindow(capacity);
  const order: Array<{ id: string; at: number }> = [];
  let seed = 12345;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  let now = 0;
  for (let step = 0; step < steps; step++) {
    now += Math.floor(random() * 3);
    const id = `id${Math.floor(random() * pool)}`;
    if (random() < 0.05) {
      const cutoff = now - maxAge;
      window.dropAddedUpTo(cutoff);
      while (order.length > 0 && order[0]!.at <= cutoff) order.shift();
    } else {
      window.add(id, now);
      order.push({ id, at: now });
      if (order.length > capacity) order.shift();
    }
    const probe = `id${Math.floor(random() * pool)}`;
    const newest = order.findLast((e) => e.id === probe);
    assert.equal(window.addedAt(probe), newest?.at, `step ${step}, ${probe}`);
    if (step % sizeEvery === 0) {
      assert.equal(window.size, new Set(order.map((e) => e.id)).size, `step ${step}`);
    }
  }
}

await test('answers like a Map + array model over a long random run', () => {
  modelRun(97, 300, 20_000, 40);
});

await test('answers like the model while its ring grows, wrapped around, up to capacity', () => {
  // Past the first 1,024 slots: growths happen with the oldest entry anywhere in the ring.
  modelRun(3_000, 6_000, 30_000, 3_000, 500);
});

await test('a growth with the oldest entry mid-ring keeps every id and time', () => {
  const window = new IdWindow(4_096);
  for (let i = 0; i < 1_000; i++) window.add(`a${i}`, i);
  window.dropAddedUpTo(599); // the oldest now sits at slot 600 of the first 1,024
  for (let i = 1_000; i < 2_500; i++) window.add(`a${i}`, i); // wraps, then grows twice
  assert.equal(window.size, 1_900);
  for (let i = 0; i < 2_500; i++) {
    assert.equal(window.addedAt(`a${i}`), i < 600 ? undefined : i, `a${i}`);
  }
  for (let i = 2_500; i < 7_000; i++) window.add(`a${i}`, i); // full: the oldest go
  assert.equal(window.size, 4_096);
  assert.equal(window.addedAt('a2903'), undefined);
  assert.equal(window.addedAt('a2904'), 2_904);
  assert.equal(window.addedAt('a6999'), 6_999);
});

await test('ids that differ in one character, in length or only by order are different ids', () => {
  const window = new IdWindow(100);
  const ids = ['a', 'b', 'ab', 'ba', 'a\u0000', '', 'ROBOT1.0_x', 'ROBOT1.0_y', '今天', '天今'];
  for (const [i, id] of ids.entries()) window.add(id, i);
  assert.equal(window.size, ids.length);
  for (const [i, id] of ids.entries()) assert.equal(window.addedAt(id), i, JSON.stringify(id));
  assert.equal(window.addedAt('c'), undefined);
});

await test('a full answered set of 200,000 event ids: every one held, none of 200,000 others taken for one', () => {
  // The ids are held as 64-bit hashes: a new id mistaken for a held one would be dropped as a
  // duplicate. Ids in the shape of QQ's, from a seeded generator.
  let seed = 42;
  const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const eventId = (): string => {
    let text = 'ROBOT1.0_';
    for (let i = 0; i < 24; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      text += letters[seed % letters.length];
    }
    return text;
  };
  const window = new IdWindow(200_000);
  const held: string[] = [];
  for (let i = 0; i < 200_000; i++) {
    const id = eventId();
    held.push(id);
    window.add(id, i);
  }
  assert.equal(window.size, 200_000);
  for (let i = 0; i < held.length; i += 997) assert.equal(window.addedAt(held[i]!), i);
  const known = new Set(held);
  let mistaken = 0;
  for (let i = 0; i < 200_000; i++) {
    const id = eventId();
    if (!known.has(id) && window.addedAt(id) !== undefined) mistaken += 1;
  }
  assert.equal(mistaken, 0);
});
