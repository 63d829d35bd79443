/**
 * The orchestrator forks each client under test into its own process, so that its CPU time
 * is its own. Both sides speak these messages over the fork IPC channel.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { wallNow } from './util.js';

/** Ids the least pipeline (bench/clients/ceiling.ts, variant `pipeline`) remembers to drop copies. */
export const LEAST_PIPELINE_IDS = 10_000;

/** What a client child is told (JSON in argv[2]). */
export interface ClientConfig {
  tokenUrl: string;
  apiBase: string;
  wsUrl: string;
  appId: string;
  clientSecret: string;
  /** Events to count before reporting `done`. */
  expected: number;
  /** Intent bitmask to identify with (clients that take a mask). */
  intents: number;
  /** A directory the client may write to (state file, logs). */
  workDir: string;
  /** Client-specific switches. */
  variant?: string;
  /** The platform the client talks to (default qqbot); telegram uses `apiBase` + `token`. */
  platform?: 'qqbot' | 'telegram';
  /** The Telegram bot token (platform telegram). */
  token?: string;
}

export type ChildMessage =
  /** The session is established (READY received / adapter `connected`). */
  | { type: 'ready'; at: number }
  /** `expected` events were counted. Times are wallNow() values; CPU counts from `ready`. */
  | {
      type: 'done';
      count: number;
      firstAt: number;
      lastAt: number;
      cpuUserUs: number;
      cpuSystemUs: number;
      rssBytes: number;
    }
  /** The client cannot run against the fake without patching it. */
  | { type: 'unsupported'; reason: string }
  | { type: 'error'; message: string };

export type ParentMessage = { type: 'stop' };

// ---- child side -----------------------------------------------------------------------------

/** Counts events in a client child and reports to the orchestrator. */
export class Counter {
  count = 0;
  private firstAt = 0;
  private cpu: NodeJS.CpuUsage | null = null;
  private reported = false;

  constructor(private readonly expected: number) {}

  /** Call once the session is established: the CPU baseline is taken here. */
  ready(): void {
    if (this.cpu !== null) return;
    this.cpu = process.cpuUsage();
    send({ type: 'ready', at: wallNow() });
  }

  /** Call for every counted event. */
  hit(): void {
    this.count += 1;
    if (this.count === 1) this.firstAt = wallNow();
    if (this.count === this.expected && !this.reported) {
      this.reported = true;
      const lastAt = wallNow();
      const cpu = process.cpuUsage(this.cpu ?? undefined);
      send({
        type: 'done',
        count: this.count,
        firstAt: this.firstAt,
        lastAt,
        cpuUserUs: cpu.user,
        cpuSystemUs: cpu.system,
        rssBytes: process.memoryUsage.rss(),
      });
    }
  }
}

export function send(message: ChildMessage): void {
  process.send?.(message);
}

/** Reports a failure and exits the child. */
export function fail(message: string): void {
  send({ type: 'error', message });
  setTimeout(() => process.exit(1), 50);
}

/** Reads the config a client child was started with. */
export function childConfig(): ClientConfig {
  const raw = process.argv[2];
  if (raw === undefined) throw new Error('client started without a config argument');
  return JSON.parse(raw) as ClientConfig;
}

/**
 * Runs a client child: `start` connects and counts; the process exits when the orchestrator
 * says stop or disconnects. A failure is reported, then the process exits 1.
 */
export function runChild(start: (config: ClientConfig) => Promise<void>): void {
  const stop = (): void => process.exit(0);
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'stop') stop();
  });
  process.on('disconnect', stop);
  start(childConfig()).catch((err: unknown) => {
    fail(err instanceof Error ? (err.stack ?? err.message) : String(err));
  });
}

// ---- parent side ----------------------------------------------------------------------------

/**
 * A forked bench child with its IPC messages queued until someone waits for them: the base of
 * the client children (below) and of the platform fakes of section 9 (bench/fake-driver.ts).
 */
export class ForkedChild<M extends { type: string }> {
  readonly child: ChildProcess;
  private readonly inbox: M[] = [];
  private waiter: (() => void) | null = null;
  private exitInfo: string | null = null;
  stderr = '';

  /**
   * Forks `script` with `args`; `label` names the child in errors. With BENCH_PROFILE_DIR set,
   * the child writes a V8 CPU profile there (`--cpu-prof`), to see where it spends its time.
   */
  constructor(
    script: string,
    args: string[],
    private readonly label: string,
  ) {
    const profileDir = process.env.BENCH_PROFILE_DIR;
    this.child = fork(script, args, {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      execArgv: profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
    });
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      if (this.stderr.length < 20_000) this.stderr += chunk;
    });
    this.child.on('message', (message: M) => {
      this.inbox.push(message);
      this.waiter?.();
    });
    this.child.on('exit', (code, signal) => {
      this.exitInfo = `exited with ${signal ?? code}`;
      this.waiter?.();
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get exited(): boolean {
    return this.exitInfo !== null;
  }

  /**
   * Why the child gave up on its own, if it did: the text of a queued `error` message, else
   * how it exited; null while it runs without one. Takes nothing from the queue.
   */
  failure(): string | null {
    for (const m of this.inbox) {
      const text = (m as { type: string; message?: unknown }).message;
      if (m.type === 'error') return typeof text === 'string' ? text : 'error';
    }
    return this.exitInfo;
  }

  /**
   * Resolves with (and removes) the first queued message `accept` takes, waiting for one;
   * rejects on timeout or when the child exits first. `what` names it in the timeout error.
   */
  protected async take(accept: (m: M) => boolean, what: string, timeoutMs: number): Promise<M> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.inbox.findIndex(accept);
      if (index >= 0) return this.inbox.splice(index, 1)[0]!;
      if (this.exitInfo !== null)
        throw new Error(`${this.label} ${this.exitInfo}: ${this.stderr.slice(-2000)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        this.waiter = done;
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
      });
      this.waiter = null;
    }
  }

  /** Sends `{ type: 'stop' }`; kills the child if it has not exited within `graceMs`. */
  async stop(graceMs = 1000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) this.child.send({ type: 'stop' } satisfies ParentMessage);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}

/** A forked client child (bench/clients/*). */
export class ClientProcess extends ForkedChild<ChildMessage> {
  constructor(script: string, config: ClientConfig) {
    super(script, [JSON.stringify(config)], 'client');
  }

  /**
   * Resolves with the next message of one of `types`; an `unsupported` or `error` message is
   * returned as well, whatever was asked for. Rejects on timeout or exit.
   */
  next(types: ChildMessage['type'][], timeoutMs: number): Promise<ChildMessage> {
    return this.take(
      (m) => types.includes(m.type) || m.type === 'error' || m.type === 'unsupported',
      types.join('/'),
      timeoutMs,
    );
  }
}
