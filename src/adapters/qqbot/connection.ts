/**
 * One gateway connection: open, Hello, Identify or Resume, heartbeats, dispatches, and the
 * decision of what the reconnect loop does after it ends. Modelled on discord.js's
 * WebSocketShard: one decision per connection (the first cause wins), a jittered first
 * heartbeat, a missed ACK cut with `terminate()`.
 *
 * Socket and timer callbacks only push items into an inbox; one loop (`run`) handles them in
 * order, so every state change of the connection happens in one place and every await (a
 * state write) is inside that loop.
 */
import type { Logger } from 'pino';
import WebSocket, { type RawData } from 'ws';
import { GatewayError } from '../../errors.js';
import { ackDeadlineMs, rawSize, rawText } from '../../net/ws-frames.js';
import { Inbox } from '../../util/inbox.js';
import {
  OPCODE_ACTIONS,
  Op,
  decideClose,
  heartbeatFrame,
  helloInterval,
  identifyFrame,
  parseFrame,
  parseReady,
  resumeFrame,
  type GatewayFrame,
  type ReconnectAction,
} from './protocol.js';

/** Our close code when we end a connection to reconnect (the session stays resumable). */
const CLOSE_TO_RECONNECT = 4000;
/**
 * Our close code when the adapter stops: not 1000, which ends the session on Discord and has
 * no documented meaning on QQ. A planned stop leaves the session resumable for the next
 * process (docs/delivery.md), as a reconnect does.
 */
const CLOSE_TO_STOP = 4000;

export interface ConnectionHooks {
  /** Every frame received, whatever it is (the runner's `touch`). */
  frame(): void;
  /** Records the sub-state (not a transition: not awaited); after Hello, before Identify / Resume. */
  phase(detail: 'identifying' | 'resuming'): void;
  /** READY or RESUMED arrived; resolves once `connected` is persisted. */
  ready(info: { resumed: boolean; sessionId: string; botId: string | null }): Promise<void>;
  /** A dispatch other than READY / RESUMED, with its `s` (null when it had none). */
  dispatch(t: string, d: unknown, eventId: string | null, seq: number | null): void;
  /** A frame that was dropped (malformed or oversized), already logged with `code`. */
  dropped(code: 'GW_ERR_QQ_MALFORMED_FRAME' | 'GW_ERR_QQ_FRAME_TOO_LARGE'): void;
}

export interface ConnectionTimeouts {
  connectMs: number;
  helloMs: number;
  readyMs: number;
  heartbeatAckMs: number;
  closeMs: number;
}

export interface ConnectionOptions {
  url: string;
  accessToken: string;
  intents: number;
  shard: readonly [number, number];
  /** The session to resume; null to Identify. */
  resume: { sessionId: string; seq: number } | null;
  timeouts: ConnectionTimeouts;
  /** Frames above this are dropped; above 4 × this, the socket is cut (memory guard). */
  maxPayloadBytes: number;
  /** Jitter of the first heartbeat (off: the first beat comes one full interval after Hello). */
  jitter: boolean;
  random?: () => number;
  log: Logger;
  hooks: ConnectionHooks;
}

/** How a connection ended, and what the reconnect loop should do next. */
export interface ConnectionEnd {
  /** `stop` when the run signal aborted; otherwise a row of the action table. */
  action: ReconnectAction | 'stop';
  /** Why it ended; null for `stop`. */
  error: GatewayError | null;
  /** The close code the socket ended with (1006 for a drop); null when it never opened. */
  closeCode: number | null;
  /** When READY / RESUMED arrived (epoch ms); null when it never did. */
  readyAt: number | null;
  /** Whether Resume was sent on this connection. */
  sentResume: boolean;
  /** Whether Identify was sent on this connection. */
  sentIdentify: boolean;
  /** The session after this connection (null when there is none to resume) and its last seq. */
  sessionId: string | null;
  seq: number | null;
  /** When the heartbeat watchdog declared the link dead (epoch ms); null otherwise. */
  zombieAt: number | null;
}

type TimerName = 'hello' | 'ready' | 'beat' | 'ack' | 'close-wait';

type Item =
  | { kind: 'open' }
  | { kind: 'message'; data: RawData }
  | { kind: 'close'; code: number; reason: string }
  | { kind: 'error'; error: Error & { code?: string } }
  | { kind: 'timer'; name: TimerName }
  | { kind: 'abort' };

export class GatewayConnection {
  private readonly inbox = new Inbox<Item>();
  private readonly timers = new Map<TimerName, NodeJS.Timeout>();
  private readonly log: Logger;
  private readonly random: () => number;
  private ws: WebSocket | null = null;
  private opened = false;
  private helloSeen = false;
  private intervalMs = 0;
  private ackTimeoutMs = 0;
  private awaitingAck = false;
  private lastSocketError: (Error & { code?: string }) | null = null;
  private ending: { action: ReconnectAction | 'stop'; error: GatewayError | null } | null = null;
  private sessionId: string | null;
  private seq: number | null;
  private readyAt: number | null = null;
  private sentResume = false;
  private sentIdentify = false;
  private zombieAt: number | null = null;

  constructor(private readonly options: ConnectionOptions) {
    this.log = options.log;
    this.random = options.random ?? Math.random;
    this.sessionId = options.resume?.sessionId ?? null;
    this.seq = options.resume?.seq ?? null;
  }

  /** The heartbeat interval Hello announced; 0 before Hello. */
  get heartbeatIntervalMs(): number {
    return this.intervalMs;
  }

  /**
   * The connection's life. Resolves once the socket is closed, with what to do next; an
   * aborted `signal` closes it (action `stop`). Rejects only when a hook rejects (a state
   * write failed), after the socket is closed.
   */
  async run(signal: AbortSignal): Promise<ConnectionEnd> {
    const onAbort = (): void => this.inbox.push({ kind: 'abort' });
    if (signal.aborted) return this.result('stop', null, null);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      if (!this.open()) return this.result(this.ending!.action, this.ending!.error, null);
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
      return this.result(this.ending!.action, this.ending!.error, closeCode);
    } finally {
      signal.removeEventListener('abort', onAbort);
      for (const timer of this.timers.values()) clearTimeout(timer);
      this.timers.clear();
    }
  }

  private result(
    action: ReconnectAction | 'stop',
    error: GatewayError | null,
    closeCode: number | null,
  ): ConnectionEnd {
    const forget = action === 'identify' || action === 'refresh_token';
    return {
      action,
      error,
      closeCode,
      readyAt: this.readyAt,
      sentResume: this.sentResume,
      sentIdentify: this.sentIdentify,
      sessionId: forget ? null : this.sessionId,
      seq: forget ? null : this.seq,
      zombieAt: this.zombieAt,
    };
  }

  /** Creates the socket; false (with `ending` set) when ws refuses the URL outright. */
  private open(): boolean {
    const { url, timeouts, maxPayloadBytes } = this.options;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, {
        handshakeTimeout: timeouts.connectMs,
        maxPayload: maxPayloadBytes * 4,
        perMessageDeflate: false,
      });
    } catch (err) {
      this.ending = {
        action: 'resume',
        error: new GatewayError(
          'GW_ERR_QQ_CONNECT_FAILED',
          `cannot connect to ${url}: ${String(err)}`,
          {
            cause: err,
          },
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

  private setTimer(name: TimerName, ms: number): void {
    this.clearTimer(name);
    this.timers.set(
      name,
      setTimeout(() => {
        this.timers.delete(name);
        this.inbox.push({ kind: 'timer', name });
      }, ms),
    );
  }

  private clearTimer(name: TimerName): void {
    const timer = this.timers.get(name);
    if (timer !== undefined) clearTimeout(timer);
    this.timers.delete(name);
  }

  /** Handles one item; returns a promise only when a hook has to be awaited. */
  private handle(item: Exclude<Item, { kind: 'close' }>): Promise<void> | undefined {
    switch (item.kind) {
      case 'open':
        this.opened = true;
        if (this.ending === null) this.setTimer('hello', this.options.timeouts.helloMs);
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
    if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
      // Above the hard cap ws has already cut the socket: log it and resume.
      this.log.warn(
        { code: 'GW_ERR_QQ_FRAME_TOO_LARGE', hard_limit_bytes: this.options.maxPayloadBytes * 4 },
        'frame above the hard size limit: connection cut',
      );
      this.options.hooks.dropped('GW_ERR_QQ_FRAME_TOO_LARGE');
      this.end(
        'resume',
        new GatewayError('GW_ERR_QQ_FRAME_TOO_LARGE', 'frame above the hard size limit'),
        'none',
      );
      return;
    }
    this.log.debug({ err_code: error.code, err: error.message }, 'socket error');
  }

  private onTimer(name: TimerName): void {
    switch (name) {
      case 'hello':
        this.end(
          'resume',
          new GatewayError(
            'GW_ERR_QQ_HELLO_TIMEOUT',
            `no Hello within ${this.options.timeouts.helloMs} ms`,
          ),
          'terminate',
        );
        return;
      case 'ready':
        this.end(
          'resume',
          new GatewayError(
            'GW_ERR_QQ_READY_TIMEOUT',
            `no ${this.sentResume ? 'RESUMED' : 'READY'} within ${this.options.timeouts.readyMs} ms`,
          ),
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
    }
  }

  /** Sends a heartbeat and arms the ACK deadline and the next beat. */
  private beat(): void {
    if (this.ending !== null) return;
    if (this.awaitingAck) {
      // Only reachable if the ACK deadline did not fire first; same verdict.
      this.zombie();
      return;
    }
    this.send(heartbeatFrame(this.seq));
    this.awaitingAck = true;
    this.setTimer('ack', this.ackTimeoutMs);
    this.setTimer('beat', this.intervalMs);
  }

  private zombie(): void {
    this.zombieAt = Date.now();
    this.log.warn(
      {
        code: 'GW_ERR_QQ_HEARTBEAT_TIMEOUT',
        heartbeat_interval_ms: this.intervalMs,
        ack_timeout_ms: this.ackTimeoutMs,
      },
      'heartbeat not acknowledged: zombie connection, terminating',
    );
    this.end(
      'resume',
      new GatewayError(
        'GW_ERR_QQ_HEARTBEAT_TIMEOUT',
        `heartbeat not acknowledged within ${this.ackTimeoutMs} ms (interval ${this.intervalMs} ms)`,
      ),
      'terminate',
    );
  }

  private onMessage(data: RawData): Promise<void> | undefined {
    this.options.hooks.frame();
    const size = rawSize(data);
    if (size > this.options.maxPayloadBytes) {
      this.log.warn(
        {
          code: 'GW_ERR_QQ_FRAME_TOO_LARGE',
          bytes: size,
          limit_bytes: this.options.maxPayloadBytes,
        },
        'frame above max_payload_bytes dropped',
      );
      this.options.hooks.dropped('GW_ERR_QQ_FRAME_TOO_LARGE');
      return;
    }
    const text = rawText(data);
    const frame = parseFrame(text);
    if (frame === null) {
      this.log.warn(
        { code: 'GW_ERR_QQ_MALFORMED_FRAME', bytes: size, head: text.slice(0, 64) },
        'malformed frame dropped',
      );
      this.options.hooks.dropped('GW_ERR_QQ_MALFORMED_FRAME');
      return;
    }
    // Track the seq from every frame that carries one; dispatches are "mostly ordered", so
    // the highest seen is the one to echo (fact sheet §3.3).
    // A frame we do not act on (the connection is ending) must not advance the seq we resume
    // from, or the server will not replay it.
    if (this.ending !== null) return;
    if (frame.s !== null && (this.seq === null || frame.s > this.seq)) this.seq = frame.s;
    return this.onFrame(frame);
  }

  private onFrame(frame: GatewayFrame): Promise<void> | undefined {
    switch (frame.op) {
      case Op.Hello:
        this.onHello(frame.d);
        return;
      case Op.Dispatch:
        return this.onDispatch(frame);
      case Op.HeartbeatAck:
        this.awaitingAck = false;
        this.clearTimer('ack');
        return;
      case Op.Heartbeat:
        // The server asks for a heartbeat now (DOC lists op 1 as Send/Receive).
        this.send(heartbeatFrame(this.seq));
        return;
      case Op.Reconnect:
        this.log.info('server requested a reconnect (op 7)');
        this.end(
          OPCODE_ACTIONS.reconnect,
          new GatewayError(
            'GW_ERR_QQ_RECONNECT_REQUESTED',
            'the server requested a reconnect (op 7)',
          ),
          'close',
        );
        return;
      case Op.InvalidSession: {
        const resumable = frame.d === true;
        this.log.info({ resumable }, 'invalid session (op 9)');
        if (!resumable) this.sessionId = null;
        this.end(
          resumable ? OPCODE_ACTIONS.invalidSessionResumable : OPCODE_ACTIONS.invalidSession,
          new GatewayError(
            'GW_ERR_QQ_INVALID_SESSION',
            `invalid session (op 9, resumable: ${resumable})`,
            {
              details: { resumable },
            },
          ),
          'close',
        );
        return;
      }
      default:
        this.log.debug({ op: frame.op }, 'frame with an unhandled opcode ignored');
        return;
    }
  }

  private onHello(d: unknown): void {
    if (this.helloSeen) {
      this.log.debug('second Hello ignored');
      return;
    }
    const interval = helloInterval(d);
    if (interval === null) {
      this.end(
        'resume',
        new GatewayError('GW_ERR_QQ_PROTOCOL_ERROR', 'Hello without a valid heartbeat_interval'),
        'close',
      );
      return;
    }
    this.helloSeen = true;
    this.clearTimer('hello');
    this.intervalMs = interval;
    // DESIGN §9: detection within 1.5 × interval from the moment the link goes silent (a
    // link that dies right after an ACK is caught at the next beat + the ACK deadline), so
    // the deadline after a beat is at most half an interval.
    this.ackTimeoutMs = ackDeadlineMs(interval, this.options.timeouts.heartbeatAckMs);
    const first = this.options.jitter ? interval * this.random() : interval;
    this.setTimer('beat', first);
    const resume = this.options.resume;
    this.options.hooks.phase(resume !== null ? 'resuming' : 'identifying');
    const { accessToken, intents, shard } = this.options;
    if (resume !== null) {
      this.send(resumeFrame(accessToken, resume.sessionId, resume.seq));
      this.sentResume = true;
    } else {
      this.send(identifyFrame(accessToken, intents, shard));
      this.sentIdentify = true;
    }
    this.setTimer('ready', this.options.timeouts.readyMs);
  }

  private onDispatch(frame: GatewayFrame): Promise<void> | undefined {
    if (frame.t === 'READY') {
      const ready = parseReady(frame.d);
      if (ready === null) {
        this.end(
          'identify',
          new GatewayError('GW_ERR_QQ_PROTOCOL_ERROR', 'READY without a session_id'),
          'close',
        );
        return;
      }
      this.sessionId = ready.sessionId;
      this.clearTimer('ready');
      this.readyAt = Date.now();
      return this.options.hooks.ready({
        resumed: false,
        sessionId: ready.sessionId,
        botId: ready.botId,
      });
    }
    if (frame.t === 'RESUMED') {
      this.clearTimer('ready');
      this.readyAt = Date.now();
      return this.options.hooks.ready({
        resumed: true,
        sessionId: this.sessionId ?? '',
        botId: null,
      });
    }
    if (frame.t === null) {
      this.log.debug('dispatch without an event type ignored');
      return;
    }
    this.options.hooks.dispatch(frame.t, frame.d, frame.id, frame.s);
    return;
  }

  /** The server (or the network) closed the socket; returns the code. */
  private onClose(code: number, reason: string): number | null {
    if (this.ending !== null) {
      // The first cause wins, except that a fatal close code (banned, delisted...) is the
      // platform's last word whatever we had decided.
      const late = this.opened ? decideClose(code) : null;
      if (late?.action === 'fatal' && this.ending.action !== 'stop') {
        this.ending = {
          action: 'fatal',
          error: new GatewayError(
            late.errorCode,
            `gateway closed the connection with ${code} (${late.meaning})`,
            {
              details: { close_code: code },
            },
          ),
        };
      }
      return this.opened ? code : null;
    }
    if (!this.opened) {
      const cause = this.lastSocketError?.message ?? `closed with ${code}`;
      this.ending = {
        action: 'resume',
        error: new GatewayError(
          'GW_ERR_QQ_CONNECT_FAILED',
          `cannot connect to ${this.options.url}: ${cause}`,
          {
            cause: this.lastSocketError ?? undefined,
          },
        ),
      };
      return null;
    }
    const decision = decideClose(code);
    const text = reason === '' ? '' : ` "${reason.slice(0, 120)}"`;
    const error = new GatewayError(
      decision.errorCode,
      `gateway closed the connection with ${code} (${decision.meaning})${text}`,
      { details: { close_code: code } },
    );
    if (!decision.known) {
      this.log.warn(
        { code: error.code, close_code: code, reason },
        `unknown close code ${code}: resuming`,
      );
    }
    this.ending = { action: decision.action, error };
    return code;
  }

  /**
   * Decides how this connection ends (the first decision wins) and starts closing: `close`
   * sends a close frame and cuts the socket if the peer does not answer within closeMs;
   * `terminate` cuts it at once; `none` leaves it to ws.
   */
  private end(
    action: ReconnectAction | 'stop',
    error: GatewayError | null,
    how: 'close' | 'terminate' | 'none',
  ): void {
    if (this.ending !== null) return;
    this.ending = { action, error };
    for (const name of ['hello', 'ready', 'beat', 'ack'] as const) this.clearTimer(name);
    const ws = this.ws;
    if (ws === null || how === 'none') return;
    if (how === 'terminate' || ws.readyState === WebSocket.CONNECTING) {
      ws.terminate();
      return;
    }
    if (ws.readyState === WebSocket.OPEN) {
      ws.close(
        action === 'stop' ? CLOSE_TO_STOP : CLOSE_TO_RECONNECT,
        action === 'stop' ? 'stopping' : 'reconnecting',
      );
    }
    this.setTimer('close-wait', this.options.timeouts.closeMs);
  }

  private send(text: string): void {
    const ws = this.ws;
    if (ws === null || ws.readyState !== WebSocket.OPEN) return;
    ws.send(text);
  }
}
