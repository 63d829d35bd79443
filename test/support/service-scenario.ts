/**
 * Pieces of the end-to-end service scenarios (test/systemd/service-*.test.ts): the standalone
 * fake QQ server as a child process scripted over its `/_fake/*` routes, the real CLI run as
 * the harness's user (`install`, `uninstall`, `logs`), test drop-ins, and `systemctl show`
 * with microsecond timestamps.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { StateDocument } from '../../src/state/schema.js';
import {
  HarnessError,
  type CommandResult,
  type JournalEntry,
  type JournalOptions,
  SystemdHarness,
} from './systemd-harness.js';

/** The real CLI (`hermes-gateway`), built; what `install` writes into ExecStart=. */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** The standalone fake QQ Bot server, built. */
export const FAKE_QQ_MAIN = fileURLToPath(new URL('../../src/fakes/qq/main.js', import.meta.url));

const FAKE_START_TIMEOUT_MS = 10_000;
const FAKE_STOP_TIMEOUT_MS = 5_000;
const CLI_TIMEOUT_MS = 30_000;
const JOURNAL_WAIT_MS = 10_000;

const fakes = new Set<ChildProcess>();
process.once('exit', () => {
  // Last resort when a test file dies before its hooks: never leave a fake listening.
  for (const child of fakes) child.kill('SIGKILL');
});

/** What the fake prints once listening. */
export interface FakeEndpoints {
  tokenUrl: string;
  apiBase: string;
  wsUrl: string;
  appId: string;
  controlUrl: string;
}

/** The parts of `GET /_fake/state` the scenarios read. */
export interface FakeState {
  openConnections: number;
  counts: { connections: number; identifies: number; tokenRequests: number };
  gatewayRequests: Array<{ path: string; status: number; at: number }>;
  refusedUpgrades: Array<{ path: string; status: number; at: number }>;
}

/** `node dist/src/fakes/qq/main.js` in its own process, as an operator would run it. */
export class FakeQQProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly endpoints: FakeEndpoints,
    readonly secret: string,
  ) {}

  /**
   * Starts the fake on a free loopback port with `secret` as the bot's client secret; `args`
   * are extra flags (`--hello-delay-ms 1500`). Rejects if it does not print its endpoints in
   * time (the child is killed).
   */
  static async start(secret: string, args: readonly string[] = []): Promise<FakeQQProcess> {
    const child = spawn(
      process.execPath,
      [FAKE_QQ_MAIN, '--port', '0', '--secret', secret, ...args],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    fakes.add(child);
    child.once('exit', () => fakes.delete(child));
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const lines = createInterface({ input: child.stdout });
    const timeout = AbortSignal.timeout(FAKE_START_TIMEOUT_MS);
    try {
      const [line] = (await Promise.race([
        once(lines, 'line', { signal: timeout }),
        once(child, 'exit', { signal: timeout }).then(() => {
          throw new Error(`fake QQ server exited: ${stderr.trim()}`);
        }),
      ])) as [string];
      const endpoints = JSON.parse(line) as FakeEndpoints;
      return new FakeQQProcess(child, endpoints, secret);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** `POST /_fake/<command>`; rejects unless the fake answers 200. */
  async control(command: string, body: Record<string, unknown> = {}): Promise<unknown> {
    const res = await fetch(`${this.endpoints.controlUrl}/${command}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5_000),
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`fake ${command}: HTTP ${res.status} ${text}`);
    return JSON.parse(text) as unknown;
  }

  async state(): Promise<FakeState> {
    const res = await fetch(`${this.endpoints.controlUrl}/state`, {
      signal: AbortSignal.timeout(5_000),
    });
    return (await res.json()) as FakeState;
  }

  /** SIGTERM, then SIGKILL if it lingers; resolves once it has exited. Idempotent. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), FAKE_STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }
}

/** Where the gateway gets the QQ client secret from. */
export type SecretSource = { env: string } | { file: string } | { credential: string };

export interface GatewayConfigOptions {
  fake: FakeQQProcess;
  secret: SecretSource;
  /** Omitted: the gateway uses $STATE_DIRECTORY. */
  stateFile?: string;
  logLevel?: string;
  reconnect?: { backoff_ms: number[]; max_attempts: number };
  /** Merged into `platforms.qqbot` last (e.g. an unknown key). */
  qqbot?: Record<string, unknown>;
  /** The handler; echo by default. */
  handler?: Record<string, unknown>;
}

/** A gateway config (YAML) with one `qqbot` platform pointed at the fake. */
export function gatewayConfig(options: GatewayConfigOptions): string {
  const { fake, secret } = options;
  const secretKey =
    'env' in secret
      ? { client_secret: `\${${secret.env}}` }
      : 'file' in secret
        ? { client_secret_file: secret.file }
        : { client_secret_credential: secret.credential };
  return stringify({
    ...(options.stateFile !== undefined && { state_file: options.stateFile }),
    log_level: options.logLevel ?? 'info',
    shutdown_timeout_ms: 2_000,
    handler: options.handler ?? { type: 'echo' },
    platforms: {
      qqbot: {
        app_id: fake.endpoints.appId,
        ...secretKey,
        token_url: fake.endpoints.tokenUrl,
        api_base: fake.endpoints.apiBase,
        jitter: false,
        ...(options.reconnect && { reconnect: options.reconnect }),
        ...options.qqbot,
      },
    },
  });
}

/**
 * Writes `<unit>.d/test.conf` in the harness's unit dir: `[Service]` lines that shorten
 * timings or add Environment=/LoadCredential=/SetCredential= for one test. LimitCORE=0 always:
 * a watchdog kill (SIGABRT) must not leave a core of node behind. Call before `install`
 * (whose daemon-reload picks it up) or reload yourself.
 */
export async function writeDropIn(
  harness: SystemdHarness,
  unit: string,
  lines: readonly string[],
): Promise<string> {
  const dir = join(harness.unitDir, `${unit}.d`);
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'test.conf');
  await writeFile(path, ['[Service]', 'LimitCORE=0', ...lines, ''].join('\n'));
  return path;
}

/** `hermes-gateway ARGS` run as the harness's user (its env, inside its mount namespace). */
export function gatewayCli(
  harness: SystemdHarness,
  args: readonly string[],
): Promise<CommandResult> {
  return harness.exec(process.execPath, [CLI, ...args], { timeoutMs: CLI_TIMEOUT_MS });
}

/**
 * Forgets a unit whatever state a failed test left it in: stop, disable, drop its file, its
 * drop-ins and its failure record. Never rejects on a unit that is already gone.
 */
export async function removeGatewayUnit(harness: SystemdHarness, unit: string): Promise<void> {
  await harness.systemctl(['stop', unit]);
  await harness.systemctl(['disable', unit]);
  await harness.systemctl(['reset-failed', unit]);
  await rm(join(harness.unitDir, unit), { force: true });
  await rm(join(harness.unitDir, `${unit}.d`), { recursive: true, force: true });
  await harness.systemctl(['daemon-reload']);
}

/**
 * `systemctl --user show` with `--timestamp=us+utc`, so that `*Timestamp` properties carry
 * microseconds (parse them with `timestampMs`). Same contract as `SystemdHarness.show`.
 */
export async function showUs<P extends string>(
  harness: SystemdHarness,
  unit: string,
  props: readonly P[],
): Promise<Record<P, string>> {
  const result = await harness.systemctl([
    'show',
    unit,
    '--timestamp=us+utc',
    `--property=${props.join(',')}`,
  ]);
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
    if (eq > 0 && (props as readonly string[]).includes(key)) values[key as P] = line.slice(eq + 1);
  }
  return values;
}

/**
 * A `--timestamp=us+utc` value ("Wed 2026-11-25 10:47:53.002298 UTC") in ms since the epoch,
 * with the microseconds as the fraction; NaN for an empty (never happened) timestamp.
 */
export function timestampMs(value: string): number {
  const match = /(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)\.(\d{6}) UTC$/.exec(value);
  if (!match) return NaN;
  return Date.parse(`${match[1]}T${match[2]}Z`) + Number(match[3]) / 1000;
}

/**
 * The unit's journal once `found` holds for it. journald reads a unit's stdout stream on its
 * own schedule: a line the gateway wrote before it exited (or before its STATUS= arrived) can
 * show up in `journalctl` a little later, more so on a loaded machine.
 */
export function journalUntil(
  harness: SystemdHarness,
  unit: string,
  found: (entries: JournalEntry[]) => boolean,
  what: string,
  options: JournalOptions = {},
): Promise<JournalEntry[]> {
  return harness.waitFor(
    async () => {
      const entries = await harness.journalEntries(unit, options);
      return found(entries) && entries;
    },
    JOURNAL_WAIT_MS,
    { what: `${unit} journal: ${what}`, intervalMs: 100 },
  );
}

/** Reads a state file; undefined while it does not exist or is being replaced. */
export function readStateDoc(path: string): StateDocument | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as StateDocument;
  } catch {
    return undefined;
  }
}

/** Sends `signal` to `pid` only if it is a `hermes-gateway run` process (never 0, never us). */
export function signalGateway(pid: number, signal: NodeJS.Signals): boolean {
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return false;
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return false;
  }
  const argv = cmdline.split('\0');
  if (!argv.includes(CLI) || !argv.includes('run')) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Prints one measurement as a JSON line (`{"metric": …, "ms": …}`) for the issue's report. */
export function reportMetric(
  metric: string,
  ms: number,
  extra: Record<string, unknown> = {},
): void {
  console.log(JSON.stringify({ metric, ms: Math.round(ms * 10) / 10, ...extra }));
}

/** Polls a state file until `predicate` holds; `intervalMs` small enough to see short states. */
export async function pollState(
  path: string,
  predicate: (doc: StateDocument) => boolean,
  timeoutMs: number,
  what: string,
  intervalMs = 5,
): Promise<StateDocument> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const doc = readStateDoc(path);
    if (doc !== undefined && predicate(doc)) return doc;
    if (Date.now() > deadline) {
      throw new HarnessError(
        'HARNESS_TIMEOUT',
        `state file ${path}: ${what} not seen within ${timeoutMs} ms (last: ${JSON.stringify(doc?.gateway)})`,
      );
    }
    await delay(intervalMs);
  }
}

/**
 * Why the service scenarios cannot run here, or false when they can: they need a private
 * harness, because with an existing user manager StateDirectory= would be the developer's
 * real ~/.config/hermes-gateway.
 */
export async function scenarioSkipReason(): Promise<string | false> {
  const availability = await SystemdHarness.available();
  if (!availability.ok) return availability.reason;
  if (availability.mode !== 'private') {
    return "StateDirectory= would be the developer's real ~/.config/hermes-gateway";
  }
  return false;
}
