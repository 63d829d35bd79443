/**
 * A bounded window of ids in the order they were added, each with the time it was added: the
 * pipeline's dedupe window and the delivery store's answered set, both asked once per event.
 *
 * Why not RecentMap: these ids are added once and never refreshed, so the age order needs no
 * linked list. The order is a ring of slots (the ids in an array, their times in a
 * Float64Array) and the Map holds only id → slot: no object per entry, no boxed time, so an
 * add allocates nothing once the ring is full and an entry costs about half the memory.
 * Measured in the pipeline bench (docs/performance.md).
 */
export class IdWindow {
  /** id → the slot of its newest add. */
  private readonly slots = new Map<string, number>();
  private readonly ids: Array<string | undefined>;
  private readonly times: Float64Array;
  /** The slot of the oldest entry. */
  private head = 0;
  /** Slots in use (an id added twice holds two until the older one is dropped). */
  private used = 0;

  /** Holds at most `capacity` adds (none when it is 0 or less). */
  constructor(readonly capacity: number) {
    const slots = Math.max(0, capacity);
    this.ids = new Array<string | undefined>(slots).fill(undefined);
    this.times = new Float64Array(slots);
  }

  /** Distinct ids held. */
  get size(): number {
    return this.slots.size;
  }

  /** When `id` was last added, or undefined when it is not held. */
  addedAt(id: string): number | undefined {
    const slot = this.slots.get(id);
    return slot === undefined ? undefined : this.times[slot];
  }

  /** Adds `id` at time `at` as the newest entry; beyond `capacity` the oldest is forgotten. */
  add(id: string, at: number): void {
    if (this.capacity <= 0) return;
    if (this.used === this.capacity) this.dropOldest();
    let slot = this.head + this.used;
    if (slot >= this.capacity) slot -= this.capacity;
    this.ids[slot] = id;
    this.times[slot] = at;
    this.used += 1;
    this.slots.set(id, slot);
  }

  /** Forgets entries from the oldest on while they were added at or before `cutoff`. */
  dropAddedUpTo(cutoff: number): void {
    while (this.used > 0 && this.times[this.head]! <= cutoff) this.dropOldest();
  }

  private dropOldest(): void {
    const slot = this.head;
    const id = this.ids[slot]!;
    // An id added again since holds a newer slot: only its newest add decides.
    if (this.slots.get(id) === slot) this.slots.delete(id);
    this.ids[slot] = undefined;
    this.head = slot + 1 === this.capacity ? 0 : slot + 1;
    this.used -= 1;
  }
}
