/** Sessions and connections of the fake gateway: the state the protocol logic acts on. */
import { randomBytes } from 'node:crypto';
import type { RawData, WebSocket } from 'ws';
import { Timers } from './context.js';
import { Op } from './protocol.js';

/** A dispatch frame, serialized once and kept for replay. */
export interface SessionFrame {
  s: number;
  t: string;
  id: string;
  frame: string;
}

/** One gateway session: it outlives its connections so that Resume can pick it up. */
export class Session {
  /** Last seq assigned (READY and RESUMED included). */
  seq = 0;
  /** Highest seq written to a socket: the most a client can have seen. */
  lastSentSeq = 0;
  /** Dispatches kept for replay (READY and RESUMED are never replayed). */
  readonly buffer: SessionFrame[] = [];
  /** Highest seq evicted from `buffer`: a Resume from below it cannot be served. */
  evictedUpTo = 0;
  connection: Connection | null = null;
  /** When its last connection closed (epoch ms); null while one is attached. */
  detachedAt: number | null = null;

  constructor(readonly id: string) {}

  /** Takes the next seq and serializes dispatch `t` with an event id `T:<opaque>`. */
  nextFrame(t: string, d: unknown): SessionFrame {
    const s = ++this.seq;
    const id = `${t}:${randomBytes(12).toString('hex')}`;
    return { s, t, id, frame: JSON.stringify({ op: Op.Dispatch, s, t, id, d }) };
  }

  /** Keeps a dispatch for replay, evicting the oldest beyond `size`. */
  keep(frame: SessionFrame, size: number): void {
    this.buffer.push(frame);
    while (this.buffer.length > size) {
      this.evictedUpTo = this.buffer.shift()?.s ?? this.evictedUpTo;
    }
  }
}

/** One accepted WebSocket. */
export class Connection {
  phase: 'pre-hello' | 'awaiting-auth' | 'authed' = 'pre-hello';
  session: Session | null = null;
  /** Scripted: heartbeats of this connection go unanswered. */
  ackHeartbeats = true;
  /** Scripted: nothing is read or sent any more, the socket stays open. */
  halfOpen = false;
  /** The fake started the close (close code, terminate, or a frame ws refused). */
  closedByServer = false;
  /** Every timer of this connection, cleared when it closes. */
  readonly timers = new Timers();
  heartbeatTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: number,
    readonly ws: WebSocket,
  ) {}

  /** Open and not being closed by the fake. */
  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN && !this.closedByServer;
  }

  /** Whether a frame written now would reach the client. */
  get writable(): boolean {
    return this.open && !this.halfOpen;
  }

  /** Writes one text frame if the connection is writable. */
  send(text: string): void {
    if (this.writable) this.ws.send(text);
  }

  /**
   * Closes with `code`. A half-open socket is dropped instead: its close handshake could
   * never complete and would leave ws's 30 s close timer behind.
   */
  closeWith(code: number, reason: string): void {
    if (!this.open) return;
    if (this.halfOpen) {
      this.drop();
      return;
    }
    this.closedByServer = true;
    this.timers.clearAll();
    this.ws.close(code, reason);
  }

  /** Closes with `code` after `delayMs`; never when `delayMs` is null. */
  closeAfter(delayMs: number | null, code: number, reason: string): void {
    if (delayMs !== null) this.timers.set(() => this.closeWith(code, reason), delayMs);
  }

  /** Destroys the socket without a close frame. */
  drop(): void {
    this.closedByServer = true;
    this.timers.clearAll();
    this.ws.terminate();
  }
}

/** A received message as text. */
export function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return (Buffer.isBuffer(data) ? data : Buffer.from(data)).toString('utf8');
}
