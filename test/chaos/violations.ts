/** The invariant violations of a chaos run, each with the run time it was found at. */

export interface Violation {
  /** Milliseconds since the start of the run. */
  atMs: number;
  /** Which invariant (`state-file`, `state-truth`, `delivery`, `process`, ...). */
  invariant: string;
  detail: string;
}

export class Violations {
  readonly list: Violation[] = [];
  /** Called for every violation as it is found (the run's trace). */
  onAdd: ((violation: Violation) => void) | null = null;

  /** `clock` gives ms since the start of the run. */
  constructor(private readonly clock: () => number) {}

  add(invariant: string, detail: string, atMs: number = this.clock()): void {
    const violation = { atMs: Math.round(atMs), invariant, detail };
    this.list.push(violation);
    this.onAdd?.(violation);
  }

  get count(): number {
    return this.list.length;
  }

  /** Counts by invariant. */
  byInvariant(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const v of this.list) counts[v.invariant] = (counts[v.invariant] ?? 0) + 1;
    return counts;
  }
}

/** `+12.345s` */
export function formatRunTime(ms: number): string {
  return `+${(ms / 1000).toFixed(3)}s`;
}
