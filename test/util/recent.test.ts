/**
 * RecentMap: the bound, the age order (set again = newest), deletes, age-based eviction, and
 * the same answers as the plain Map it replaced over a long random run.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecentMap } from '../../src/util/recent.js';

function keys<K, V>(map: RecentMap<K, V>, candidates: readonly K[]): K[] {
  return candidates.filter((k) => map.has(k));
}

await test('holds at most maxEntries keys, the oldest forgotten first', () => {
  const map = new RecentMap<string, number>(3);
  for (const [i, key] of ['a', 'b', 'c', 'd', 'e'].entries()) map.set(key, i);
  assert.equal(map.size, 3);
  assert.deepEqual(keys(map, ['a', 'b', 'c', 'd', 'e']), ['c', 'd', 'e']);
  assert.equal(map.get('c'), 2);
  assert.equal(map.get('a'), undefined);
});

await test('setting a key again updates it and makes it the newest', () => {
  const map = new RecentMap<string, number>(3);
  map.set('a', 1);
  map.set('b', 1);
  map.set('c', 1);
  map.set('a', 2); // a is now the newest: b goes first
  map.set('d', 1);
  assert.deepEqual(keys(map, ['a', 'b', 'c', 'd']), ['a', 'c', 'd']);
  assert.equal(map.get('a'), 2);
  map.set('d', 3); // already the newest
  map.set('e', 1);
  assert.deepEqual(keys(map, ['a', 'c', 'd', 'e']), ['a', 'd', 'e']);
});

await test('delete forgets a key anywhere in the order', () => {
  const map = new RecentMap<string, number>(3);
  for (const key of ['a', 'b', 'c']) map.set(key, 0);
  assert.equal(map.delete('b'), true);
  assert.equal(map.delete('b'), false);
  map.set('d', 0);
  assert.deepEqual(keys(map, ['a', 'b', 'c', 'd']), ['a', 'c', 'd']);
  assert.equal(map.delete('a'), true);
  assert.equal(map.delete('d'), true);
  assert.equal(map.delete('c'), true);
  assert.equal(map.size, 0);
  map.set('x', 1);
  assert.deepEqual(keys(map, ['x']), ['x']);
});

await test('dropOldestWhile stops at the first entry that is not expired', () => {
  const map = new RecentMap<string, number>(10);
  map.set('a', 1);
  map.set('b', 5);
  map.set('c', 2);
  map.dropOldestWhile((at) => at < 3);
  // c is old too, but b (not expired) stands before it: the order is by set, not by value.
  assert.deepEqual(keys(map, ['a', 'b', 'c']), ['b', 'c']);
  map.dropOldestWhile(() => true);
  assert.equal(map.size, 0);
  map.dropOldestWhile(() => true);
  map.set('d', 0);
  assert.equal(map.get('d'), 0);
});

await test('maxEntries 0 remembers nothing', () => {
  const map = new RecentMap<string, boolean>(0);
  map.set('a', true);
  assert.equal(map.has('a'), false);
  assert.equal(map.size, 0);
});

await test('answers like a Map evicted through its insertion order, over a random run', () => {
  const max = 50;
  const map = new RecentMap<number, number>(max);
  const reference = new Map<number, number>();
  let seed = 42;
  const random = (n: number): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed % n;
  };
  for (let i = 0; i < 20_000; i++) {
    const key = random(200);
    const op = random(10);
    if (op < 7) {
      map.set(key, i);
      reference.delete(key);
      reference.set(key, i);
      if (reference.size > max) reference.delete(reference.keys().next().value!);
    } else if (op < 9) {
      assert.equal(map.delete(key), reference.delete(key));
    } else {
      const cutoff = i - 100;
      map.dropOldestWhile((at) => at < cutoff);
      for (const [k, at] of reference) {
        if (at >= cutoff) break;
        reference.delete(k);
      }
    }
    assert.equal(map.size, reference.size);
    assert.equal(map.get(key), reference.get(key));
  }
  for (let key = 0; key < 200; key++) assert.equal(map.get(key), reference.get(key));
});
