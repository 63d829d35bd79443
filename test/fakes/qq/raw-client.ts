/**
 * A deliberately dumb gateway client for the fake's own tests: raw frames in and out, no
 * protocol logic, so each test spells out exactly what a client does.
 */
import WebSocket from 'ws';

/** A parsed frame from the server. */
export interface Frame {
  op: number;
  d?: unknown;
  s?: number;
  t?: string;
  id?: string;
}

/** How the connection ended. */
export interface Closed {
  code: number;
  reason: string;
}

/** Raw WebSocket client with a queue of received frames. */
export class RawClient {
  private readonly queue: Frame[] = [];
  private waiter: ((frame: Frame) => void) | null = null;
  /** Resolves when the socket is closed, with the close code (1006 for a drop). */
  readonly closed: Promise<Closed>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString('utf8')) as Frame;
      const waiter = this.waiter;
      this.waiter = null;
      if (waiter !== null) waiter(frame);
      else this.queue.push(frame);
    });
    // Errors (refused upgrade, reset) also end in 'close'.
    ws.on('error', () => undefined);
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
  }

  /** Opens a connection; rejects if the upgrade fails. */
  static async connect(url: string): Promise<RawClient> {
    const ws = new WebSocket(url);
    const client = new RawClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return client;
  }

  /** Connects, reads Hello and sends Identify; resolves with the READY frame. */
  static async identified(
    url: string,
    token: string,
    intents = 1 << 25,
  ): Promise<RawClient & { ready: Frame }> {
    const client = await RawClient.connect(url);
    await client.next(); // Hello
    client.send({ op: 2, d: { token: `QQBot ${token}`, intents, shard: [0, 1] } });
    const ready = await client.next();
    return Object.assign(client, { ready });
  }

  /** The next frame from the server; rejects after `timeoutMs`. */
  next(timeoutMs = 2000): Promise<Frame> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`no frame within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (frame) => {
        clearTimeout(timer);
        resolve(frame);
      };
    });
  }

  /** Resolves true if no frame arrives within `ms` (used to check silence). */
  async silentFor(ms: number): Promise<boolean> {
    try {
      await this.next(ms);
      return false;
    } catch {
      return true;
    }
  }

  /** Sends an object as JSON, or a string verbatim. */
  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Drops the TCP connection and waits for the close. */
  async terminate(): Promise<Closed> {
    this.ws.terminate();
    return this.closed;
  }
}

/** Fetches a token from the fake. */
export async function fetchToken(
  tokenUrl: string,
  appId: string,
  clientSecret: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ appId, clientSecret }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
