/**
 * The handled watermark of one position stream (one platform session): the highest position
 * at or below which every begun event has ended. Events end out of order (chats run
 * concurrently), so it is the lowest unfinished position minus one, not the last received.
 */
export class HandledWatermark {
  /** Begun positions in ascending order from `head`; `ended[i]` once position `i` ended. */
  private positions: number[] = [];
  private ended: boolean[] = [];
  private head = 0;
  /** The highest position that has ended (with nothing unfinished below it), or the floor. */
  private highest: number | null;

  /** `floor`: the watermark a previous process reached in this session, if any. */
  constructor(floor: number | null = null) {
    this.highest = floor;
  }

  /** The watermark now; null when nothing has ended in this stream and there is no floor. */
  get value(): number | null {
    if (this.head < this.positions.length) return this.positions[this.head]! - 1;
    return this.highest;
  }

  /** An event at `position` was handed to the pipeline. */
  begin(position: number): void {
    const last = this.positions[this.positions.length - 1];
    if (last === undefined || this.head === this.positions.length || position >= last) {
      this.positions.push(position);
      this.ended.push(false);
      return;
    }
    // Rare: a platform that delivers "mostly in order". Keep the live part sorted.
    let i = this.positions.length;
    while (i > this.head && this.positions[i - 1]! > position) i -= 1;
    this.positions.splice(i, 0, position);
    this.ended.splice(i, 0, false);
  }

  /** The event at `position` ended; returns true when the watermark moved. */
  end(position: number): boolean {
    // Binary search (the live part is sorted): a backlog of thousands replayed behind one
    // slow event must not make every end() a scan.
    let lo = this.head;
    let hi = this.positions.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.positions[mid]! < position) lo = mid + 1;
      else hi = mid;
    }
    let i = lo;
    while (i < this.positions.length && this.positions[i] === position && this.ended[i]) i += 1;
    if (i === this.positions.length || this.positions[i] !== position) return false;
    this.ended[i] = true;
    if (i !== this.head) return false;
    while (this.head < this.positions.length && this.ended[this.head]) {
      const p = this.positions[this.head]!;
      if (this.highest === null || p > this.highest) this.highest = p;
      this.head += 1;
    }
    if (this.head > 1024 && this.head * 2 > this.positions.length) {
      this.positions = this.positions.slice(this.head);
      this.ended = this.ended.slice(this.head);
      this.head = 0;
    }
    return true;
  }
}
