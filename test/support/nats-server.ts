/**
 * A real nats-server (Debian's package) with JetStream on, for the scale-out tests: a free
 * loopback port, a temp store directory, stopped by its PID. Never a mock: the broker's
 * acknowledgements, duplicate window, redelivery and limits are what these tests are about.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NatsServerOptions {
  /** Reuse this port (a restart of the same broker); a free one by default. */
  port?: number;
  /** Reuse this store (a restart keeps the streams); a new temp directory by default. */
  storeDir?: string;
  /** `authorization { token }` when set. */
  token?: string;
  /** `authorization { user, password }` when set. */
  user?: { user: string; password: string };
  /** How long to wait for the client port to accept connections. */
  readyTimeoutMs?: number;
}

export interface NatsServer {
  readonly port: number;
  readonly url: string;
  readonly storeDir: string;
  readonly pid: number;
  /** SIGKILL (no flush) or SIGTERM, then waits for the exit. The store stays. */
  stop(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>;
  /** stop() and remove the store and config. */
  dispose(): Promise<void>;
  /** The server's own log (stderr), for a failing test's message. */
  output(): string;
}

/** Where the Debian package puts the binary; PATH otherwise. */
export function natsServerBinary(): string {
  return existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';
}

/** A loopback port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('data', (data) => {
      socket.destroy();
      // The server greets every client with INFO once it is ready for them.
      resolve(data.toString('latin1').startsWith('INFO'));
    });
    socket.once('error', () => resolve(false));
  });
}

/** Starts nats-server with JetStream and waits until it greets clients on its port. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const port = options.port ?? (await freePort());
  const ownStore = options.storeDir === undefined;
  const storeDir = options.storeDir ?? (await mkdtemp(join(tmpdir(), 'hermes-nats-')));
  const configPath = join(storeDir, `server-${port}.conf`);
  const lines = [
    'listen: "127.0.0.1:' + port + '"',
    // A small max_payload default is fine; JetStream with a store of its own in the temp dir.
    `jetstream { store_dir: ${JSON.stringify(join(storeDir, 'js'))} }`,
  ];
  if (options.token !== undefined) {
    lines.push(`authorization { token: ${JSON.stringify(options.token)} }`);
  } else if (options.user !== undefined) {
    lines.push(
      `authorization { user: ${JSON.stringify(options.user.user)}, password: ${JSON.stringify(options.user.password)} }`,
    );
  }
  await writeFile(configPath, lines.join('\n') + '\n');
  const child: ChildProcess = spawn(natsServerBinary(), ['-c', configPath], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    log = (log + chunk).slice(-20_000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + (options.readyTimeoutMs ?? 15_000);
  // Polls the port: nats-server has no readiness notification of its own.
  for (;;) {
    if (gone) throw new Error(`nats-server exited before it was ready:\n${log}`);
    if (await accepts(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`nats-server not ready on port ${port} in time:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const stop = async (signal: 'SIGKILL' | 'SIGTERM' = 'SIGTERM'): Promise<void> => {
    if (gone) return;
    process.kill(child.pid!, signal);
    await exited;
  };
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    storeDir,
    pid: child.pid!,
    stop,
    output: () => log,
    async dispose() {
      await stop('SIGKILL');
      if (ownStore) await rm(storeDir, { recursive: true, force: true });
    },
  };
}
