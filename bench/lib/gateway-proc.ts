/**
 * The real gateway CLI (`node dist/src/cli/main.js run --config ...`) as a child process, with
 * its pino log lines parsed as they arrive and its state file read on demand.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { StateDocument } from '../../src/state/schema.js';
import { ENV_STRIP } from '../../test/support/spawn-gateway.js';
import { SECRET_ENV } from './gateway-config.js';
import { GATEWAY_CLI, sleep, wallNow } from './util.js';

export interface LogLine {
  level: number;
  time?: string;
  msg?: string;
  platform?: string;
  from?: string;
  to?: string;
  code?: string;
  [key: string]: unknown;
}

export interface SpawnGatewayOptions {
  config: string;
  secret: string;
  /** Extra environment (e.g. NOTIFY_SOCKET). */
  env?: Record<string, string>;
  /** The CLI command run on `config`: `run` (default) or `worker`. */
  command?: 'run' | 'worker';
}

export class GatewayChild {
  readonly child: ChildProcess;
  readonly pid: number;
  /** wallNow() just before spawn(). */
  readonly spawnedAt: number;
  readonly lines: LogLine[] = [];
  /** wallNow() when each line was read, parallel to `lines`. */
  readonly lineSeenAt: number[] = [];
  stderr = '';
  exitedAt: number | null = null;
  exitCode: number | null = null;
  readonly exited: Promise<number | null>;
  private partial = '';

  constructor(options: SpawnGatewayOptions) {
    const env: NodeJS.ProcessEnv = { ...process.env, [SECRET_ENV]: options.secret };
    // The bench's own environment must not change how the gateway runs (the tests' list).
    for (const key of ENV_STRIP) delete env[key];
    Object.assign(env, options.env);
    this.spawnedAt = wallNow();
    // BENCH_PROFILE_DIR: the gateway writes a V8 CPU profile there when it exits.
    const profileDir = process.env.BENCH_PROFILE_DIR;
    const node = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
    this.child = spawn(
      process.execPath,
      [...node, GATEWAY_CLI, options.command ?? 'run', '--config', options.config],
      {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    if (this.child.pid === undefined) throw new Error('cannot spawn the gateway');
    this.pid = this.child.pid;
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (chunk: string) => this.onStdout(chunk));
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (chunk: string) => {
      if (this.stderr.length < 20_000) this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code) => {
        this.exitedAt = wallNow();
        this.exitCode = code;
        resolve(code);
      });
    });
  }

  get running(): boolean {
    return this.exitedAt === null;
  }

  private onStdout(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    const at = wallNow();
    for (const part of parts) {
      const body = part.replace(/^<\d>/, '');
      if (!body.startsWith('{')) continue;
      try {
        this.lines.push(JSON.parse(body) as LogLine);
        this.lineSeenAt.push(at);
      } catch {
        // Not a log line.
      }
    }
  }

  /** Log lines at warn or above so far, counted by code and the start of their message. */
  warnings(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const line of this.lines) {
      if (line.level < 40) continue;
      const key = `${line.code ?? ''} ${String(line.msg ?? '').slice(0, 60)}`.trim();
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  }

  /** The index of the first line from `from` on matching `predicate`, waiting up to `timeoutMs`. */
  async waitLine(
    predicate: (line: LogLine) => boolean,
    what: string,
    timeoutMs: number,
    from = 0,
  ): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = from; i < this.lines.length; i++) if (predicate(this.lines[i]!)) return i;
      if (!this.running) throw this.failure(`exited before ${what}`);
      if (Date.now() > deadline) throw this.failure(`timed out after ${timeoutMs} ms: ${what}`);
      await sleep(2);
    }
  }

  /** Polls the state file (every `intervalMs`) until `predicate` holds; returns wallNow() then. */
  async waitState(
    path: string,
    predicate: (doc: StateDocument) => boolean,
    what: string,
    timeoutMs: number,
    intervalMs = 1,
  ): Promise<{ at: number; doc: StateDocument }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const doc = readState(path);
      if (doc !== null && doc.pid === this.pid && predicate(doc)) return { at: wallNow(), doc };
      if (!this.running && doc !== null && !predicate(doc))
        throw this.failure(`exited before ${what}`);
      if (Date.now() > deadline) throw this.failure(`timed out after ${timeoutMs} ms: ${what}`);
      await sleep(intervalMs);
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  async stop(graceMs = 5000): Promise<number | null> {
    if (!this.running) return this.exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  failure(what: string): Error {
    const tail = this.lines
      .slice(-8)
      .map((l) => JSON.stringify(l))
      .join('\n');
    return new Error(
      `gateway pid ${this.pid} ${what}\nlog tail:\n${tail}\nstderr: ${this.stderr.slice(-2000)}`,
    );
  }
}

/** The state file, or null when it is missing or mid-replace. */
export function readState(path: string): StateDocument | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as StateDocument;
  } catch {
    return null;
  }
}

/** Epoch ms of a pino ISO `time` field. */
export function lineTime(line: LogLine): number {
  return typeof line.time === 'string' ? Date.parse(line.time) : NaN;
}
