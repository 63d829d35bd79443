/**
 * A real systemd user manager and journald for end-to-end tests (DESIGN.md §10), run by
 * scripts/systemd-harness. Where a user manager already answers (a developer's session) the
 * harness uses that one: give every unit a unique name (`uniqueUnitName`).
 *
 * ```ts
 * const availability = await SystemdHarness.available();
 * describe('…', { skip: availability.ok ? false : availability.reason }, () => {
 *   let harness: SystemdHarness;
 *   before(async () => (harness = await SystemdHarness.start()));
 *   after(() => harness?.stop());
 * });
 * ```
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export type HarnessErrorCode =
  /** The script could not start a manager (its stderr is in the message). */
  | 'HARNESS_START_FAILED'
  /** The script could not stop everything it started. */
  | 'HARNESS_STOP_FAILED'
  /** A command (systemctl, journalctl) or a `waitFor` ran past its deadline. */
  | 'HARNESS_TIMEOUT'
  /** A command could not be run at all, or printed something unparseable. */
  | 'HARNESS_COMMAND_FAILED';

export class HarnessError extends Error {
  readonly code: HarnessErrorCode;

  constructor(code: HarnessErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HarnessError';
    this.code = code;
  }
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `private`: a manager the harness started (root only); `existing`: the caller's own. */
export type HarnessMode = 'private' | 'existing';

export type Availability = { ok: true; mode: HarnessMode } | { ok: false; reason: string };

export type JournalPriority =
  'emerg' | 'alert' | 'crit' | 'err' | 'warning' | 'notice' | 'info' | 'debug';

export interface JournalOptions {
  /** Only entries at this priority or more urgent, like `journalctl -p`. */
  priority?: JournalPriority;
  /** The newest N entries at most (default 10 000). */
  maxLines?: number;
  timeoutMs?: number;
}

export interface JournalEntry {
  message: string;
  /** Syslog priority, 0 (emerg) … 7 (debug). */
  priority: number;
  pid: number | undefined;
  /** SYSLOG_IDENTIFIER: the unit's SyslogIdentifier=, or the process name. */
  identifier: string | undefined;
  /** True for the manager's own lines about the unit ("Started …", "Main process exited …"). */
  fromManager: boolean;
  /** When journald received the entry (__REALTIME_TIMESTAMP), in µs since the epoch. */
  realtimeUs: number;
}

export interface StartOptions {
  /** Where the script keeps its runtime dir, journal and logs; a fresh temp dir by default. */
  stateDir?: string;
  timeoutMs?: number;
}

export interface WaitOptions {
  intervalMs?: number;
  /** Names the awaited condition in the timeout error. */
  what?: string;
}

type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

const COMMAND_TIMEOUT_MS = 15_000;
const SCRIPT_TIMEOUT_MS = 60_000;
const DEFAULT_JOURNAL_LINES = 10_000;

/** scripts/systemd-harness, found from dist/test/support/ or from test/support/. */
export const HARNESS_SCRIPT = findScript(dirname(fileURLToPath(import.meta.url)));

function findScript(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'scripts', 'systemd-harness');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return join(from, '../../../scripts/systemd-harness');
  }
}

/**
 * Runs a command to completion. Resolves with its exit code and output whatever the code;
 * rejects with `HARNESS_TIMEOUT` past `timeoutMs` (the child is killed) or
 * `HARNESS_COMMAND_FAILED` when it cannot be spawned.
 */
export function run(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = COMMAND_TIMEOUT_MS,
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      signal: AbortSignal.timeout(timeoutMs),
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (err) => {
      const timedOut = err.name === 'AbortError';
      reject(
        new HarnessError(
          timedOut ? 'HARNESS_TIMEOUT' : 'HARNESS_COMMAND_FAILED',
          timedOut
            ? `${command} ${args.join(' ')} still running after ${timeoutMs} ms`
            : `cannot run ${command}: ${err.message}`,
          { cause: err },
        ),
      );
    });
    child.on('close', (code, signal) =>
      resolve({ code: code ?? (signal === null ? 1 : 128), stdout, stderr }),
    );
  });
}

/**
 * Polls `probe` every `intervalMs` (default 50) until it returns a truthy value, and resolves
 * with that value. Rejects with `HARNESS_TIMEOUT` (naming the last value seen) once
 * `timeoutMs` has passed, or with whatever `probe` throws.
 */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  timeoutMs: number,
  options: WaitOptions = {},
): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as Truthy<T>;
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new HarnessError(
        'HARNESS_TIMEOUT',
        `${options.what ?? 'condition'} not met within ${timeoutMs} ms (last: ${JSON.stringify(value)})`,
      );
    }
    await sleep(Math.min(options.intervalMs ?? 50, left));
  }
}

/** `export KEY='value'` lines, as the script writes them. */
function parseEnvFile(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^export ([A-Z_][A-Z0-9_]*)='([^']*)'$/.exec(line);
    if (match) vars[match[1]!] = match[2]!;
  }
  return vars;
}

function journalMessage(value: unknown): string {
  // journalctl -o json prints non-UTF-8 fields as arrays of byte values.
  if (Array.isArray(value)) return Buffer.from(value as number[]).toString('utf8');
  return typeof value === 'string' ? value : '';
}

let unitCounter = 0;

export class SystemdHarness {
  /** Everything a client of this manager needs: the caller's environment plus the script's. */
  readonly env: NodeJS.ProcessEnv;
  /** Wall time `start` took, in ms. */
  readonly startMs: number;
  private readonly vars: Record<string, string>;
  private stopped = false;
  private readonly stopOnExit = (): void => {
    // Last resort when a test file dies before its after(): exit handlers must be synchronous.
    spawnSync(HARNESS_SCRIPT, ['stop', this.stateDir], { stdio: 'ignore', timeout: 30_000 });
  };

  private constructor(
    readonly stateDir: string,
    private readonly ownsStateDir: boolean,
    vars: Record<string, string>,
    startMs: number,
  ) {
    this.vars = vars;
    this.startMs = startMs;
    const env: NodeJS.ProcessEnv = { ...process.env };
    // A caller's own session bus must not answer for the private manager.
    delete env.DBUS_SESSION_BUS_ADDRESS;
    for (const [key, value] of Object.entries(vars)) env[key] = value;
    this.env = env;
    process.once('exit', this.stopOnExit);
  }

  /**
   * Whether a user manager can be had here, and which kind. Resolves `{ ok: false, reason }`
   * (never rejects) so that tests can be skipped with a visible reason.
   */
  static async available(): Promise<Availability> {
    if (!existsSync(HARNESS_SCRIPT)) return { ok: false, reason: `${HARNESS_SCRIPT} missing` };
    let result: CommandResult;
    try {
      result = await run(HARNESS_SCRIPT, ['check'], process.env);
    } catch (err) {
      return { ok: false, reason: (err as Error).message };
    }
    const mode = result.stdout.trim();
    if (result.code === 0 && (mode === 'private' || mode === 'existing')) return { ok: true, mode };
    return {
      ok: false,
      reason: result.stderr.trim() || `systemd-harness check exited ${result.code}`,
    };
  }

  /**
   * Starts a private manager and journald (or adopts the caller's manager). Resolves once the
   * manager reports `running` or `degraded`; rejects with `HARNESS_START_FAILED`, after
   * cleaning up whatever was started.
   */
  static async start(options: StartOptions = {}): Promise<SystemdHarness> {
    const owns = options.stateDir === undefined;
    const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), 'hgw-sd-')));
    const t0 = Date.now();
    const fail = async (why: string, cause?: unknown): Promise<never> => {
      await run(HARNESS_SCRIPT, ['stop', stateDir], process.env, SCRIPT_TIMEOUT_MS);
      if (owns) await rm(stateDir, { recursive: true, force: true });
      throw new HarnessError('HARNESS_START_FAILED', `systemd-harness start: ${why}`, { cause });
    };
    let result: CommandResult;
    try {
      result = await run(
        HARNESS_SCRIPT,
        ['start', stateDir],
        process.env,
        options.timeoutMs ?? SCRIPT_TIMEOUT_MS,
      );
    } catch (err) {
      return fail((err as Error).message, err);
    }
    if (result.code !== 0) return fail(`exit ${result.code}: ${result.stderr.trim()}`);
    const vars = parseEnvFile(await readFile(join(stateDir, 'env'), 'utf8'));
    return new SystemdHarness(stateDir, owns, vars, Date.now() - t0);
  }

  get mode(): HarnessMode {
    return this.vars.HARNESS_MODE === 'existing' ? 'existing' : 'private';
  }

  /** Where this manager reads unit files: write a unit here, then `daemon-reload`. */
  get unitDir(): string {
    return this.vars.HARNESS_UNIT_DIR ?? '';
  }

  /** The private journal's directory (for `journalctl -D`); undefined for the system's own. */
  get journalDir(): string | undefined {
    return this.vars.HARNESS_JOURNAL_DIR || undefined;
  }

  get managerPid(): number | undefined {
    const pid = Number(this.vars.HARNESS_MANAGER_PID);
    return pid > 0 ? pid : undefined;
  }

  get journaldPid(): number | undefined {
    const pid = Number(this.vars.HARNESS_JOURNALD_PID);
    return pid > 0 ? pid : undefined;
  }

  /** Whether the host's /run/systemd/system was created (never: it lives in a namespace). */
  get createdRunSystemdSystem(): boolean {
    return this.vars.HARNESS_CREATED_RUN_SYSTEMD_SYSTEM === '1';
  }

  /** A unit name no other test or run uses: `<prefix>-<pid>-<n>-<random>.service`. */
  uniqueUnitName(prefix: string, type = 'service'): string {
    unitCounter += 1;
    const random = Math.random().toString(36).slice(2, 8);
    return `${prefix}-${process.pid}-${unitCounter}-${random}.${type}`;
  }

  /**
   * `systemctl --user ARGS` against this manager. Resolves with the exit code and output
   * whatever the code (a failed unit is an answer); rejects only with `HARNESS_TIMEOUT` or
   * `HARNESS_COMMAND_FAILED`. Note `is-system-running` answers "offline" from outside the
   * private manager's namespace: use `show -p SystemState` there.
   */
  systemctl(args: readonly string[], options: { timeoutMs?: number } = {}): Promise<CommandResult> {
    return run('systemctl', ['--user', ...args], this.env, options.timeoutMs ?? COMMAND_TIMEOUT_MS);
  }

  /**
   * The unit's properties (`systemctl --user show -p …`), as strings; a property systemctl
   * does not print for this unit comes back as ''. Rejects with `HARNESS_COMMAND_FAILED`
   * when systemctl fails.
   */
  async show<P extends string>(unit: string, props: readonly P[]): Promise<Record<P, string>> {
    const result = await this.systemctl(['show', unit, `--property=${props.join(',')}`]);
    if (result.code !== 0) {
      throw new HarnessError(
        'HARNESS_COMMAND_FAILED',
        `systemctl --user show ${unit} exited ${result.code}: ${result.stderr.trim()}`,
      );
    }
    const values = Object.fromEntries(props.map((p) => [p, ''])) as Record<P, string>;
    for (const line of result.stdout.split('\n')) {
      const eq = line.indexOf('=');
      const key = line.slice(0, eq);
      if (eq > 0 && (props as readonly string[]).includes(key)) {
        values[key as P] = line.slice(eq + 1);
      }
    }
    return values;
  }

  /** See the exported `waitFor`. */
  waitFor<T>(
    probe: () => T | Promise<T>,
    timeoutMs: number,
    options: WaitOptions = {},
  ): Promise<Truthy<T>> {
    return waitFor(probe, timeoutMs, options);
  }

  /**
   * The unit's journal: its own output and the manager's lines about it, oldest first.
   * Rejects with `HARNESS_COMMAND_FAILED` when journalctl fails or prints non-JSON.
   */
  async journalEntries(unit: string, options: JournalOptions = {}): Promise<JournalEntry[]> {
    const args = [
      ...(this.journalDir ? ['-D', this.journalDir] : []),
      `--user-unit=${unit}`,
      '-o',
      'json',
      '--no-pager',
      '-n',
      String(options.maxLines ?? DEFAULT_JOURNAL_LINES),
      ...(options.priority ? ['-p', options.priority] : []),
    ];
    const result = await run('journalctl', args, this.env, options.timeoutMs ?? COMMAND_TIMEOUT_MS);
    // journalctl exits 1 with "-- No entries --" on some versions when nothing matches.
    if (result.code !== 0 && result.stdout.trim() !== '') {
      throw new HarnessError(
        'HARNESS_COMMAND_FAILED',
        `journalctl ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`,
      );
    }
    const entries: JournalEntry[] = [];
    for (const line of result.stdout.split('\n')) {
      if (!line.startsWith('{')) continue;
      let fields: Record<string, unknown>;
      try {
        fields = JSON.parse(line) as Record<string, unknown>;
      } catch (err) {
        throw new HarnessError('HARNESS_COMMAND_FAILED', `journalctl printed bad JSON: ${line}`, {
          cause: err,
        });
      }
      const pid = Number(fields._PID);
      entries.push({
        message: journalMessage(fields.MESSAGE),
        priority: Number(fields.PRIORITY ?? 6),
        pid: pid > 0 ? pid : undefined,
        identifier:
          typeof fields.SYSLOG_IDENTIFIER === 'string' ? fields.SYSLOG_IDENTIFIER : undefined,
        fromManager: fields.USER_UNIT === unit && fields._SYSTEMD_USER_UNIT !== unit,
        realtimeUs: Number(fields.__REALTIME_TIMESTAMP),
      });
    }
    return entries;
  }

  /**
   * Runs a command as the manager's own user would: with `env` and, for a private manager,
   * inside its mount namespace (nsenter), where the private journal is the default one under
   * /run/log and /run/systemd/system exists. That is how a CLI that calls plain `journalctl`
   * (`hermes-gateway logs`) sees this manager's journal. Same resolve/reject as `run`.
   */
  exec(
    command: string,
    args: readonly string[],
    options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
  ): Promise<CommandResult> {
    const env = options.env ?? this.env;
    const timeoutMs = options.timeoutMs ?? COMMAND_TIMEOUT_MS;
    const holder = this.journaldPid;
    if (this.mode === 'existing' || holder === undefined) return run(command, args, env, timeoutMs);
    return run(
      'nsenter',
      [`--target=${holder}`, '--mount', '--', command, ...args],
      env,
      timeoutMs,
    );
  }

  /** The MESSAGE of every `journalEntries` entry. */
  async journal(unit: string, options: JournalOptions = {}): Promise<string[]> {
    return (await this.journalEntries(unit, options)).map((entry) => entry.message);
  }

  /** Writes a unit file into `unitDir` and reloads the manager; resolves with its path. */
  async writeUnit(name: string, text: string): Promise<string> {
    await mkdir(this.unitDir, { recursive: true });
    const path = join(this.unitDir, name);
    await writeFile(path, text);
    const reload = await this.systemctl(['daemon-reload']);
    if (reload.code !== 0) {
      throw new HarnessError(
        'HARNESS_COMMAND_FAILED',
        `daemon-reload failed: ${reload.stderr.trim()}`,
      );
    }
    return path;
  }

  /** Stops the unit (ignoring errors), forgets its failures and deletes its file. */
  async removeUnit(name: string): Promise<void> {
    await this.systemctl(['stop', name]);
    await this.systemctl(['reset-failed', name]);
    await rm(join(this.unitDir, name), { force: true });
    await this.systemctl(['daemon-reload']);
  }

  /**
   * Stops the manager and journald the harness started (by PID; nothing in `existing` mode)
   * and removes the state dir it created. Idempotent. Rejects with `HARNESS_STOP_FAILED`.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    process.removeListener('exit', this.stopOnExit);
    const result = await run(
      HARNESS_SCRIPT,
      ['stop', this.stateDir],
      process.env,
      SCRIPT_TIMEOUT_MS,
    );
    if (result.code !== 0) {
      throw new HarnessError(
        'HARNESS_STOP_FAILED',
        `systemd-harness stop exited ${result.code}: ${result.stderr.trim()}`,
      );
    }
    if (this.ownsStateDir && !process.env.HERMES_HARNESS_KEEP) {
      await rm(this.stateDir, { recursive: true, force: true });
    }
  }
}
