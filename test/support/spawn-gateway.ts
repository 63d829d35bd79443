/**
 * Spawning the built test CLI (test/support/gateway-cli.ts) for end-to-end tests, and the
 * small waits they need. Every wait is bounded; every child is tracked so that a test's
 * `after` hook can kill whatever a failed assertion left running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { StateDocument } from '../../src/state/schema.js';

/** The built test CLI; this file lives beside it in dist/test/support/. */
export const GATEWAY_CLI = fileURLToPath(new URL('./gateway-cli.js', import.meta.url));
/** The product's own entry point, as installed (`bin` in package.json). */
export const PRODUCT_CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** One stdout line of the gateway: a pino JSON object (journald prefix removed). */
export interface LogLine {
  level: number;
  msg?: string;
  code?: string;
  [key: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Variables of the test runner's (or the bench's) own environment that would leak into the gateway. */
export const ENV_STRIP = [
  'NOTIFY_SOCKET',
  'WATCHDOG_USEC',
  'WATCHDOG_PID',
  'JOURNAL_STREAM',
  'HERMES_GATEWAY_CONFIG',
  'STATE_DIRECTORY',
  'CREDENTIALS_DIRECTORY',
  'XDG_CONFIG_HOME',
  'XDG_STATE_HOME',
  'XDG_CACHE_HOME',
  'CACHE_DIRECTORY',
  'NODE_DISABLE_COMPILE_CACHE',
  'NODE_TEST_CONTEXT',
  'NODE_OPTIONS',
];

/**
 * An environment for a child that can touch nothing outside `dir`: HOME and the XDG
 * directories point into it, and systemd's variables are gone unless `extra` sets them.
 * A value of `undefined` in `extra` removes the variable.
 */
export function sandboxEnv(
  dir: string,
  extra: Record<string, string | undefined> = {},
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of ENV_STRIP) delete env[key];
  env.HOME = dir;
  env.XDG_CONFIG_HOME = join(dir, 'xdg-config');
  env.XDG_STATE_HOME = join(dir, 'xdg-state');
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

export async function makeTempDir(prefix = 'hgw-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/**
 * A temp dir for one test file, removed when the test process exits, after killing any child
 * a failed test left behind. (node:test's top-level `after` can run before later top-level
 * tests when they are awaited one by one, so files use this instead.)
 */
export async function scratchRoot(prefix: string): Promise<string> {
  const dir = await makeTempDir(prefix);
  process.once('exit', () => {
    killAllChildren();
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // Best effort: a leftover temp dir must not turn a passing file into a failing one.
    }
  });
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Writes `config` (an object, dumped as YAML, or YAML text) to `dir/name`; returns the path. */
export async function writeConfig(
  dir: string,
  config: unknown,
  name = 'config.yaml',
): Promise<string> {
  const path = join(dir, name);
  await mkdir(dir, { recursive: true });
  await writeFile(path, typeof config === 'string' ? config : stringify(config));
  return path;
}

/** Reads and parses a state file; undefined when it does not exist (a parse error throws). */
export function readState(path: string): StateDocument | undefined {
  if (!existsSync(path)) return undefined;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    // Renamed away between the two calls: as good as missing for a poller.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as StateDocument;
}

/** Polls `probe` every `intervalMs` until it returns something other than undefined/false. */
export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 10,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(intervalMs);
  }
}

/** Polls a state file until `predicate` holds for it; returns that document. */
export function waitForState(
  path: string,
  predicate: (doc: StateDocument) => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<StateDocument> {
  return waitFor(
    () => {
      const doc = readState(path);
      return doc !== undefined && predicate(doc) ? doc : undefined;
    },
    `state file ${what}`,
    timeoutMs,
  );
}

const live = new Set<ChildProcess>();

/** Kills every child spawned through this module that is still running (for `after` hooks). */
export function killAllChildren(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGCONT');
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
  live.clear();
}

/** Strips a journald `<N>` prefix; returns the priority too. */
export function splitPriority(line: string): { priority: number | null; body: string } {
  const match = /^<(\d)>/.exec(line);
  if (!match) return { priority: null, body: line };
  return { priority: Number(match[1]), body: line.slice(match[0].length) };
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** The script to run: GATEWAY_CLI (default, with the test platforms) or PRODUCT_CLI. */
  cli?: string;
}

/** A running test CLI with its stdout parsed into log lines as they arrive. */
export class GatewayProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Every stdout line, as written. */
  readonly rawLines: string[] = [];
  /** The stdout lines that are JSON objects (journald prefixes removed). */
  readonly lines: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<Exit>;
  private partial = '';
  /** Set once the child has exited and its output is fully read. */
  private closed = false;
  private readonly waiters = new Set<() => void>();

  constructor(args: string[], options: SpawnOptions = {}) {
    this.child = spawn(process.execPath, [options.cli ?? GATEWAY_CLI, ...args], {
      env: options.env ?? sandboxEnv(tmpdir()),
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (this.child.pid === undefined) throw new Error('spawn failed');
    this.pid = this.child.pid;
    live.add(this.child);
    this.child.stdout!.setEncoding('utf8');
    this.child.stderr!.setEncoding('utf8');
    this.child.stdout!.on('data', (chunk: string) => this.onStdout(chunk));
    this.child.stderr!.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise<Exit>((resolve) => {
      this.child.on('close', (code, signal) => {
        live.delete(this.child);
        if (this.partial) this.onLine(this.partial);
        this.partial = '';
        this.closed = true;
        resolve({ code, signal });
        this.notify();
      });
    });
  }

  get stdout(): string {
    return this.rawLines.join('\n');
  }

  /** Log lines carrying an error `code` field. */
  codes(): string[] {
    return this.lines.flatMap((line) => (typeof line.code === 'string' ? [line.code] : []));
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Resolves with the first log line (already seen or to come) matching `predicate`. */
  waitForLine(
    predicate: (line: LogLine) => boolean,
    what: string,
    timeoutMs = 10_000,
  ): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.lines.find(predicate);
        if (found) return finish(() => resolve(found));
        if (this.closed) finish(() => reject(this.failure(`exited before ${what}`)));
      };
      const timer = setTimeout(
        () =>
          finish(() => reject(this.failure(`timed out after ${timeoutMs} ms waiting for ${what}`))),
        timeoutMs,
      );
      const finish = (settle: () => void): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle();
      };
      this.waiters.add(check);
      check();
    });
  }

  /**
   * Polls the state file until this process has written a document for which `predicate`
   * holds; fails at once (with the child's output) if the process exits first.
   */
  waitForState(
    path: string,
    predicate: (doc: StateDocument) => boolean,
    what: string,
    timeoutMs = 10_000,
  ): Promise<StateDocument> {
    return waitFor(
      () => {
        if (this.closed) throw this.failure(`exited before ${what}`);
        const doc = readState(path);
        return doc !== undefined && doc.pid === this.pid && predicate(doc) ? doc : undefined;
      },
      `state file ${what} (pid ${this.pid})`,
      timeoutMs,
    ).catch((err: unknown) => {
      if (err instanceof Error && err.message.startsWith('timed out'))
        throw this.failure(err.message);
      throw err;
    });
  }

  /** Resolves with the exit; kills the child and rejects if it does not exit in time. */
  async waitForExit(timeoutMs = 10_000): Promise<Exit> {
    const controller = new AbortController();
    const timeout = delay(timeoutMs, 'timeout' as const, { signal: controller.signal }).catch(
      () => 'aborted' as const,
    );
    const result = await Promise.race([this.exited, timeout]);
    controller.abort();
    if (result === 'timeout') {
      this.kill();
      await this.exited;
      throw this.failure(`did not exit within ${timeoutMs} ms`);
    }
    if (result === 'aborted') throw new Error('unreachable');
    return result;
  }

  /** SIGKILL (after SIGCONT, in case it was stopped); safe to call on an exited child. */
  kill(): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      process.kill(this.pid, 'SIGCONT');
    } catch {
      // Gone.
    }
    this.child.kill('SIGKILL');
  }

  private failure(what: string): Error {
    const tail = this.rawLines.slice(-15).join('\n');
    return new Error(
      `gateway pid ${this.pid} ${what}\nstdout tail:\n${tail}\nstderr:\n${this.stderr}`,
    );
  }

  private onStdout(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const part of parts) this.onLine(part);
    this.notify();
  }

  private onLine(raw: string): void {
    if (raw === '') return;
    this.rawLines.push(raw);
    const { body } = splitPriority(raw);
    try {
      const parsed: unknown = JSON.parse(body);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        this.lines.push(parsed as LogLine);
      }
    } catch {
      // Not a log line (help text, status output).
    }
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

export function spawnGateway(args: string[], options: SpawnOptions = {}): GatewayProcess {
  return new GatewayProcess(args, options);
}

export interface CliResult extends Exit {
  stdout: string;
  stderr: string;
  lines: LogLine[];
  codes: string[];
  durationMs: number;
}

/** Runs the test CLI to completion (bounded by `timeoutMs`). */
export async function runGatewayCli(
  args: string[],
  options: SpawnOptions & { timeoutMs?: number } = {},
): Promise<CliResult> {
  const started = Date.now();
  const proc = spawnGateway(args, options);
  const exit = await proc.waitForExit(options.timeoutMs ?? 15_000);
  return {
    ...exit,
    stdout: proc.stdout,
    stderr: proc.stderr,
    lines: proc.lines,
    codes: proc.codes(),
    durationMs: Date.now() - started,
  };
}

/** The `code` of the `error GW_ERR_...:` line the CLI prints on stderr (check, status). */
export function stderrCode(stderr: string): string | undefined {
  return /^error (GW_ERR_[A-Z0-9_]+):/m.exec(stderr)?.[1];
}

export interface Launched {
  proc: GatewayProcess;
  dir: string;
  configPath: string;
  statePath: string;
}

/**
 * Writes `config` into `dir` (with `state_file` pointing into `dir` unless given) and starts
 * `run --config` on it with a sandboxed environment.
 */
export async function launchGateway(
  dir: string,
  config: Record<string, unknown>,
  extraEnv: Record<string, string | undefined> = {},
  options: { cli?: string } = {},
): Promise<Launched> {
  await mkdir(dir, { recursive: true });
  const statePath =
    typeof config.state_file === 'string' ? config.state_file : join(dir, 'gateway_state.json');
  const configPath = await writeConfig(dir, { state_file: statePath, ...config });
  const proc = spawnGateway(['run', '--config', configPath], {
    env: sandboxEnv(dir, extraEnv),
    ...options,
  });
  return { proc, dir, configPath, statePath };
}

/** True when the gateway runs and every platform in the document is connected. */
export function allConnected(doc: StateDocument): boolean {
  const platforms = Object.values(doc.platforms);
  return (
    doc.gateway.state === 'running' &&
    platforms.length > 0 &&
    platforms.every((p) => p.state === 'connected')
  );
}
