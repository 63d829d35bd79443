import { readFileSync } from 'node:fs';

/**
 * Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), or null
 * when it cannot be read (no such process, no /proc).
 */
export function processStartTime(pid: number): number | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may contain spaces or ')'.
  const afterComm = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // afterComm[0] is field 3, so field 22 is at index 19.
  const value = Number(afterComm[19]);
  return Number.isFinite(value) ? value : null;
}

/** True when `pid` names a live process started at `startTime` (so not a reused pid). */
export function isSameProcessAlive(pid: number, startTime: number | null): boolean {
  const current = processStartTime(pid);
  if (current === null) {
    if (startTime !== null) return false;
    // Without /proc, fall back to signal 0.
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
  return startTime === null || current === startTime;
}
