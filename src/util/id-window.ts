/**
 * A bounded window of ids in the order they were added, each with the time it was added: the
 * pipeline's dedupe window and the delivery store's answered set, both asked once per event.
 *
 * Why not RecentMap: these ids are added once and never refreshed, so the age order needs no
 * linked list. The order is a ring of slots and an index finds an id's newest slot: no object
 * per entry, so an add allocates nothing once the ring is full.
 *
 * Why hashes, not the id strings: the answered set holds up to `delivery.max_entries` ids
 * (200,000 by default) for as long as the platform may replay them, and a QQ event id kept as
 * a string with its Map entry took about 100 bytes: 20 MB for a full set, loaded again at
 * every start. Each add here keeps a 64-bit hash of the id (two 32-bit halves) and its time,
 * 16 bytes in the ring, plus 4 bytes per index cell at most half full: about 5 MB for
 * 200,000 (docs/performance.md). The price is that two different ids with the same 64 bits
 * look like one: with the window full, a new id is taken for one already held with a
 * probability of about 200,000 / 2^64 (1e-14) per event, far below any other way to lose one.
 *
 * The ring starts small and doubles up to `capacity` as it fills, so an idle gateway does not
 * hold the whole capacity from the start; the index is rebuilt at each growth.
 */
const INITIAL_SLOTS = 1024;

export class IdWindow {
  /** The ring: each add's hash halves and time, oldest at `head`. */
  private hi: Uint32Array;
  private lo: Uint32Array;
  private times: Float64Array;
  private head = 0;
  /** Slots in use (an id added twice holds two until the older one is dropped). */
  private used = 0;
  /**
   * Open addressing with linear probing, at most half full: each cell holds 1 + the ring
   * slot of the newest add of a hash, 0 when empty.
   */
  private index: Int32Array;
  private mask: number;
  /** Distinct hashes held (cells in use). */
  private distinct = 0;

  /** Holds at most `capacity` adds (none when it is 0 or less). */
  constructor(readonly capacity: number) {
    const slots = Math.max(0, Math.min(capacity, INITIAL_SLOTS));
    this.hi = new Uint32Array(slots);
    this.lo = new Uint32Array(slots);
    this.times = new Float64Array(slots);
    this.index = new Int32Array(indexCells(slots));
    this.mask = this.index.length - 1;
  }

  /** Distinct ids held. */
  get size(): number {
    return this.distinct;
  }

  /** When `id` was last added, or undefined when it is not held. */
  addedAt(id: string): number | undefined {
    if (this.used === 0) return undefined;
    hash(id);
    const cell = this.find(lastHi, lastLo);
    return cell < 0 ? undefined : this.times[this.index[cell]! - 1];
  }

  /** Adds `id` at time `at` as the newest entry; beyond `capacity` the oldest is forgotten. */
  add(id: string, at: number): void {
    if (this.capacity <= 0) return;
    if (this.used === this.capacity) this.dropOldest();
    else if (this.used === this.hi.length) this.grow();
    const slot = this.slotAt(this.used);
    hash(id);
    const hi = lastHi;
    const lo = lastLo;
    this.hi[slot] = hi;
    this.lo[slot] = lo;
    this.times[slot] = at;
    this.used += 1;
    this.point(hi, lo, slot);
  }

  /** Forgets entries from the oldest on while they were added at or before `cutoff`. */
  dropAddedUpTo(cutoff: number): void {
    while (this.used > 0 && this.times[this.head]! <= cutoff) this.dropOldest();
  }

  /** The ring slot `offset` entries after the oldest. */
  private slotAt(offset: number): number {
    const slot = this.head + offset;
    return slot >= this.hi.length ? slot - this.hi.length : slot;
  }

  /** The cell of the hash, or -1 when it is not held. */
  private find(hi: number, lo: number): number {
    for (let cell = lo & this.mask; ; cell = (cell + 1) & this.mask) {
      const entry = this.index[cell]!;
      if (entry === 0) return -1;
      if (this.lo[entry - 1] === lo && this.hi[entry - 1] === hi) return cell;
    }
  }

  /** Makes the hash's cell point at `slot` (its newest add), taking a free cell if new. */
  private point(hi: number, lo: number, slot: number): void {
    for (let cell = lo & this.mask; ; cell = (cell + 1) & this.mask) {
      const entry = this.index[cell]!;
      if (entry === 0) {
        this.index[cell] = slot + 1;
        this.distinct += 1;
        return;
      }
      if (this.lo[entry - 1] === lo && this.hi[entry - 1] === hi) {
        this.index[cell] = slot + 1;
        return;
      }
    }
  }

  private dropOldest(): void {
    const slot = this.head;
    const cell = this.find(this.hi[slot]!, this.lo[slot]!);
    // An id added again since points at a newer slot: only its newest add decides.
    if (cell >= 0 && this.index[cell] === slot + 1) this.removeCell(cell);
    this.head = slot + 1 === this.hi.length ? 0 : slot + 1;
    this.used -= 1;
  }

  /** Empties `cell`, moving back later cells of its run so every probe still finds them. */
  private removeCell(cell: number): void {
    this.distinct -= 1;
    let hole = cell;
    for (let next = (hole + 1) & this.mask; ; next = (next + 1) & this.mask) {
      const entry = this.index[next]!;
      if (entry === 0) break;
      const home = this.lo[entry - 1]! & this.mask;
      // The entry may fill the hole unless its home lies cyclically in (hole, next].
      const homeAfterHole =
        hole <= next ? home > hole && home <= next : home > hole || home <= next;
      if (!homeAfterHole) {
        this.index[hole] = entry;
        hole = next;
      }
    }
    this.index[hole] = 0;
  }

  /** Twice the slots (at most `capacity`), the entries copied oldest first, the index rebuilt. */
  private grow(): void {
    const length = Math.min(this.capacity, this.hi.length * 2);
    const hi = new Uint32Array(length);
    const lo = new Uint32Array(length);
    const times = new Float64Array(length);
    for (let i = 0; i < this.used; i++) {
      const slot = this.slotAt(i);
      hi[i] = this.hi[slot]!;
      lo[i] = this.lo[slot]!;
      times[i] = this.times[slot]!;
    }
    this.hi = hi;
    this.lo = lo;
    this.times = times;
    this.head = 0;
    this.index = new Int32Array(indexCells(length));
    this.mask = this.index.length - 1;
    this.distinct = 0;
    // Oldest first, so an id added twice ends up pointing at its newest slot.
    for (let i = 0; i < this.used; i++) this.point(hi[i]!, lo[i]!, i);
  }
}

/** Index cells for `slots` ring slots: a power of two at least twice as many (at least 2). */
function indexCells(slots: number): number {
  let cells = 2;
  while (cells < slots * 2) cells *= 2;
  return cells;
}

/** murmur3's finalizer: every input bit reaches every output bit. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The id's 64-bit hash as two 32-bit halves, in one pass over its UTF-16 code units: FNV-1a
 * for one half, a multiply-rotate hash with other constants for the other, each mixed.
 * The last id hashed is remembered: the pipeline and the store ask about an event's id, then
 * add it.
 */
let lastId: string | null = null;
let lastHi = 0;
let lastLo = 0;

function hash(id: string): void {
  if (id === lastId) return;
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b = (b << 13) | (b >>> 19);
  }
  lastId = id;
  lastHi = mix(a ^ id.length);
  lastLo = mix(b ^ id.length);
}
