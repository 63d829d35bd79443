/**
 * The WebSocket half of the fake: Hello, Identify/READY, Resume/replay/RESUMED, heartbeats,
 * dispatch sequencing per session, and the scripted faults that act on a live connection.
 * See fact sheet §3 and §5.
 */
import { randomUUID } from 'node:crypto';
import type { RawData, WebSocket } from 'ws';
import type { FakeContext } from './context.js';
import { Connection, Session, rawText, type SessionFrame } from './gateway-state.js';
import { heartbeatDeadline } from './options.js';
import { CloseCode, Op, isObject, isUint } from './protocol.js';
import type { DispatchRecord, IdentifyRecord, ResumeRecord, ViolationKind } from './records.js';

/** Sessions kept for Resume; the oldest one without a connection goes first. */
const MAX_SESSIONS = 100;

/** The gateway: accepts connections and owns sessions. */
export class Gateway {
  private readonly sessions = new Map<string, Session>();
  private readonly connections = new Set<Connection>();
  private current: Session | null = null;
  private nextConnectionId = 1;

  constructor(private readonly ctx: FakeContext) {}

  /** Number of open connections. */
  get openConnections(): number {
    return [...this.connections].filter((c) => c.open).length;
  }

  /** Id of the session that `dispatch()` targets by default, if any. */
  get currentSessionId(): string | null {
    return this.current?.id ?? null;
  }

  /** Takes over a freshly upgraded socket. */
  accept(ws: WebSocket): void {
    const conn = new Connection(this.nextConnectionId++, ws);
    this.connections.add(conn);
    ws.on('message', (data, isBinary) => this.onMessage(conn, data, isBinary));
    ws.on('close', (code, reason) => this.onClose(conn, code, reason.toString()));
    // Receiver errors (unmasked, oversized, bad UTF-8): ws closes the socket itself.
    ws.on('error', (err) => {
      conn.closedByServer = true;
      this.ctx.violation('malformed-frame', `connection ${conn.id}: ${err.message}`);
    });
    const record = { connectionId: conn.id, at: Date.now() };
    this.ctx.records.connections.push(record);
    this.ctx.events.emit('connection', record);
    const delay = this.ctx.settings.helloDelayMs;
    if (delay === 0) this.sendHello(conn);
    else if (delay !== null) conn.timers.set(() => this.sendHello(conn), delay);
  }

  /**
   * Sends a dispatch on a session (default: the one of the latest READY/RESUMED). It is
   * written now when that session has a live connection, else buffered for Resume.
   * Throws when there is no such session.
   */
  dispatch(t: string, d: unknown, sessionId?: string): DispatchRecord {
    const session = sessionId === undefined ? this.current : this.sessions.get(sessionId);
    if (session === null || session === undefined) {
      throw new Error(`no gateway session to dispatch ${t} on (${sessionId ?? 'current'})`);
    }
    const frame = session.nextFrame(t, d);
    session.keep(frame, this.ctx.settings.replayBufferSize);
    // Both ids are valid reply targets: `msg_id` (d.id) and `event_id` (frame id).
    this.ctx.knownIds.add(frame.id);
    if (isObject(d) && typeof d.id === 'string') this.ctx.knownIds.add(d.id);
    const conn = session.connection;
    const delivered = conn !== null && this.deliver(conn, session, frame, false);
    const { s, id } = frame;
    const record: DispatchRecord = { sessionId: session.id, s, t, id, d, delivered };
    this.ctx.records.dispatches.push(record);
    this.ctx.events.emit('dispatch', record);
    return record;
  }

  /** Closes the newest open connection with `code` (the session stays resumable). */
  closeClient(code: number, reason = ''): void {
    this.target().closeWith(code, reason);
  }

  /** Drops the newest open connection without a close frame. */
  terminateClient(): void {
    this.target().drop();
  }

  /** Stops (or resumes) answering heartbeats on the newest open connection. */
  stopAcking(on: boolean): void {
    this.target().ackHeartbeats = !on;
  }

  /**
   * Makes the newest open connection half-open: the socket is paused (nothing read, so no
   * heartbeat, ACK or close handshake), dispatches are buffered instead of sent, and the
   * socket stays open until the client gives up or the fake closes.
   */
  goHalfOpen(): void {
    const conn = this.target();
    conn.halfOpen = true;
    conn.timers.clearAll();
    conn.ws.pause();
  }

  /** Sends op 7, then closes 4009 after `reconnectCloseDelayMs` (unless that is null). */
  sendReconnect(): void {
    const conn = this.target();
    conn.send(JSON.stringify({ op: Op.Reconnect }));
    const delay = this.ctx.settings.reconnectCloseDelayMs;
    conn.closeAfter(delay, CloseCode.SessionTimedOut, 'Session timed out');
  }

  /**
   * Sends op 9 with `d: resumable`. A non-resumable one forgets the session. Then, after
   * `invalidSessionCloseDelayMs` (unless null), closes 4903 (not resumable) or 4009.
   */
  sendInvalidSession(resumable: boolean): void {
    const conn = this.target();
    conn.send(JSON.stringify({ op: Op.InvalidSession, d: resumable }));
    if (!resumable && conn.session !== null) this.forgetSession(conn.session.id);
    const [code, reason] = resumable
      ? [CloseCode.SessionTimedOut, 'Session timed out']
      : [CloseCode.CreateSessionError, 'create session error'];
    conn.closeAfter(this.ctx.settings.invalidSessionCloseDelayMs, code, reason);
  }

  /** Writes `text` as one text frame on the newest open connection. */
  sendRaw(text: string): void {
    this.target().send(text);
  }

  /** Forgets a session (default: the current one): a later Resume of it is refused. */
  forgetSession(sessionId?: string): void {
    const id = sessionId ?? this.current?.id;
    if (id === undefined) return;
    this.sessions.delete(id);
    if (this.current?.id === id) this.current = null;
  }

  /** Terminates every connection and clears every timer. */
  closeAll(): void {
    for (const conn of this.connections) conn.drop();
  }

  private target(): Connection {
    const open = [...this.connections].filter((c) => c.open);
    const conn = open[open.length - 1];
    if (conn === undefined) throw new Error('no client connected to the fake QQ gateway');
    return conn;
  }

  private sendHello(conn: Connection): void {
    if (!conn.open) return;
    const interval = this.ctx.settings.heartbeatIntervalMs;
    conn.send(JSON.stringify({ op: Op.Hello, d: { heartbeat_interval: interval } }));
    conn.phase = 'awaiting-auth';
    this.armHeartbeatDeadline(conn);
  }

  /** (Re)starts the silence deadline after Hello and after each heartbeat. */
  private armHeartbeatDeadline(conn: Connection): void {
    conn.timers.clear(conn.heartbeatTimer);
    const deadline = heartbeatDeadline(this.ctx.settings);
    if (deadline === null || conn.halfOpen) return;
    conn.heartbeatTimer = conn.timers.set(() => {
      this.ctx.violation(
        'heartbeat-missed',
        `connection ${conn.id}: no heartbeat for ${deadline} ms`,
      );
      conn.closeWith(CloseCode.SessionTimedOut, 'Session timed out');
    }, deadline);
  }

  private onMessage(conn: Connection, data: RawData, isBinary: boolean): void {
    if (!conn.open || conn.halfOpen) return;
    if (isBinary) {
      this.reject(conn, 'binary-frame', 'binary frame', CloseCode.InvalidPayload);
      return;
    }
    const text = rawText(data);
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      this.reject(
        conn,
        'malformed-frame',
        `not JSON: ${text.slice(0, 80)}`,
        CloseCode.InvalidPayload,
      );
      return;
    }
    if (!isObject(frame) || !Number.isInteger(frame.op)) {
      this.reject(
        conn,
        'malformed-frame',
        `no integer op: ${text.slice(0, 80)}`,
        CloseCode.InvalidPayload,
      );
      return;
    }
    this.ctx.events.emit('frame', { connectionId: conn.id, data: frame });
    if (conn.phase === 'pre-hello') {
      // The platform would not expect it; the frame is dropped.
      this.ctx.violation(
        'frame-before-hello',
        `connection ${conn.id}: op ${String(frame.op)} before Hello`,
      );
      return;
    }
    switch (frame.op) {
      case Op.Heartbeat:
        this.onHeartbeat(conn, frame);
        return;
      case Op.Identify:
        this.onIdentify(conn, frame.d);
        return;
      case Op.Resume:
        this.onResume(conn, frame.d);
        return;
      default:
        this.reject(conn, 'unknown-opcode', `op ${String(frame.op)}`, CloseCode.InvalidOpcode);
    }
  }

  private onHeartbeat(conn: Connection, frame: Record<string, unknown>): void {
    // SATORI sends the seq as `s` and works in production (fact sheet §3.3).
    const seq = 'd' in frame ? frame.d : (frame.s ?? null);
    const session = conn.session;
    if (seq !== null && !isUint(seq)) {
      this.ctx.violation('heartbeat-bad-seq', `connection ${conn.id}: ${JSON.stringify(seq)}`);
    } else if (session !== null && seq !== null && seq > session.lastSentSeq) {
      // Lower than the last sent is fine: the newest dispatch may still be in flight.
      this.ctx.violation(
        'heartbeat-seq-ahead',
        `connection ${conn.id}: heartbeat seq ${seq} > last sent ${session.lastSentSeq}`,
      );
    }
    const acked = this.ctx.settings.ackHeartbeats && conn.ackHeartbeats;
    if (acked) conn.send(JSON.stringify({ op: Op.HeartbeatAck }));
    this.armHeartbeatDeadline(conn);
    const record = {
      connectionId: conn.id,
      sessionId: session?.id ?? null,
      seq,
      acked,
      at: Date.now(),
    };
    this.ctx.records.heartbeats.push(record);
    this.ctx.events.emit('heartbeat', record);
  }

  private onIdentify(conn: Connection, d: unknown): void {
    const data = isObject(d) ? d : {};
    const record: IdentifyRecord = {
      connectionId: conn.id,
      token: data.token,
      intents: data.intents,
      shard: data.shard,
      properties: data.properties,
      accepted: false,
      sessionId: null,
      at: Date.now(),
    };
    const shard = data.shard === undefined ? ([0, 1] as [number, number]) : parseShard(data.shard);
    const intents = data.intents;
    if (!this.preAuthOk(conn, d, 'Identify') || !this.tokenOk(conn, data.token, 'Identify')) {
      // Refused; the connection is closing.
    } else if (!isUint(intents)) {
      this.reject(
        conn,
        'bad-intents',
        `intents ${JSON.stringify(intents)}`,
        CloseCode.IntentsNotAuthorized,
      );
    } else if ((intents & this.ctx.settings.forbiddenIntents) !== 0) {
      // The bot lacks the permission: the client could not know, so no violation.
      conn.closeWith(CloseCode.IntentsNotAuthorized, 'intents not authorized');
    } else if (shard === null) {
      this.reject(conn, 'bad-shard', `shard ${JSON.stringify(data.shard)}`, CloseCode.InvalidShard);
    } else {
      if (!this.ctx.sessionStarts.consume()) {
        // How the platform reacts is unknown; a client should not try (BOTGO, BOTPY refuse).
        this.ctx.violation(
          'identify-over-limit',
          `connection ${conn.id}: session_start_limit.remaining was 0`,
        );
      }
      const session = this.openSession();
      this.attach(conn, session);
      const { id, username } = this.ctx.settings.bot;
      this.sendSessionFrame(conn, session, 'READY', {
        version: 1,
        session_id: session.id,
        user: { id, username, bot: true },
        shard,
      });
      record.accepted = true;
      record.sessionId = session.id;
    }
    this.ctx.records.identifies.push(record);
    this.ctx.events.emit('identify', record);
    if (record.sessionId !== null) {
      this.ctx.events.emit('ready', { connectionId: conn.id, sessionId: record.sessionId });
    }
  }

  private onResume(conn: Connection, d: unknown): void {
    const data = isObject(d) ? d : {};
    const record: ResumeRecord = {
      connectionId: conn.id,
      sessionId: data.session_id,
      seq: data.seq,
      accepted: false,
      replayed: 0,
      at: Date.now(),
    };
    let session =
      typeof data.session_id === 'string' ? this.sessions.get(data.session_id) : undefined;
    const window = this.ctx.settings.resumeWindowMs;
    if (
      session !== undefined &&
      window !== null &&
      session.detachedAt !== null &&
      Date.now() - session.detachedAt > window
    ) {
      // Past the resume window: the session is gone, as if it had never existed.
      this.forgetSession(session.id);
      session = undefined;
    }
    const seq = data.seq;
    if (!this.preAuthOk(conn, d, 'Resume') || !this.tokenOk(conn, data.token, 'Resume')) {
      // Refused; the connection is closing.
    } else if (!isUint(seq)) {
      this.reject(
        conn,
        'malformed-frame',
        `Resume seq ${JSON.stringify(seq)}`,
        CloseCode.InvalidPayload,
      );
    } else if (session === undefined) {
      conn.send(JSON.stringify({ op: Op.InvalidSession, d: false }));
      const delay = this.ctx.settings.invalidSessionCloseDelayMs ?? 0;
      conn.closeAfter(delay, this.ctx.settings.unknownSessionCloseCode, 'invalid session');
    } else if (seq > session.lastSentSeq) {
      this.reject(
        conn,
        'resume-seq-ahead',
        `Resume seq ${seq} > last sent ${session.lastSentSeq}`,
        CloseCode.InvalidSeq,
      );
    } else if (seq < session.evictedUpTo) {
      conn.closeWith(CloseCode.InvalidSeq, 'invalid seq');
    } else {
      const previous = session.connection;
      // The client moved on (e.g. after a zombie link): the old socket is dropped.
      if (previous !== null && previous !== conn) previous.drop();
      this.attach(conn, session);
      for (const missed of session.buffer.filter((b) => b.s > seq)) {
        if (this.deliver(conn, session, missed, true)) record.replayed++;
      }
      this.sendSessionFrame(conn, session, 'RESUMED', '');
      record.accepted = true;
    }
    this.ctx.records.resumes.push(record);
    this.ctx.events.emit('resume', record);
    if (record.accepted && typeof data.session_id === 'string') {
      this.ctx.events.emit('resumed', { connectionId: conn.id, sessionId: data.session_id });
    }
  }

  /** Common checks of Identify and Resume: one per connection, with an object payload. */
  private preAuthOk(conn: Connection, d: unknown, what: string): boolean {
    if (conn.phase === 'authed') {
      this.reject(
        conn,
        'duplicate-auth',
        `${what} on an authenticated connection`,
        CloseCode.AlreadyAuthenticated,
      );
      return false;
    }
    if (!isObject(d)) {
      this.reject(conn, 'malformed-frame', `${what} without an object d`, CloseCode.InvalidPayload);
      return false;
    }
    return true;
  }

  /** Checks an Identify/Resume token; closes 4004 when it is not valid. */
  private tokenOk(conn: Connection, token: unknown, what: string): boolean {
    const status = this.ctx.tokens.check(token);
    if (status === 'valid') return true;
    if (
      status === 'malformed' &&
      what === 'Resume' &&
      this.ctx.tokens.check(token, false) === 'valid'
    ) {
      // BOTGO resumes with the bare token (fact sheet §3.3): accepted, but flagged.
      this.ctx.violation(
        'bad-token',
        `connection ${conn.id}: Resume token without the 'QQBot ' prefix`,
      );
      return true;
    }
    if (status === 'expired') {
      this.ctx.violation(
        'expired-token',
        `connection ${conn.id}: ${what} with a token past its expires_in`,
      );
    } else if (status !== 'revoked') {
      this.ctx.violation('bad-token', `connection ${conn.id}: ${what} token is ${status}`);
    }
    conn.closeWith(CloseCode.AuthFailed, 'invalid token');
    return false;
  }

  private openSession(): Session {
    const session = new Session(randomUUID());
    this.sessions.set(session.id, session);
    if (this.sessions.size > MAX_SESSIONS) {
      const idle = [...this.sessions.values()].find(
        (s) => s.connection === null && s !== this.current,
      );
      if (idle !== undefined) this.sessions.delete(idle.id);
    }
    return session;
  }

  private attach(conn: Connection, session: Session): void {
    conn.phase = 'authed';
    conn.session = session;
    session.connection = conn;
    session.detachedAt = null;
    this.current = session;
  }

  /** READY / RESUMED: take a seq, are sent at once, are never replayed. */
  private sendSessionFrame(conn: Connection, session: Session, t: string, d: unknown): void {
    this.deliver(conn, session, session.nextFrame(t, d), false);
  }

  /** Writes a dispatch if the connection can carry it; true when written. */
  private deliver(
    conn: Connection,
    session: Session,
    frame: SessionFrame,
    replay: boolean,
  ): boolean {
    if (!conn.writable) return false;
    conn.send(frame.frame);
    const { s, t } = frame;
    session.lastSentSeq = Math.max(session.lastSentSeq, s);
    const record = { connectionId: conn.id, sessionId: session.id, s, t, replay, at: Date.now() };
    this.ctx.records.deliveries.push(record);
    return true;
  }

  /** Records a client fault and closes with `code`. */
  private reject(conn: Connection, kind: ViolationKind, detail: string, code: number): void {
    this.ctx.violation(kind, `connection ${conn.id}: ${detail}`);
    conn.closeWith(code, kind);
  }

  private onClose(conn: Connection, code: number, reason: string): void {
    conn.timers.clearAll();
    this.connections.delete(conn);
    if (conn.session?.connection === conn) {
      conn.session.connection = null;
      conn.session.detachedAt = Date.now();
    }
    const record = {
      connectionId: conn.id,
      code,
      reason,
      by: conn.closedByServer ? ('server' as const) : ('client' as const),
      at: Date.now(),
    };
    this.ctx.records.disconnects.push(record);
    this.ctx.events.emit('disconnect', record);
  }
}

/** `[shard_id, num_shards]` with `0 <= shard_id < num_shards`, or null. */
function parseShard(value: unknown): [number, number] | null {
  if (!Array.isArray(value) || value.length !== 2) return null;
  const [id, count] = value as unknown[];
  if (!isUint(id) || !isUint(count) || id >= count) return null;
  return [id, count];
}
