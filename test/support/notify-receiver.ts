/**
 * A real systemd-style notification socket for tests. Node cannot bind an AF_UNIX
 * SOCK_DGRAM socket, so a tiny python3 process binds it and prints every datagram as one
 * JSON line, with the time it arrived.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

// With a second argument (a state file path), the file is read the moment each datagram is
// received, before anything else: what a supervisor acting on READY=1 would find on disk.
const RECEIVER = `
import json, socket, sys, time
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sys.argv[1])
watched = sys.argv[2] if len(sys.argv) > 2 else None
print(json.dumps({"bound": True}), flush=True)
while True:
    data = sock.recv(65536)
    state = None
    if watched is not None:
        try:
            with open(watched, "r", encoding="utf-8") as f:
                state = f.read()
        except OSError:
            state = None
    print(json.dumps({"data": data.decode("utf-8", "replace"), "at": time.time() * 1000, "state": state}), flush=True)
`;

export interface Datagram {
  /** The datagram's text, e.g. "READY=1\\nSTATUS=...". */
  data: string;
  /** Arrival time in ms since the epoch, as the receiver saw it. */
  at: number;
  /** `KEY=value` assignments of the datagram, in order. */
  fields: Array<[string, string]>;
  /** The watched state file's text as read on receipt (null: not watched or missing). */
  state: string | null;
}

function parseFields(data: string): Array<[string, string]> {
  return data
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const eq = line.indexOf('=');
      return eq < 0 ? [line, ''] : [line.slice(0, eq), line.slice(eq + 1)];
    });
}

export class NotifyReceiver {
  readonly path: string;
  readonly datagrams: Datagram[] = [];
  private readonly child: ChildProcess;
  private partial = '';
  private bound = false;
  private stderr = '';

  private constructor(dir: string, watch: string | undefined) {
    this.path = join(dir, 'notify.sock');
    const args = ['-u', '-c', RECEIVER, this.path, ...(watch === undefined ? [] : [watch])];
    this.child = spawn('python3', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop() ?? '';
      for (const part of parts) {
        if (!part) continue;
        const msg = JSON.parse(part) as {
          bound?: boolean;
          data?: string;
          at?: number;
          state?: string | null;
        };
        if (msg.bound) this.bound = true;
        if (msg.data !== undefined) {
          this.datagrams.push({
            data: msg.data,
            at: msg.at ?? 0,
            fields: parseFields(msg.data),
            state: msg.state ?? null,
          });
        }
      }
    });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
  }

  /**
   * Starts a receiver bound to `dir/notify.sock`; resolves once the socket exists. With
   * `watch`, every datagram carries that file's text as read on receipt (`Datagram.state`).
   */
  static async start(
    dir: string,
    options: { timeoutMs?: number; watch?: string } = {},
  ): Promise<NotifyReceiver> {
    const timeoutMs = options.timeoutMs ?? 5_000;
    const receiver = new NotifyReceiver(dir, options.watch);
    const deadline = Date.now() + timeoutMs;
    while (!receiver.bound) {
      if (receiver.child.exitCode !== null || Date.now() > deadline) {
        receiver.close();
        throw new Error(`notify receiver did not bind: ${receiver.stderr}`);
      }
      await delay(10);
    }
    return receiver;
  }

  /** Datagrams containing the assignment `key` (e.g. "READY"). */
  with(key: string): Datagram[] {
    return this.datagrams.filter((d) => d.fields.some(([k]) => k === key));
  }

  /** Waits until a datagram matching `predicate` has arrived. */
  async waitFor(predicate: (d: Datagram) => boolean, what: string, timeoutMs = 5_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.datagrams.find(predicate);
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out waiting for ${what}; received: ${JSON.stringify(this.datagrams.map((d) => d.data))}`,
        );
      }
      await delay(10);
    }
  }

  close(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** The value of the first `key=` assignment in a datagram. */
export function field(d: Datagram, key: string): string | undefined {
  return d.fields.find(([k]) => k === key)?.[1];
}
