/**
 * An exclusive lock that the kernel releases when its holder dies, kill -9 included: a Linux
 * abstract unix socket bound under a name derived from what is locked. Abstract names live
 * in memory only, so there is never a stale lock file to clean by hand. A process that finds
 * the name taken connects to it and reads who holds it (pid and a description), so refusals
 * can name the holder.
 *
 * Scope: one network namespace (the whole machine for the gateway's unit, which has no
 * PrivateNetwork=). The name carries the uid, so two users' locks on the same key do not meet.
 */
import { createHash } from 'node:crypto';
import { createConnection, createServer, type Server } from 'node:net';

/** Who holds a lock, as its holder describes itself. */
export interface LockHolder {
  pid: number;
  /** What the holder is, for messages (`instance qq-test`, `state file /x/y.json`). */
  holder: string;
}

export type AcquireResult = { ok: true; lock: HolderLock } | { ok: false; holder: LockHolder };

/** How long to wait for a holder's self-description before calling it unknown. */
const ASK_HOLDER_MS = 1_000;
/** A holder that died between our bind and our connect: try to bind again this many times. */
const RACE_RETRIES = 3;

/** The abstract socket name for `key` (a leading NUL byte makes it abstract on Linux). */
export function abstractName(key: string, uid = process.getuid?.() ?? 0): string {
  const digest = createHash('sha256').update(key).digest('hex').slice(0, 32);
  return `\0hermes-gateway/${uid}/${digest}`;
}

export class HolderLock {
  private constructor(
    private readonly server: Server,
    readonly key: string,
  ) {}

  /**
   * Takes the lock named by `key`, describing this process as `holder`. Resolves `ok: true`
   * with the lock, or `ok: false` with the current holder; rejects only on an unexpected
   * socket error (never because the lock is taken).
   */
  static async acquire(key: string, holder: string): Promise<AcquireResult> {
    const name = abstractName(key);
    const self: LockHolder = { pid: process.pid, holder };
    for (let attempt = 0; ; attempt++) {
      const server = createServer((socket) => {
        socket.on('error', () => undefined);
        socket.end(`${JSON.stringify(self)}\n`);
      });
      const bound = await new Promise<boolean>((resolve, reject) => {
        server.once('error', (err: NodeJS.ErrnoException) =>
          err.code === 'EADDRINUSE' ? resolve(false) : reject(err),
        );
        server.listen(name, () => resolve(true));
      });
      if (bound) {
        // The lock must never be what keeps a process alive.
        server.unref();
        return { ok: true, lock: new HolderLock(server, key) };
      }
      server.close();
      const other = await askHolder(name);
      if (other !== null) return { ok: false, holder: other };
      // Nobody answered: the holder died after our bind failed. Bind again.
      if (attempt >= RACE_RETRIES) {
        return { ok: false, holder: { pid: 0, holder: 'an unresponsive process' } };
      }
    }
  }

  /**
   * Who holds the lock named by `key`, or null when nobody does. Only asks: never takes the
   * lock, so a gateway starting at the same moment is not refused because someone looked.
   */
  static holder(key: string): Promise<LockHolder | null> {
    return askHolder(abstractName(key));
  }

  /** Releases the lock. Idempotent. */
  async release(): Promise<void> {
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Connects to a taken name and reads the holder's line; null when nobody is there. */
function askHolder(name: string): Promise<LockHolder | null> {
  return new Promise((resolve) => {
    let text = '';
    const socket = createConnection(name);
    const done = (value: LockHolder | null): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    const timer = setTimeout(
      () => done({ pid: 0, holder: 'an unresponsive process' }),
      ASK_HOLDER_MS,
    );
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > 4_096) done({ pid: 0, holder: 'an unknown process' });
    });
    socket.on('end', () => done(parseHolder(text)));
    socket.on('error', (err: NodeJS.ErrnoException) =>
      done(err.code === 'ECONNREFUSED' ? null : { pid: 0, holder: 'an unknown process' }),
    );
  });
}

function parseHolder(text: string): LockHolder {
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    if (typeof value.pid === 'number' && typeof value.holder === 'string') {
      return { pid: value.pid, holder: value.holder };
    }
  } catch {
    // fall through
  }
  return { pid: 0, holder: 'an unknown process' };
}
