/**
 * One run of the built gateway CLI (`node dist/src/cli/main.js run --config ...`) as a real
 * child process: its JSON log lines as they arrive, its exit, its RSS, and a kill that works
 * whatever state it is in.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

export interface LogLine {
  level: number;
  msg?: string;
  code?: string;
  [key: string]: unknown;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Epoch ms of the exit. */
  at: number;
}

/** How many raw lines are kept for failure reports. */
const TAIL_LINES = 40;

/** Every gateway started and not yet exited, for the harness's last-resort cleanup. */
const live = new Set<GatewayProcess>();

/** SIGKILLs every gateway still running; synchronous, so it can run in an `exit` handler. */
export function killAllGateways(): void {
  for (const gateway of live) {
    gateway.signal('SIGCONT');
    gateway.signal('SIGKILL');
  }
}

export class GatewayProcess {
  readonly pid: number;
  readonly startedAt = Date.now();
  readonly exited: Promise<ProcessExit>;
  exit: ProcessExit | null = null;
  stderr = '';
  /** The last stdout lines, raw. */
  readonly tail: string[] = [];
  /** stdout lines that were not JSON log lines. */
  nonJsonLines = 0;
  private readonly child: ChildProcess;

  constructor(
    cliPath: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    onLine: (line: LogLine, raw: string) => void,
  ) {
    this.child = spawn(process.execPath, [cliPath, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (this.child.pid === undefined) throw new Error('cannot spawn the gateway');
    this.pid = this.child.pid;
    live.add(this);
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (chunk: string) => {
      // Bounded: a runaway writer must not take the harness's memory with it.
      if (this.stderr.length < 64 * 1024) this.stderr += chunk;
    });
    const lines = createInterface({ input: this.child.stdout! });
    lines.on('line', (raw) => {
      this.tail.push(raw);
      if (this.tail.length > TAIL_LINES) this.tail.shift();
      const body = raw.replace(/^<\d>/, '');
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        this.nonJsonLines += 1;
        return;
      }
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        onLine(parsed as LogLine, raw);
      }
    });
    // 'close' (not 'exit'): every line of stdout has been read by then.
    this.exited = new Promise<ProcessExit>((resolve) => {
      this.child.on('close', (code, signal) => {
        live.delete(this);
        this.exit = { code, signal, at: Date.now() };
        resolve(this.exit);
      });
    });
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.alive) return;
    try {
      process.kill(this.pid, signal);
    } catch {
      // Already gone.
    }
  }

  /** VmRSS in bytes from /proc, or null when unavailable. */
  rssBytes(): number | null {
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
      return match ? Number(match[1]) * 1024 : null;
    } catch {
      return null;
    }
  }
}
