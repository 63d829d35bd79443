/**
 * One Discord gateway connection: `?v=10&encoding=json`, Hello, Identify or Resume, paced
 * commands, dispatches, and the decision of what the reconnect loop does after it ends. The
 * socket loop, heartbeats, zombie detection and the close handshake are the shared
 * GatewaySocket (src/net/gateway-socket.ts), which the QQ adapter uses too.
 */
import type { Logger } from 'pino';
import { GatewayError } from '../../errors.js';
import { GatewaySocket, type CloseVerdict } from '../../net/gateway-socket.js';
import { WindowPacer } from '../../util/window-pacer.js';
import {
  OPCODE_ACTIONS,
  Op,
  connectUrl,
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
 * Our close code for a reconnect and for a planned stop: never 1000 / 1001, which end the
 * session on Discord's side (https://discord.com/developers/docs/events/gateway#resuming),
 * so the next connection, or the next process, can Resume.
 */
export const CLOSE_KEEP_SESSION = 4000;

export interface ConnectionHooks {
  frame(): void;
  phase(detail: 'identifying' | 'resuming'): void;
  /** READY or RESUMED arrived; resolves once `connected` is persisted. */
  ready(info: {
    resumed: boolean;
    sessionId: string;
    resumeUrl: string;
    botId: string | null;
  }): Promise<void>;
  /** A dispatch other than READY / RESUMED, with its `s`. */
  dispatch(t: string, d: unknown, seq: number | null): void;
  dropped(code: 'GW_ERR_DISCORD_MALFORMED_FRAME' | 'GW_ERR_DISCORD_FRAME_TOO_LARGE'): void;
}

export interface ConnectionOptions {
  /** Where to connect: the gateway URL to Identify, the session's resume URL to Resume. */
  url: string;
  token: string;
  intents: number;
  shard: readonly [number, number];
  resume: { sessionId: string; seq: number; resumeUrl: string } | null;
  timeouts: {
    connectMs: number;
    helloMs: number;
    readyMs: number;
    heartbeatAckMs: number;
    closeMs: number;
  };
  gatewayLimit: { commands: number; windowMs: number };
  maxPayloadBytes: number;
  jitter: boolean;
  random?: () => number;
  log: Logger;
  hooks: ConnectionHooks;
}

export interface ConnectionEnd {
  action: ReconnectAction | 'stop';
  error: GatewayError | null;
  closeCode: number | null;
  readyAt: number | null;
  sentResume: boolean;
  sentIdentify: boolean;
  /** The session after this connection (null when there is none to resume). */
  session: { sessionId: string; seq: number; resumeUrl: string } | null;
  /** When the heartbeat watchdog declared the link dead (epoch ms); null otherwise. */
  zombieAt: number | null;
  /** Heartbeat interval Hello announced (0 without Hello). */
  intervalMs: number;
}

type Command = { what: 'heartbeat' } | { what: 'frame'; text: string };

export class DiscordConnection extends GatewaySocket<ReconnectAction> {
  private readonly pacer: WindowPacer;
  /** Commands waiting for room in the 120 / 60 s window, in order. */
  private readonly queued: Command[] = [];
  private helloSeen = false;
  private session: { sessionId: string; seq: number; resumeUrl: string } | null;
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
        connectFailed: 'GW_ERR_DISCORD_CONNECT_FAILED',
        helloTimeout: 'GW_ERR_DISCORD_HELLO_TIMEOUT',
        readyTimeout: 'GW_ERR_DISCORD_READY_TIMEOUT',
        heartbeatTimeout: 'GW_ERR_DISCORD_HEARTBEAT_TIMEOUT',
        frameTooLarge: 'GW_ERR_DISCORD_FRAME_TOO_LARGE',
        malformedFrame: 'GW_ERR_DISCORD_MALFORMED_FRAME',
      },
      closeCode: CLOSE_KEEP_SESSION,
      onFrame: () => options.hooks.frame(),
      onDropped: (code) =>
        options.hooks.dropped(
          code === 'GW_ERR_DISCORD_FRAME_TOO_LARGE'
            ? 'GW_ERR_DISCORD_FRAME_TOO_LARGE'
            : 'GW_ERR_DISCORD_MALFORMED_FRAME',
        ),
    });
    this.session = options.resume === null ? null : { ...options.resume };
    this.seq = options.resume?.seq ?? null;
    this.pacer = new WindowPacer(options.gatewayLimit.commands, options.gatewayLimit.windowMs);
  }

  /**
   * The connection's life. Resolves once the socket is closed, with what to do next; an
   * aborted `signal` closes it with 4000 (action `stop`). Rejects only when a hook rejects
   * (a state write failed), after the socket is cut.
   */
  async run(signal: AbortSignal): Promise<ConnectionEnd> {
    const { action, error, closeCode } = await this.runSocket(signal);
    const session =
      action === 'identify' || this.session === null
        ? null
        : { ...this.session, seq: this.seq ?? this.session.seq };
    return {
      action,
      error,
      closeCode,
      readyAt: this.readyAt,
      sentResume: this.sentResume,
      sentIdentify: this.sentIdentify,
      session,
      zombieAt: this.zombieAt,
      intervalMs: this.intervalMs,
    };
  }

  protected get resumeAction(): ReconnectAction {
    return 'resume';
  }

  protected decideClose(code: number): CloseVerdict<ReconnectAction> {
    return decideClose(code);
  }

  protected override socketUrl(): string {
    return connectUrl(this.options.url);
  }

  protected sendHeartbeat(): void {
    this.command({ what: 'heartbeat' });
  }

  protected override onOwnTimer(name: string): void {
    if (name === 'pacer') this.flush();
  }

  /**
   * Sends a command through the pacer: at most gateway_limit.commands per window, heartbeats
   * included (Discord closes with 4008 beyond 120 / 60 s). What does not fit waits in order;
   * a heartbeat already waiting is not queued twice (it carries the latest seq anyway).
   */
  private command(cmd: Command): void {
    if (this.ending !== null) return;
    if (cmd.what === 'heartbeat' && this.queued.some((c) => c.what === 'heartbeat')) return;
    this.queued.push(cmd);
    this.flush();
  }

  private flush(): void {
    while (this.queued.length > 0) {
      if (this.ending !== null) {
        this.queued.length = 0;
        return;
      }
      if (!this.pacer.tryTake()) {
        const waitMs = this.pacer.waitMs();
        if (!this.hasTimer('pacer')) {
          this.log.debug(
            { queued: this.queued.length, wait_ms: waitMs },
            'gateway command limit reached: commands wait for room',
          );
          this.setTimer('pacer', Math.max(1, waitMs));
        }
        return;
      }
      const cmd = this.queued.shift()!;
      this.sendNow(cmd.what === 'heartbeat' ? heartbeatFrame(this.seq) : cmd.text);
    }
  }

  protected onText(text: string, size: number): Promise<void> | undefined {
    const frame = parseFrame(text);
    if (frame === null) {
      this.malformed(text, size);
      return;
    }
    // A frame we no longer act on must not advance the seq we resume from.
    if (this.ending !== null) return;
    if (frame.op === Op.Dispatch && frame.s !== null && (this.seq === null || frame.s > this.seq)) {
      this.seq = frame.s;
    }
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
        // The server asks for a beat now; it is not the timer's (no zombie check).
        this.command({ what: 'heartbeat' });
        return;
      case Op.Reconnect:
        this.log.info('server requested a reconnect (op 7)');
        this.end(
          OPCODE_ACTIONS.reconnect,
          new GatewayError(
            'GW_ERR_DISCORD_RECONNECT_REQUESTED',
            'the server requested a reconnect (op 7)',
          ),
          'close',
        );
        return;
      case Op.InvalidSession: {
        const resumable = frame.d === true;
        this.log.info({ resumable }, 'invalid session (op 9)');
        if (!resumable) this.session = null;
        this.end(
          resumable ? OPCODE_ACTIONS.invalidSessionResumable : OPCODE_ACTIONS.invalidSession,
          new GatewayError(
            'GW_ERR_DISCORD_INVALID_SESSION',
            `invalid session (op 9, resumable: ${resumable})`,
            { details: { resumable } },
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
        new GatewayError('GW_ERR_DISCORD_PROTOCOL_ERROR', 'Hello without a heartbeat_interval'),
        'close',
      );
      return;
    }
    this.helloSeen = true;
    this.startHeartbeats(interval);
    const resume = this.options.resume;
    this.options.hooks.phase(resume !== null ? 'resuming' : 'identifying');
    const { token, intents, shard } = this.options;
    if (resume !== null) {
      this.command({ what: 'frame', text: resumeFrame(token, resume.sessionId, resume.seq) });
      this.sentResume = true;
    } else {
      this.command({ what: 'frame', text: identifyFrame(token, intents, shard) });
      this.sentIdentify = true;
    }
  }

  private onDispatch(frame: GatewayFrame): Promise<void> | undefined {
    if (frame.t === 'READY') {
      const ready = parseReady(frame.d);
      if (ready === null) {
        this.end(
          'identify',
          new GatewayError(
            'GW_ERR_DISCORD_PROTOCOL_ERROR',
            'READY without session_id, resume_gateway_url or user',
          ),
          'close',
        );
        return;
      }
      this.session = { sessionId: ready.sessionId, resumeUrl: ready.resumeUrl, seq: this.seq ?? 0 };
      this.handshakeDone();
      this.readyAt = Date.now();
      return this.options.hooks.ready({
        resumed: false,
        sessionId: ready.sessionId,
        resumeUrl: ready.resumeUrl,
        botId: ready.botId,
      });
    }
    if (frame.t === 'RESUMED') {
      this.handshakeDone();
      this.readyAt = Date.now();
      return this.options.hooks.ready({
        resumed: true,
        sessionId: this.session?.sessionId ?? '',
        resumeUrl: this.session?.resumeUrl ?? '',
        botId: null,
      });
    }
    if (frame.t === null) {
      this.log.debug('dispatch without an event type ignored');
      return;
    }
    this.options.hooks.dispatch(frame.t, frame.d, frame.s);
    return;
  }
}
