/** Small helpers shared by every section: clocks, statistics, paths. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Wall-clock milliseconds with sub-millisecond resolution. Every process on the machine reads
 * the same system clock, so values from a child and from the orchestrator can be subtracted.
 */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

/** The repository root (this file is compiled to dist/bench/lib/). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** bench/ in the source tree: where the peers' node_modules and the results live. */
export const BENCH_DIR = join(REPO_ROOT, 'bench');
/** The built gateway CLI. */
export const GATEWAY_CLI = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
/** Compiled bench files, to fork clients from. */
export const DIST_BENCH = join(REPO_ROOT, 'dist', 'bench');

/** The `q`-quantile (0..1) of `values` by nearest rank; NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

export function max(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => (b > a ? b : a), -Infinity);
}

/** Least-squares slope of y over x. */
export function slope(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  if (n < 2) return NaN;
  let sx = 0;
  let sy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

/** VmRSS of `pid` in bytes, from /proc; null when the process is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Resolves after `ms`; used only between polls, never as a measurement. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` every `intervalMs` until it returns a value; rejects after `timeoutMs`. */
export async function poll<T>(
  probe: () => T | undefined | null | false,
  what: string,
  timeoutMs: number,
  intervalMs = 5,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(intervalMs);
  }
}

/** A full GC when the process runs with --expose-gc (run.js does); else nothing. */
export function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
}

/** User + system CPU time of `pid` in ms (from /proc/<pid>/stat, clock ticks of 10 ms). */
export function procCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) * 10;
  } catch {
    return null;
  }
}

/**
 * The main thread of `pid` (its JavaScript thread) from /proc/<pid>/schedstat: ms spent on a
 * CPU and ms spent runnable but waiting for one (a loaded machine shows in the second).
 */
export function procSchedMs(pid: number): { runMs: number; waitMs: number } | null {
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(' ');
    return { runMs: Number(run) / 1e6, waitMs: Number(wait) / 1e6 };
  } catch {
    return null;
  }
}

/** CPU time used so far, in ms: the whole machine (busy, all cores) and this process with its reaped children. */
export function cpuTotals(): { machineBusyMs: number; oursMs: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: busy excludes idle and iowait.
    const busy = v[0]! + v[1]! + v[2]! + v[5]! + v[6]! + v[7]!;
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    // utime stime cutime cstime (fields 14-17)
    const ours = f[11]! + f[12]! + f[13]! + f[14]!;
    return { machineBusyMs: busy * 10, oursMs: ours * 10 };
  } catch {
    return null;
  }
}
