/**
 * The gateway half of the fake Discord: sessions with a replay buffer, one connection's
 * protocol (Hello, heartbeats, Identify / Resume, the command limit), and the checks that
 * turn a client's protocol error into a recorded violation. Written from the docs, not from
 * the adapter (nothing from `src/adapters`), so that it catches the adapter's bugs.
 */
import type { WebSocket } from 'ws';
import type { FakeDiscordSettings } from './options.js';

export type ViolationKind =
  | 'resume-wrong-url'
  | 'heartbeat-without-seq'
  | 'identify-without-intents'
  | 'too-many-commands'
  | 'identify-too-soon'
  | 'identify-over-limit'
  | 'session-ending-close'
  | 'bad-query'
  | 'bad-payload'
  | 'not-authenticated'
  | 'already-authenticated'
  | 'heartbeat-missed';

export interface Violation {
  kind: ViolationKind;
  detail: string;
  at: number;
}

export interface Dispatch {
  s: number;
  t: string;
  d: unknown;
}

export interface Session {
  id: string;
  seq: number;
  intents: number;
  buffer: Dispatch[];
  conn: Connection | null;
  /** When its last connection closed (null while connected). */
  closedAt: number | null;
  invalid: boolean;
}

export interface GatewayHost {
  settings: FakeDiscordSettings;
  violation(kind: ViolationKind, detail: string): void;
  changed(): void;
  resumeUrl(): string;
  sessions: Map<string, Session>;
  records: GatewayRecords;
  /** Identify times per concurrency bucket. */
  lastIdentifyAt: Map<number, number>;
  takeSessionStart(): boolean;
}

export interface GatewayRecords {
  connections: Array<{ path: string; at: number }>;
  identifies: Array<{ intents: unknown; shard: unknown; at: number; accepted: boolean }>;
  resumes: Array<{ sessionId: string; seq: number; path: string; accepted: boolean; at: number }>;
  heartbeats: Array<{ d: unknown; at: number }>;
  clientCloses: number[];
  commandsPerConnection: number[];
}

const PRIVILEGED = (1 << 1) | (1 << 8) | (1 << 15);
/** Intent bits the docs define (fact sheet §7); any other bit closes 4013. */
const DEFINED_INTENTS = [
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 20, 21, 24, 25,
].reduce((m, b) => m | (1 << b), 0);
const GUILD_MESSAGES = 1 << 9;
const DIRECT_MESSAGES = 1 << 12;
const MESSAGE_CONTENT = 1 << 15;
const GUILDS = 1 << 0;
const MAX_CLIENT_FRAME = 4096;

let nextSessionId = 1;

/** One client connection on the fake gateway. */
export class Connection {
  session: Session | null = null;
  private identified = false;
  private readonly commandTimes: number[] = [];
  private commands = 0;
  private deadline: NodeJS.Timeout | null = null;
  private helloTimer: NodeJS.Timeout | null = null;
  private lastDispatchSentAt: number | null = null;
  private lastSeqSent: number | null;
  /** Whether the previous heartbeat carried a seq older than a dispatch sent 200 ms before it. */
  private behindBefore = false;
  /** Stops ACKing heartbeats (zombie) when true. */
  stopAcks = false;
  /** Ignores the client and sends nothing (half-open link). */
  halfOpen = false;
  closed = false;
  /** Set when the server started the close: the code echoed back is not the client's. */
  private serverClosed = false;

  constructor(
    private readonly host: GatewayHost,
    readonly ws: WebSocket,
    readonly path: string,
  ) {
    this.lastSeqSent = null;
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    ws.on('close', (code) => this.onClose(code));
    ws.on('error', () => undefined);
    const { helloDelayMs } = host.settings;
    if (helloDelayMs !== null) {
      this.helloTimer = setTimeout(() => {
        this.helloTimer = null;
        this.send({ op: 10, d: { heartbeat_interval: host.settings.heartbeatIntervalMs } });
        this.armDeadline();
      }, helloDelayMs);
    }
  }

  send(frame: { op: number; d: unknown; s?: number | null; t?: string | null }): void {
    if (this.closed || this.halfOpen || this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(JSON.stringify({ s: null, t: null, ...frame }));
  }

  sendDispatch(dispatch: Dispatch): void {
    if (!this.identified && dispatch.t !== 'READY') return;
    this.send({ op: 0, ...dispatch });
    this.lastDispatchSentAt = Date.now();
    this.lastSeqSent = dispatch.s;
  }

  close(code: number, reason = ''): void {
    if (this.closed || this.serverClosed) return;
    this.serverClosed = true;
    // Discord ends the session itself when it closes with 1000 (fact sheet §4).
    if (code === 1000 && this.session !== null) this.session.invalid = true;
    this.ws.close(code, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }

  private armDeadline(): void {
    const { heartbeatDeadlineMs, heartbeatIntervalMs } = this.host.settings;
    const ms =
      heartbeatDeadlineMs === undefined ? heartbeatIntervalMs * 1.5 + 500 : heartbeatDeadlineMs;
    if (ms === null) return;
    if (this.deadline !== null) clearTimeout(this.deadline);
    this.deadline = setTimeout(() => {
      this.deadline = null;
      if (this.halfOpen) return;
      this.host.violation('heartbeat-missed', `no heartbeat within ${ms} ms`);
      // Dropped without a close frame: the session stays resumable.
      this.terminate();
    }, ms);
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.closed || this.halfOpen) return;
    if (!this.countCommand()) return;
    if (isBinary || data.length > MAX_CLIENT_FRAME) {
      this.host.violation('bad-payload', `frame of ${data.length} bytes (binary: ${isBinary})`);
      this.close(4002, 'Error while decoding payload.');
      return;
    }
    let frame: unknown;
    try {
      frame = JSON.parse(data.toString('utf8'));
    } catch {
      this.host.violation('bad-payload', 'not JSON');
      this.close(4002, 'Error while decoding payload.');
      return;
    }
    if (!isObject(frame) || typeof frame.op !== 'number') {
      this.host.violation('bad-payload', 'no op');
      this.close(4002, 'Error while decoding payload.');
      return;
    }
    switch (frame.op) {
      case 1:
        this.onHeartbeat(frame.d);
        return;
      case 2:
        this.onIdentify(frame.d);
        return;
      case 6:
        this.onResume(frame.d);
        return;
      case 3:
      case 4:
      case 8:
        if (!this.identified) {
          this.host.violation('not-authenticated', `op ${frame.op} before Identify`);
          this.close(4003, 'Not authenticated.');
        }
        return;
      default:
        this.host.violation('bad-payload', `unknown op ${String(frame.op)}`);
        this.close(4001, 'Unknown opcode.');
    }
  }

  /** Counts one command; false (connection closed 4008) beyond the limit. */
  private countCommand(): boolean {
    const now = Date.now();
    const { count, windowMs } = this.host.settings.commandLimit;
    this.commands += 1;
    this.commandTimes.push(now);
    while (this.commandTimes.length > 0 && this.commandTimes[0]! <= now - windowMs) {
      this.commandTimes.shift();
    }
    if (this.commandTimes.length <= count) return true;
    this.host.violation(
      'too-many-commands',
      `${this.commandTimes.length} commands within ${windowMs} ms (limit ${count})`,
    );
    this.close(4008, 'Rate limited.');
    return false;
  }

  private onHeartbeat(d: unknown): void {
    this.host.records.heartbeats.push({ d, at: Date.now() });
    const behind =
      this.lastDispatchSentAt !== null &&
      Date.now() - this.lastDispatchSentAt > 200 &&
      (d === null || (typeof d === 'number' && this.lastSeqSent !== null && d < this.lastSeqSent));
    // One heartbeat behind is what a client whose loop stalled sends: its timer fires before
    // it reads the frames that arrived meanwhile. Two in a row is a client that does not
    // track the seq.
    const stale = behind && this.behindBefore;
    this.behindBefore = behind;
    if (!(d === null || Number.isInteger(d)) || stale) {
      this.host.violation(
        'heartbeat-without-seq',
        `heartbeat d=${JSON.stringify(d)}, last seq sent ${this.lastSeqSent}`,
      );
    }
    this.armDeadline();
    this.host.changed();
    if (this.ackDisabled()) return;
    this.send({ op: 11, d: null });
  }

  private ackDisabled(): boolean {
    return this.stopAcks || !this.host.settings.ackHeartbeats;
  }

  private onIdentify(d: unknown): void {
    const { settings } = this.host;
    const now = Date.now();
    if (this.identified || this.session !== null) {
      this.host.violation('already-authenticated', 'second Identify / Resume');
      this.close(4005, 'Already authenticated.');
      return;
    }
    const record = {
      intents: isObject(d) ? d.intents : undefined,
      shard: isObject(d) ? d.shard : undefined,
      at: now,
      accepted: false,
    };
    this.host.records.identifies.push(record);
    this.host.changed();
    if (!isObject(d) || d.token !== settings.token) {
      this.close(4004, 'Authentication failed.');
      return;
    }
    if (typeof d.intents !== 'number' || !Number.isInteger(d.intents)) {
      this.host.violation('identify-without-intents', `intents ${JSON.stringify(d.intents)}`);
      this.close(4013, 'Invalid intent(s).');
      return;
    }
    if ((d.intents & ~DEFINED_INTENTS) !== 0) {
      this.close(4013, 'Invalid intent(s).');
      return;
    }
    if ((d.intents & PRIVILEGED & ~settings.allowedPrivilegedIntents) !== 0) {
      this.close(4014, 'Disallowed intent(s).');
      return;
    }
    const shard = d.shard;
    if (
      shard !== undefined &&
      (!Array.isArray(shard) ||
        shard.length !== 2 ||
        !Number.isInteger(shard[0]) ||
        !Number.isInteger(shard[1]) ||
        (shard[0] as number) < 0 ||
        (shard[0] as number) >= (shard[1] as number))
    ) {
      this.close(4010, 'Invalid shard.');
      return;
    }
    const bucket = Array.isArray(shard)
      ? (shard[0] as number) % settings.sessionStartLimit.max_concurrency
      : 0;
    const last = this.host.lastIdentifyAt.get(bucket);
    if (last !== undefined && now - last < settings.identifyWindowMs) {
      this.host.violation('identify-too-soon', `${now - last} ms after the previous Identify`);
      this.send({ op: 9, d: false });
      return;
    }
    if (!this.host.takeSessionStart()) {
      this.host.violation('identify-over-limit', 'session_start_limit.remaining was 0');
      this.send({ op: 9, d: false });
      return;
    }
    this.host.lastIdentifyAt.set(bucket, now);
    record.accepted = true;
    const session: Session = {
      id: `fake-session-${nextSessionId++}-${Math.random().toString(36).slice(2, 10)}`,
      seq: 0,
      intents: d.intents,
      buffer: [],
      conn: this,
      closedAt: null,
      invalid: false,
    };
    this.host.sessions.set(session.id, session);
    this.session = session;
    const ready = push(
      session,
      'READY',
      {
        v: 10,
        user: { id: settings.bot.id, username: settings.bot.username, bot: true },
        guilds: settings.guildIds.map((id) => ({ id, unavailable: true })),
        session_id: session.id,
        resume_gateway_url: this.host.resumeUrl(),
        shard: Array.isArray(shard) ? shard : [0, 1],
        application: { id: settings.applicationId, flags: 0 },
      },
      settings.replayBufferSize,
    );
    this.sendDispatch(ready);
    this.identified = true;
    if ((d.intents & GUILDS) !== 0) {
      for (const id of settings.guildIds) {
        this.sendDispatch(
          push(
            session,
            'GUILD_CREATE',
            { id, name: `guild ${id}`, unavailable: false },
            settings.replayBufferSize,
          ),
        );
      }
    }
    this.host.changed();
  }

  private onResume(d: unknown): void {
    const { settings } = this.host;
    if (this.identified || this.session !== null) {
      this.host.violation('already-authenticated', 'Resume on an authenticated connection');
      this.close(4005, 'Already authenticated.');
      return;
    }
    const sessionId = isObject(d) && typeof d.session_id === 'string' ? d.session_id : '';
    const seq = isObject(d) && typeof d.seq === 'number' ? d.seq : -1;
    const record = { sessionId, seq, path: this.path, accepted: false, at: Date.now() };
    this.host.records.resumes.push(record);
    this.host.changed();
    if (!isObject(d) || d.token !== settings.token) {
      this.close(4004, 'Authentication failed.');
      return;
    }
    if (this.path !== '/resume') {
      this.host.violation(
        'resume-wrong-url',
        `Resume sent on ${this.path}, not at resume_gateway_url`,
      );
      this.send({ op: 9, d: false });
      return;
    }
    const session = this.host.sessions.get(sessionId);
    const expired =
      session !== undefined &&
      session.closedAt !== null &&
      settings.resumeWindowMs !== null &&
      Date.now() - session.closedAt > settings.resumeWindowMs;
    if (session === undefined || session.invalid || expired || refusing.has(this.host)) {
      const left = refusing.get(this.host);
      if (left !== undefined) {
        if (left <= 1) refusing.delete(this.host);
        else refusing.set(this.host, left - 1);
      }
      this.send({ op: 9, d: false });
      return;
    }
    if (seq < 0 || seq > session.seq) {
      this.close(4007, 'Invalid seq.');
      return;
    }
    const oldest = session.buffer[0]?.s ?? session.seq + 1;
    if (seq + 1 < oldest && session.buffer.length >= settings.replayBufferSize) {
      this.send({ op: 9, d: false });
      return;
    }
    // The previous connection, if still open, is replaced.
    const previous = session.conn;
    if (previous !== null && previous !== this) previous.terminate();
    session.conn = this;
    session.closedAt = null;
    this.session = session;
    this.identified = true;
    record.accepted = true;
    for (const dispatch of session.buffer) {
      if (dispatch.s > seq && dispatch.t !== 'READY') this.sendDispatch(dispatch);
    }
    this.send({ op: 0, t: 'RESUMED', s: null, d: {} });
    this.host.changed();
  }

  private onClose(code: number): void {
    this.closed = true;
    if (this.deadline !== null) clearTimeout(this.deadline);
    if (this.helloTimer !== null) clearTimeout(this.helloTimer);
    if (!this.serverClosed) this.host.records.clientCloses.push(code);
    this.host.records.commandsPerConnection.push(this.commands);
    const session = this.session;
    if (session !== null && session.conn === this) {
      session.conn = null;
      session.closedAt = Date.now();
      // A client close with 1000 / 1001 ends the session on Discord's side at once.
      if (!this.serverClosed && (code === 1000 || code === 1001)) {
        session.invalid = true;
        this.host.violation('session-ending-close', `client closed with ${code}`);
      }
    }
    this.host.changed();
  }

  /** The message intents filter: whether this session receives `d`, and its content. */
  static visible(
    session: Session,
    botId: string,
    d: Record<string, unknown>,
  ): Record<string, unknown> | null {
    const dm = typeof d.guild_id !== 'string';
    if (dm && (session.intents & DIRECT_MESSAGES) === 0) return null;
    if (!dm && (session.intents & GUILD_MESSAGES) === 0) return null;
    if ((session.intents & MESSAGE_CONTENT) !== 0 || dm) return d;
    const author = isObject(d.author) ? d.author : {};
    const mentions = Array.isArray(d.mentions) ? d.mentions : [];
    const mentioned = mentions.some((m) => isObject(m) && m.id === botId);
    if (author.id === botId || mentioned) return d;
    return { ...d, content: '', embeds: [], attachments: [], components: [] };
  }
}

/** Hosts whose next Resumes are refused (op 9 false), with how many are left. */
export const refusing = new WeakMap<GatewayHost, number>();

/** Appends a dispatch to a session's stream and replay buffer. */
export function push(session: Session, t: string, d: unknown, bufferSize: number): Dispatch {
  session.seq += 1;
  const dispatch = { s: session.seq, t, d };
  session.buffer.push(dispatch);
  if (session.buffer.length > bufferSize) session.buffer.shift();
  return dispatch;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
