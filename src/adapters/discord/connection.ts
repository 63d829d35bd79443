/**
 * One Discord gateway connection: open (`?v=10&encoding=json`), Hello, Identify or Resume,
 * heartbeats, paced commands, dispatches, and the decision of what the reconnect loop does
 * after it ends (one decision per connection: the first cause wins).
 *
 * Socket and timer callbacks only push items into an inbox (src/util/inbox.ts); one loop
 * (`run`) handles them in order, so every state change happens in one place.
 */
import type { Logger } from 'pino';
import WebSocket, { type RawData } from 'ws';
import { GatewayError } from '../../errors.js';
import { ackDeadlineMs, rawSize, rawText } from '../../net/ws-frames.js';
import { Inbox } from '../../util/inbox.js';
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

type TimerName = 'hello' | 'ready' | 'beat' | 'ack' | 'close-wait' | 'pacer';

type Item =
  | { kind: 'open' }
  | { kind: 'message'; data: RawData }
  | { kind: 'close'; code: number; reason: string }
  | { kind: 'error'; error: Error & { code?: string } }
  | { kind: 'timer'; name: TimerName }
  | { kind: 'abort' };

type Command = { what: 'heartbeat' } | { what: 'frame'; text: string };

export class DiscordConnection {
  private readonly inbox = new Inbox<Item>();
  private readonly timers = new Map<TimerName, NodeJS.Timeout>();
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly pacer: WindowPacer;
  /** Commands waiting for room in the 120 / 60 s window, in order. */
  private readonly queued: Command[] = [];
  private ws: WebSocket | null = null;
  private opened = false;
  private helloSeen = false;
  private intervalMs = 0;
  private ackTimeoutMs = 0;
  private awaitingAck = false;
  private lastSocketError: (Error & { code?: string }) | null = null;
  private ending: { action: ReconnectAction | 'stop'; error: GatewayError | null } | null = null;
  private session: { sessionId: string; seq: number; resumeUrl: string } | null;
  private seq: number | null;
  private readyAt: number | null = null;
  private sentResume = false;
  private sentIdentify = false;
  private zombieAt: number | null = null;

  constructor(private readonly options: ConnectionOptions) {
    this.log = options.log;
    this.random = options.random ?? Math.random;
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
    const onAbort = (): void => this.inbox.push({ kind: 'abort' });
    if (signal.aborted) return this.result('stop', null, null);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      if (!this.open()) return this.result(this.ending!.action, this.ending!.error, null);
      let closeCode: number | null = null;
      let failure: Error | null = null;
      for (;;) {
        const item = this.inbox.poll() ?? (await this.inbox.take());
        if (item.kind === 'close') {
          closeCode = this.onClose(item.code, item.reason);
          break;
        }
        if (failure !== null) continue;
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

  private open(): boolean {
    const { timeouts, maxPayloadBytes } = this.options;
    let ws: WebSocket;
    let url: string;
    try {
      url = connectUrl(this.options.url);
      ws = new WebSocket(url, {
        handshakeTimeout: timeouts.connectMs,
        maxPayload: maxPayloadBytes * 4,
        perMessageDeflate: false,
      });
    } catch (err) {
      this.ending = {
        action: 'resume',
        error: new GatewayError(
          'GW_ERR_DISCORD_CONNECT_FAILED',
          `cannot connect to ${this.options.url}: ${String(err)}`,
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
      this.log.warn(
        {
          code: 'GW_ERR_DISCORD_FRAME_TOO_LARGE',
          hard_limit_bytes: this.options.maxPayloadBytes * 4,
        },
        'frame above the hard size limit: connection cut',
      );
      this.options.hooks.dropped('GW_ERR_DISCORD_FRAME_TOO_LARGE');
      this.end(
        'resume',
        new GatewayError('GW_ERR_DISCORD_FRAME_TOO_LARGE', 'frame above the hard size limit'),
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
            'GW_ERR_DISCORD_HELLO_TIMEOUT',
            `no Hello within ${this.options.timeouts.helloMs} ms`,
          ),
          'terminate',
        );
        return;
      case 'ready':
        this.end(
          'resume',
          new GatewayError(
            'GW_ERR_DISCORD_READY_TIMEOUT',
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
      case 'pacer':
        this.flush();
        return;
      case 'close-wait':
        this.ws?.terminate();
        return;
    }
  }

  /** The timer's heartbeat: sent (or queued behind the pacer), ACK deadline and next beat armed. */
  private beat(): void {
    if (this.ending !== null) return;
    if (this.awaitingAck) {
      this.zombie();
      return;
    }
    this.command({ what: 'heartbeat' });
    this.awaitingAck = true;
    this.setTimer('ack', this.ackTimeoutMs);
    this.setTimer('beat', this.intervalMs);
  }

  private zombie(): void {
    this.zombieAt = Date.now();
    this.log.warn(
      {
        code: 'GW_ERR_DISCORD_HEARTBEAT_TIMEOUT',
        heartbeat_interval_ms: this.intervalMs,
        ack_timeout_ms: this.ackTimeoutMs,
      },
      'heartbeat not acknowledged: zombie connection, terminating to resume',
    );
    // terminate(): no close frame, so Discord keeps the session for a Resume.
    this.end(
      'resume',
      new GatewayError(
        'GW_ERR_DISCORD_HEARTBEAT_TIMEOUT',
        `heartbeat not acknowledged within ${this.ackTimeoutMs} ms (interval ${this.intervalMs} ms)`,
      ),
      'terminate',
    );
  }

  /**
   * Sends a command through the pacer: at most gateway_limit.commands per window, heartbeats
   * included (Discord closes with 4008 beyond 120 / 60 s). What does not fit waits in order;
   * a heartbeat already waiting is not queued twice (one carries the latest seq anyway).
   */
  private command(cmd: Command): void {
    if (cmd.what === 'heartbeat' && this.queued.some((c) => c.what === 'heartbeat')) return;
    this.queued.push(cmd);
    this.flush();
  }

  private flush(): void {
    while (this.queued.length > 0) {
      if (!this.pacer.tryTake()) {
        const waitMs = this.pacer.waitMs();
        if (!this.timers.has('pacer')) {
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

  private onMessage(data: RawData): Promise<void> | undefined {
    this.options.hooks.frame();
    const size = rawSize(data);
    if (size > this.options.maxPayloadBytes) {
      this.log.warn(
        {
          code: 'GW_ERR_DISCORD_FRAME_TOO_LARGE',
          bytes: size,
          limit_bytes: this.options.maxPayloadBytes,
        },
        'frame above max_payload_bytes dropped',
      );
      this.options.hooks.dropped('GW_ERR_DISCORD_FRAME_TOO_LARGE');
      return;
    }
    const text = rawText(data);
    const frame = parseFrame(text);
    if (frame === null) {
      this.log.warn(
        { code: 'GW_ERR_DISCORD_MALFORMED_FRAME', bytes: size, head: text.slice(0, 64) },
        'malformed frame dropped',
      );
      this.options.hooks.dropped('GW_ERR_DISCORD_MALFORMED_FRAME');
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
        this.awaitingAck = false;
        this.clearTimer('ack');
        return;
      case Op.Heartbeat:
        // The server asks for a beat now; it does not count as the timer's (no zombie check).
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
    this.clearTimer('hello');
    this.intervalMs = interval;
    this.ackTimeoutMs = ackDeadlineMs(interval, this.options.timeouts.heartbeatAckMs);
    // The first beat is jittered so clients that reconnect together do not beat together.
    const first = this.options.jitter ? interval * this.random() : interval;
    this.setTimer('beat', first);
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
    this.setTimer('ready', this.options.timeouts.readyMs);
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
      this.session = {
        sessionId: ready.sessionId,
        resumeUrl: ready.resumeUrl,
        seq: this.seq ?? 0,
      };
      this.clearTimer('ready');
      this.readyAt = Date.now();
      return this.options.hooks.ready({
        resumed: false,
        sessionId: ready.sessionId,
        resumeUrl: ready.resumeUrl,
        botId: ready.botId,
      });
    }
    if (frame.t === 'RESUMED') {
      this.clearTimer('ready');
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

  private onClose(code: number, reason: string): number | null {
    if (this.ending !== null) {
      // A fatal close code is the platform's last word whatever we had decided.
      const late = this.opened ? decideClose(code) : null;
      if (late?.action === 'fatal' && this.ending.action !== 'stop') {
        this.ending = { action: 'fatal', error: this.closeError(code, reason) };
      }
      return this.opened ? code : null;
    }
    if (!this.opened) {
      const cause = this.lastSocketError?.message ?? `closed with ${code}`;
      this.ending = {
        action: 'resume',
        error: new GatewayError(
          'GW_ERR_DISCORD_CONNECT_FAILED',
          `cannot connect to ${this.options.url}: ${cause}`,
          { cause: this.lastSocketError ?? undefined },
        ),
      };
      return null;
    }
    const decision = decideClose(code);
    if (!decision.known) {
      this.log.warn(
        { code: decision.errorCode, close_code: code, reason },
        `unknown close code ${code}: resuming`,
      );
    }
    if (decision.action === 'identify') this.session = null;
    this.ending = { action: decision.action, error: this.closeError(code, reason) };
    return code;
  }

  private closeError(code: number, reason: string): GatewayError {
    const decision = decideClose(code);
    const text = reason === '' ? '' : ` "${reason.slice(0, 120)}"`;
    const fix = decision.fix === null ? '' : `: ${decision.fix}`;
    return new GatewayError(
      decision.errorCode,
      `gateway closed the connection with ${code} (${decision.meaning})${text}${fix}`,
      { details: { close_code: code } },
    );
  }

  /**
   * Decides how this connection ends (the first decision wins) and starts closing: `close`
   * sends 4000 (the session stays resumable) and cuts the socket if the peer does not answer
   * within closeMs; `terminate` cuts it at once; `none` leaves it to ws.
   */
  private end(
    action: ReconnectAction | 'stop',
    error: GatewayError | null,
    how: 'close' | 'terminate' | 'none',
  ): void {
    if (this.ending !== null) return;
    this.ending = { action, error };
    for (const name of ['hello', 'ready', 'beat', 'ack', 'pacer'] as const) this.clearTimer(name);
    this.queued.length = 0;
    const ws = this.ws;
    if (ws === null || how === 'none') return;
    if (how === 'terminate' || ws.readyState === WebSocket.CONNECTING) {
      ws.terminate();
      return;
    }
    if (ws.readyState === WebSocket.OPEN) {
      ws.close(CLOSE_KEEP_SESSION, action === 'stop' ? 'stopping' : 'reconnecting');
    }
    this.setTimer('close-wait', this.options.timeouts.closeMs);
  }

  private sendNow(text: string): void {
    const ws = this.ws;
    if (ws === null || ws.readyState !== WebSocket.OPEN) return;
    ws.send(text);
  }
}
