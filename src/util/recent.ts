/**
 * A bounded map of recently set keys (dedupe windows, per-message counters).
 *
 * Why not a bare Map evicted through `map.keys().next()`: V8 leaves a deleted entry in its
 * table as a hole until the next rehash, and a fresh iterator walks every hole from the
 * start, so evicting the oldest of 10,000 entries costs microseconds per add (measured on
 * Node 20: about 4.4 µs at 10,000 entries, 0.9 µs at 4,096). Here the age order is a doubly
 * linked list beside the Map: every operation is O(1), about 0.17 µs per add at any size.
 */

interface Node<K, V> {
  key: K;
  value: V;
  /** Towards the oldest entry. */
  older: Node<K, V> | null;
  /** Towards the newest entry. */
  newer: Node<K, V> | null;
}

export class RecentMap<K, V> {
  private readonly nodes = new Map<K, Node<K, V>>();
  private oldest: Node<K, V> | null = null;
  private newest: Node<K, V> | null = null;

  /** Holds at most `maxEntries` keys (none when it is 0 or less). */
  constructor(readonly maxEntries: number) {}

  get size(): number {
    return this.nodes.size;
  }

  has(key: K): boolean {
    return this.nodes.has(key);
  }

  get(key: K): V | undefined {
    return this.nodes.get(key)?.value;
  }

  /**
   * Sets `key` to `value` and makes it the newest entry (also when it was already there);
   * beyond `maxEntries` the oldest entry is forgotten.
   */
  set(key: K, value: V): void {
    if (this.maxEntries <= 0) return;
    let node = this.nodes.get(key);
    if (node !== undefined) {
      node.value = value;
      if (node !== this.newest) {
        this.unlink(node);
        this.append(node);
      }
      return;
    }
    const evicted = this.nodes.size >= this.maxEntries ? this.oldest : null;
    if (evicted !== null) {
      // The oldest node is taken over by the new key: no allocation once the map is full.
      this.unlink(evicted);
      this.nodes.delete(evicted.key);
      node = evicted;
      node.key = key;
      node.value = value;
    } else {
      node = { key, value, older: null, newer: null };
    }
    this.append(node);
    this.nodes.set(key, node);
  }

  /** Forgets `key`; false when it was not there. */
  delete(key: K): boolean {
    const node = this.nodes.get(key);
    if (node === undefined) return false;
    this.unlink(node);
    this.nodes.delete(key);
    return true;
  }

  /** Forgets entries from the oldest on while `expired` holds; stops at the first that does not. */
  dropOldestWhile(expired: (value: V, key: K) => boolean): void {
    for (let node = this.oldest; node !== null && expired(node.value, node.key);) {
      const next = node.newer;
      this.unlink(node);
      this.nodes.delete(node.key);
      node = next;
    }
  }

  private append(node: Node<K, V>): void {
    node.older = this.newest;
    node.newer = null;
    if (this.newest !== null) this.newest.newer = node;
    else this.oldest = node;
    this.newest = node;
  }

  private unlink(node: Node<K, V>): void {
    if (node.older !== null) node.older.newer = node.newer;
    else this.oldest = node.newer;
    if (node.newer !== null) node.newer.older = node.older;
    else this.newest = node.older;
    node.older = null;
    node.newer = null;
  }
}
