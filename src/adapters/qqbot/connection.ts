/**
 * One QQ gateway connection: Hello, Identify or Resume, dispatches, and the decision of what
 * the reconnect loop does after it ends. The socket loop, heartbeats, zombie detection and
 * the close handshake are the shared GatewaySocket (src/net/gateway-socket.ts), which the
 * Discord adapter uses too.
 */
import type { Logger } from 'pino';
import { GatewayError } from '../../errors.js';
import { GatewaySocket, type CloseVerdict } from '../../net/gateway-socket.js';
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

/**
 * Our close code for a reconnect and when the adapter stops: not 1000, which ends the session
 * on Discord and has no documented meaning on QQ. A planned stop leaves the session resumable
 * for the next process (docs/delivery.md), as a reconnect does.
 */
const CLOSE_KEEP_SESSION = 4000;

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

export class GatewayConnection extends GatewaySocket<ReconnectAction> {
  private helloSeen = false;
  private sessionId: string | null;
  private seq: number | null;
  private readyAt: number | null = null;
  private sentResume = false;
  private sentIdentify = false;

  constructor(private readonly options: ConnectionOptions) {
    super({
      url: options.url,
      timeouts: options.timeouts,
      maxPayloadBytes: options.maxPayloadBytes,
      jitter: options.jitter,
      ...(options.random === undefined ? {} : { random: options.random }),
      log: options.log,
      codes: {
        connectFailed: 'GW_ERR_QQ_CONNECT_FAILED',
        helloTimeout: 'GW_ERR_QQ_HELLO_TIMEOUT',
        readyTimeout: 'GW_ERR_QQ_READY_TIMEOUT',
        heartbeatTimeout: 'GW_ERR_QQ_HEARTBEAT_TIMEOUT',
        frameTooLarge: 'GW_ERR_QQ_FRAME_TOO_LARGE',
        malformedFrame: 'GW_ERR_QQ_MALFORMED_FRAME',
      },
      closeCode: CLOSE_KEEP_SESSION,
      onFrame: () => options.hooks.frame(),
      onDropped: (code) =>
        options.hooks.dropped(
          code === 'GW_ERR_QQ_FRAME_TOO_LARGE'
            ? 'GW_ERR_QQ_FRAME_TOO_LARGE'
            : 'GW_ERR_QQ_MALFORMED_FRAME',
        ),
    });
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
    const { action, error, closeCode } = await this.runSocket(signal);
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

  protected get resumeAction(): ReconnectAction {
    return 'resume';
  }

  protected decideClose(code: number): CloseVerdict<ReconnectAction> {
    return decideClose(code);
  }

  protected sendHeartbeat(): void {
    this.sendNow(heartbeatFrame(this.seq));
  }

  protected onText(text: string, size: number): Promise<void> | undefined {
    const frame = parseFrame(text);
    if (frame === null) {
      this.malformed(text, size);
      return;
    }
    // A frame we do not act on (the connection is ending) must not advance the seq we resume
    // from, or the server will not replay it. Track the seq from every frame that carries one;
    // dispatches are "mostly ordered", so the highest seen is the one to echo (fact sheet §3.3).
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
        this.acked();
        return;
      case Op.Heartbeat:
        // The server asks for a heartbeat now (DOC lists op 1 as Send/Receive).
        this.sendHeartbeat();
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
    this.startHeartbeats(interval);
    const resume = this.options.resume;
    this.options.hooks.phase(resume !== null ? 'resuming' : 'identifying');
    const { accessToken, intents, shard } = this.options;
    if (resume !== null) {
      this.sendNow(resumeFrame(accessToken, resume.sessionId, resume.seq));
      this.sentResume = true;
    } else {
      this.sendNow(identifyFrame(accessToken, intents, shard));
      this.sentIdentify = true;
    }
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
      this.handshakeDone();
      this.readyAt = Date.now();
      return this.options.hooks.ready({
        resumed: false,
        sessionId: ready.sessionId,
        botId: ready.botId,
      });
    }
    if (frame.t === 'RESUMED') {
      this.handshakeDone();
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
}
