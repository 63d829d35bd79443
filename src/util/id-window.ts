/**
 * A bounded window of ids in the order they were added, each with the time it was added: the
 * pipeline's dedupe window and the delivery store's answered set, both asked once per event.
 *
 * Why not RecentMap: these ids are added once and never refreshed, so the age order needs no
 * linked list. The order is a ring of slots (the ids in an array, their times in a
 * Float64Array) and the Map holds only id → the add's sequence number: no object per entry,
 * no boxed time, so an add allocates nothing once the ring is full and an entry costs about
 * half the memory. Measured in the pipeline bench (docs/performance.md).
 *
 * The ring starts small and doubles up to `capacity` as it fills: the answered set's default
 * of 200,000 ids would otherwise take 3 MB of an idle gateway's memory at start. Sequence
 * numbers, not slot indexes, are what the Map holds, so a growth copies the ring without
 * touching the Map.
 */
const INITIAL_SLOTS = 1024;

export class IdWindow {
  /** id → the sequence number of its newest add. */
  private readonly seqs = new Map<string, number>();
  private ids: Array<string | undefined>;
  private times: Float64Array;
  /** The slot of the oldest entry. */
  private head = 0;
  /** The sequence number of the oldest entry (the next add's is headSeq + used). */
  private headSeq = 0;
  /** Slots in use (an id added twice holds two until the older one is dropped). */
  private used = 0;

  /** Holds at most `capacity` adds (none when it is 0 or less). */
  constructor(readonly capacity: number) {
    const slots = Math.max(0, Math.min(capacity, INITIAL_SLOTS));
    this.ids = new Array<string | undefined>(slots).fill(undefined);
    this.times = new Float64Array(slots);
  }

  /** Distinct ids held. */
  get size(): number {
    return this.seqs.size;
  }

  /** When `id` was last added, or undefined when it is not held. */
  addedAt(id: string): number | undefined {
    const seq = this.seqs.get(id);
    return seq === undefined ? undefined : this.times[this.slotOf(seq)];
  }

  /** Adds `id` at time `at` as the newest entry; beyond `capacity` the oldest is forgotten. */
  add(id: string, at: number): void {
    if (this.capacity <= 0) return;
    if (this.used === this.capacity) this.dropOldest();
    else if (this.used === this.ids.length) this.grow();
    const seq = this.headSeq + this.used;
    const slot = this.slotOf(seq);
    this.ids[slot] = id;
    this.times[slot] = at;
    this.used += 1;
    this.seqs.set(id, seq);
  }

  /** Forgets entries from the oldest on while they were added at or before `cutoff`. */
  dropAddedUpTo(cutoff: number): void {
    while (this.used > 0 && this.times[this.head]! <= cutoff) this.dropOldest();
  }

  private slotOf(seq: number): number {
    const slot = this.head + (seq - this.headSeq);
    return slot >= this.ids.length ? slot - this.ids.length : slot;
  }

  /** Twice the slots (at most `capacity`), the entries copied oldest first from slot 0. */
  private grow(): void {
    const length = Math.min(this.capacity, this.ids.length * 2);
    const ids = new Array<string | undefined>(length).fill(undefined);
    const times = new Float64Array(length);
    for (let i = 0; i < this.used; i++) {
      const slot = this.slotOf(this.headSeq + i);
      ids[i] = this.ids[slot];
      times[i] = this.times[slot]!;
    }
    this.ids = ids;
    this.times = times;
    this.head = 0;
  }

  private dropOldest(): void {
    const slot = this.head;
    const id = this.ids[slot]!;
    // An id added again since holds a newer sequence number: only its newest add decides.
    if (this.seqs.get(id) === this.headSeq) this.seqs.delete(id);
    this.ids[slot] = undefined;
    this.head = slot + 1 === this.ids.length ? 0 : slot + 1;
    this.headSeq += 1;
    this.used -= 1;
  }
}
