/**
 * The part of a Hello / heartbeat WebSocket gateway connection that QQ and Discord share,
 * modelled on discord.js's WebSocketShard: one loop handles socket and timer events in order
 * (callbacks only push into an inbox), one decision per connection (the first cause wins, but
 * a fatal close code is the platform's last word), a jittered first heartbeat, an ACK deadline
 * that keeps zombie detection within 1.5 × the interval, a missed ACK cut with `terminate()`,
 * and a close handshake bounded by a timer. The platform's subclass reads frames, sends
 * Identify / Resume and says what each close code means.
 */
import type { Logger } from 'pino';
import type { RawData, WebSocket as WebSocketClass } from 'ws';
import { GatewayError } from '../errors.js';
import { Inbox } from '../util/inbox.js';
import { requireLibrary } from '../util/require-library.js';
import { ackDeadlineMs, rawSize, rawText } from './ws-frames.js';

type WebSocket = WebSocketClass;

let webSocketClass: typeof WebSocketClass | null = null;

/**
 * ws, loaded at the first connection rather than with the adapter: systemd waits for READY=1,
 * which comes before any adapter has fetched its token, and ws with the modules it pulls in
 * (tls, zlib) is one of the larger loads of a start.
 */
function loadWebSocket(): typeof WebSocketClass {
  webSocketClass ??= requireLibrary('ws') as typeof WebSocketClass;
  return webSocketClass;
}

/** The platform's error codes for the failures the shared part detects. */
export interface GatewaySocketCodes {
  connectFailed: string;
  helloTimeout: string;
  readyTimeout: string;
  heartbeatTimeout: string;
  frameTooLarge: string;
  malformedFrame: string;
}

/** What a close code means to the platform. */
export interface CloseVerdict<A extends string> {
  action: A | 'fatal';
  errorCode: string;
  meaning: string;
  /** False when the code is in no table (logged with the code). */
  known: boolean;
  /** What the operator must do, appended to the message. */
  fix?: string | null;
}

export interface GatewaySocketOptions {
  url: string;
  timeouts: {
    connectMs: number;
    helloMs: number;
    readyMs: number;
    heartbeatAckMs: number;
    closeMs: number;
  };
  /** Frames above this are dropped; above 4 × this, the socket is cut (memory guard). */
  maxPayloadBytes: number;
  /** Jitter of the first heartbeat (off: the first beat comes one full interval after Hello). */
  jitter: boolean;
  random?: () => number;
  log: Logger;
  codes: GatewaySocketCodes;
  /**
   * Our close code for a reconnect and a planned stop: not 1000 / 1001, which end the session
   * on Discord and mean nothing documented on QQ, so the session stays resumable.
   */
  closeCode: number;
  /** Every frame received, whatever it is (the runner's `touch`). */
  onFrame(): void;
  /** A frame dropped (malformed or oversized), already logged with `code`. */
  onDropped(code: string): void;
}

type Item =
  | { kind: 'open' }
  | { kind: 'message'; data: RawData }
  | { kind: 'close'; code: number; reason: string }
  | { kind: 'error'; error: Error & { code?: string } }
  | { kind: 'timer'; name: string }
  | { kind: 'abort' };

/** How the shared part saw the connection end. */
export interface SocketEnd<A extends string> {
  action: A | 'fatal' | 'stop';
  error: GatewayError | null;
  /** The close code the socket ended with (1006 for a drop); null when it never opened. */
  closeCode: number | null;
}

export abstract class GatewaySocket<A extends string> {
  protected readonly log: Logger;
  protected readonly random: () => number;
  protected ending: { action: A | 'fatal' | 'stop'; error: GatewayError | null } | null = null;
  protected intervalMs = 0;
  protected ackTimeoutMs = 0;
  /** When the heartbeat watchdog declared the link dead (epoch ms); null otherwise. */
  protected zombieAt: number | null = null;
  private readonly inbox = new Inbox<Item>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private ws: WebSocket | null = null;
  private opened = false;
  private awaitingAck = false;
  private lastSocketError: (Error & { code?: string }) | null = null;

  constructor(protected readonly base: GatewaySocketOptions) {
    this.log = base.log;
    this.random = base.random ?? Math.random;
  }

  /** The action for failures the shared part detects (timeouts, drops): the platform's resume. */
  protected abstract get resumeAction(): A;
  /** What a close code from the server means. */
  protected abstract decideClose(code: number): CloseVerdict<A>;
  /** Handles one decoded text frame; returns a promise only when a hook must be awaited. */
  protected abstract onText(text: string, size: number): Promise<void> | undefined;
  /** Sends one heartbeat (directly, or through a pacer). */
  protected abstract sendHeartbeat(): void;
  /** A timer the subclass armed with `setTimer` fired. */
  protected onOwnTimer(name: string): void {
    this.log.debug({ timer: name }, 'unknown timer');
  }
  /** The URL to open (the platform adds its query). */
  protected socketUrl(): string {
    return this.base.url;
  }

  /**
   * The socket's life. Resolves once it is closed, with how it ended; an aborted `signal`
   * closes it (action `stop`). Rejects only when a handler rejects (a state write failed),
   * after the socket is cut.
   */
  protected async runSocket(signal: AbortSignal): Promise<SocketEnd<A>> {
    const onAbort = (): void => this.inbox.push({ kind: 'abort' });
    if (signal.aborted) return { action: 'stop', error: null, closeCode: null };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      if (!this.open()) return { ...this.ending!, closeCode: null };
      let closeCode: number | null = null;
      let failure: Error | null = null;
      for (;;) {
        // Frames that arrived together are handled without a promise each: only an empty
        // inbox, or a hook that must be awaited (a state write), yields to the event loop.
        const item = this.inbox.poll() ?? (await this.inbox.take());
        if (item.kind === 'close') {
          closeCode = this.onClose(item.code, item.reason);
          break;
        }
        if (failure !== null) continue; // draining until the socket is closed
        try {
          const pending = this.handle(item);
          if (pending !== undefined) await pending;
        } catch (err) {
          failure = err instanceof Error ? err : new Error(String(err));
          this.ws?.terminate();
        }
      }
      if (failure !== null) throw failure;
      return { ...this.ending!, closeCode };
    } finally {
      signal.removeEventListener('abort', onAbort);
      for (const timer of this.timers.values()) clearTimeout(timer);
      this.timers.clear();
    }
  }

  /** Creates the socket; false (with `ending` set) when ws refuses the URL outright. */
  private open(): boolean {
    const { timeouts, maxPayloadBytes, url } = this.base;
    let ws: WebSocket;
    try {
      const WebSocket = loadWebSocket();
      ws = new WebSocket(this.socketUrl(), {
        handshakeTimeout: timeouts.connectMs,
        maxPayload: maxPayloadBytes * 4,
        perMessageDeflate: false,
      });
    } catch (err) {
      this.ending = {
        action: this.resumeAction,
        error: new GatewayError(
          this.base.codes.connectFailed,
          `cannot connect to ${url}: ${String(err)}`,
          { cause: err },
        ),
      };
      return false;
    }
    this.ws = ws;
    ws.on('open', () => this.inbox.push({ kind: 'open' }));
    ws.on('message', (data) => this.inbox.push({ kind: 'message', data }));
    ws.on('close', (code, reason) =>
      this.inbox.push({ kind: 'close', code, reason: reason.toString() }),
    );
    ws.on('error', (error) => this.inbox.push({ kind: 'error', error }));
    return true;
  }

  protected setTimer(name: string, ms: number): void {
    this.clearTimer(name);
    this.timers.set(
      name,
      setTimeout(() => {
        this.timers.delete(name);
        this.inbox.push({ kind: 'timer', name });
      }, ms),
    );
  }

  protected clearTimer(name: string): void {
    const timer = this.timers.get(name);
    if (timer !== undefined) clearTimeout(timer);
    this.timers.delete(name);
  }

  protected hasTimer(name: string): boolean {
    return this.timers.has(name);
  }

  private handle(item: Exclude<Item, { kind: 'close' }>): Promise<void> | undefined {
    switch (item.kind) {
      case 'open':
        this.opened = true;
        if (this.ending === null) this.setTimer('hello', this.base.timeouts.helloMs);
        return;
      case 'message':
        return this.onMessage(item.data);
      case 'error':
        this.onSocketError(item.error);
        return;
      case 'timer':
        this.onTimer(item.name);
        return;
      case 'abort':
        this.end('stop', null, 'close');
        return;
    }
  }

  private onSocketError(error: Error & { code?: string }): void {
    this.lastSocketError = error;
    const code = this.base.codes.frameTooLarge;
    if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
      // Above the hard cap ws has already cut the socket: log it and resume.
      this.log.warn(
        { code, hard_limit_bytes: this.base.maxPayloadBytes * 4 },
        'frame above the hard size limit: connection cut',
      );
      this.base.onDropped(code);
      this.end(
        this.resumeAction,
        new GatewayError(code, 'frame above the hard size limit'),
        'none',
      );
      return;
    }
    this.log.debug({ err_code: error.code, err: error.message }, 'socket error');
  }

  private onTimer(name: string): void {
    const { codes, timeouts } = this.base;
    switch (name) {
      case 'hello':
        this.end(
          this.resumeAction,
          new GatewayError(codes.helloTimeout, `no Hello within ${timeouts.helloMs} ms`),
          'terminate',
        );
        return;
      case 'ready':
        this.end(
          this.resumeAction,
          new GatewayError(codes.readyTimeout, `no READY / RESUMED within ${timeouts.readyMs} ms`),
          'terminate',
        );
        return;
      case 'beat':
        this.beat();
        return;
      case 'ack':
        if (this.awaitingAck) this.zombie();
        return;
      case 'close-wait':
        // The peer did not finish the close handshake in time.
        this.ws?.terminate();
        return;
      default:
        this.onOwnTimer(name);
    }
  }

  /**
   * Hello arrived: the interval and the ACK deadline are set, the Hello timer cleared and the
   * first beat armed (jittered, so clients that reconnect together do not beat together).
   * DESIGN §9: a link that dies right after an ACK is caught at the next beat + the deadline,
   * within 1.5 × the interval.
   */
  protected startHeartbeats(intervalMs: number): void {
    this.clearTimer('hello');
    this.intervalMs = intervalMs;
    this.ackTimeoutMs = ackDeadlineMs(intervalMs, this.base.timeouts.heartbeatAckMs);
    this.setTimer('beat', this.base.jitter ? intervalMs * this.random() : intervalMs);
    this.setTimer('ready', this.base.timeouts.readyMs);
  }

  /** The heartbeat ACK (op 11) arrived. */
  protected acked(): void {
    this.awaitingAck = false;
    this.clearTimer('ack');
  }

  /** READY or RESUMED arrived: the handshake deadline is over. */
  protected handshakeDone(): void {
    this.clearTimer('ready');
  }

  /** Sends a heartbeat and arms the ACK deadline and the next beat. */
  private beat(): void {
    if (this.ending !== null) return;
    if (this.awaitingAck) {
      // Only reachable if the ACK deadline did not fire first; same verdict.
      this.zombie();
      return;
    }
    this.sendHeartbeat();
    this.awaitingAck = true;
    this.setTimer('ack', this.ackTimeoutMs);
    this.setTimer('beat', this.intervalMs);
  }

  private zombie(): void {
    this.zombieAt = Date.now();
    const code = this.base.codes.heartbeatTimeout;
    this.log.warn(
      { code, heartbeat_interval_ms: this.intervalMs, ack_timeout_ms: this.ackTimeoutMs },
      'heartbeat not acknowledged: zombie connection, terminating',
    );
    // terminate(): no close frame, so the platform keeps the session for a Resume.
    this.end(
      this.resumeAction,
      new GatewayError(
        code,
        `heartbeat not acknowledged within ${this.ackTimeoutMs} ms (interval ${this.intervalMs} ms)`,
      ),
      'terminate',
    );
  }

  private onMessage(data: RawData): Promise<void> | undefined {
    this.base.onFrame();
    const size = rawSize(data);
    const { maxPayloadBytes, codes } = this.base;
    if (size > maxPayloadBytes) {
      this.log.warn(
        { code: codes.frameTooLarge, bytes: size, limit_bytes: maxPayloadBytes },
        'frame above max_payload_bytes dropped',
      );
      this.base.onDropped(codes.frameTooLarge);
      return;
    }
    return this.onText(rawText(data), size);
  }

  /** Logs and counts a frame the subclass could not parse. */
  protected malformed(text: string, size: number): void {
    const code = this.base.codes.malformedFrame;
    this.log.warn({ code, bytes: size, head: text.slice(0, 64) }, 'malformed frame dropped');
    this.base.onDropped(code);
  }

  /** The server (or the network) closed the socket; returns the code. */
  private onClose(code: number, reason: string): number | null {
    if (this.ending !== null) {
      // The first cause wins, except that a fatal close code (bad token, banned, intents...)
      // is the platform's last word whatever we had decided.
      const late = this.opened ? this.decideClose(code) : null;
      if (late?.action === 'fatal' && this.ending.action !== 'stop') {
        this.ending = { action: 'fatal', error: this.closeError(code, reason, late) };
      }
      return this.opened ? code : null;
    }
    if (!this.opened) {
      const cause = this.lastSocketError?.message ?? `closed with ${code}`;
      this.ending = {
        action: this.resumeAction,
        error: new GatewayError(
          this.base.codes.connectFailed,
          `cannot connect to ${this.base.url}: ${cause}`,
          { cause: this.lastSocketError ?? undefined },
        ),
      };
      return null;
    }
    const verdict = this.decideClose(code);
    if (!verdict.known) {
      this.log.warn(
        { code: verdict.errorCode, close_code: code, reason },
        `unknown close code ${code}: resuming`,
      );
    }
    this.ending = { action: verdict.action, error: this.closeError(code, reason, verdict) };
    return code;
  }

  private closeError(code: number, reason: string, verdict: CloseVerdict<A>): GatewayError {
    const text = reason === '' ? '' : ` "${reason.slice(0, 120)}"`;
    const fix = verdict.fix == null ? '' : `: ${verdict.fix}`;
    return new GatewayError(
      verdict.errorCode,
      `gateway closed the connection with ${code} (${verdict.meaning})${text}${fix}`,
      { details: { close_code: code } },
    );
  }

  /**
   * Decides how this connection ends (the first decision wins) and starts closing: `close`
   * sends our close code and cuts the socket if the peer does not answer within closeMs;
   * `terminate` cuts it at once; `none` leaves it to ws.
   */
  protected end(
    action: A | 'fatal' | 'stop',
    error: GatewayError | null,
    how: 'close' | 'terminate' | 'none',
  ): void {
    if (this.ending !== null) return;
    this.ending = { action, error };
    for (const name of [...this.timers.keys()]) {
      if (name !== 'close-wait') this.clearTimer(name);
    }
    const ws = this.ws;
    if (ws === null || how === 'none') return;
    if (how === 'terminate' || ws.readyState === ws.CONNECTING) {
      ws.terminate();
      return;
    }
    if (ws.readyState === ws.OPEN) {
      ws.close(this.base.closeCode, action === 'stop' ? 'stopping' : 'reconnecting');
    }
    this.setTimer('close-wait', this.base.timeouts.closeMs);
  }

  /** Sends a text frame now, if the socket is open. */
  protected sendNow(text: string): void {
    const ws = this.ws;
    if (ws === null || ws.readyState !== ws.OPEN) return;
    ws.send(text);
  }
}
