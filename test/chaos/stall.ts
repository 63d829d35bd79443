/**
 * Time the machine could not give to runnable tasks, from Linux pressure stall information
 * (/proc/pressure/cpu, and /proc/pressure/io when the state file is on a disk).
 *
 * The soak's timing bounds (100 ms from a close to the state file, ...) are the gateway's
 * own latency. On a loaded 2-core machine (the rest of the test suite runs beside the soak)
 * the gateway can sit runnable without a CPU for tens of milliseconds. Whenever it does,
 * "some" pressure is being counted, so the gateway's wait inside a window is at most the
 * growth of `some total` over that window: crediting that growth to a deadline forgives
 * the machine, never the gateway's logic (an idle machine credits nothing, and a state file
 * that never changes is caught whatever the credit).
 */
import { readFileSync } from 'node:fs';

function someTotalMs(path: string): number | null {
  try {
    const match = /^some .*total=(\d+)/m.exec(readFileSync(path, 'utf8'));
    return match ? Number(match[1]) / 1000 : null;
  } catch {
    return null;
  }
}

export class StallMeter {
  readonly available: boolean;

  constructor(private readonly includeIo: boolean) {
    this.available = someTotalMs('/proc/pressure/cpu') !== null;
  }

  /** Cumulative stall in ms (0 forever where PSI is not available). */
  read(): number {
    if (!this.available) return 0;
    const cpu = someTotalMs('/proc/pressure/cpu') ?? 0;
    const io = this.includeIo ? (someTotalMs('/proc/pressure/io') ?? 0) : 0;
    return cpu + io;
  }
}
