/**
 * A protocol-faithful fake of Discord on loopback: REST (`/api/v10`) and the gateway on one
 * HTTP server, and `resume_gateway_url` on a second server (another port), so a client that
 * resumes at the wrong URL fails. A scripting API injects every fault of issue 17; records
 * and `violations` are what tests assert on.
 *
 * @example
 * const fake = await FakeDiscordServer.start({ heartbeatIntervalMs: 200 });
 * try {
 *   // point the adapter at fake.apiBase with fake.settings.token, then:
 *   await fake.until(() => fake.readySessions() > 0);
 *   fake.dispatchMessage({ content: 'hi' });
 *   fake.assertNoViolations();
 * } finally {
 *   await fake.close();
 * }
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import {
  Connection,
  isObject,
  push,
  refusing,
  type Dispatch,
  type GatewayHost,
  type GatewayRecords,
  type Session,
  type Violation,
  type ViolationKind,
} from './gateway.js';
import { resolveSettings, type FakeDiscordOptions, type FakeDiscordSettings } from './options.js';

/** A scripted answer to the next message create. */
export type SendFault =
  | { kind: 'status'; status: 500 | 502 | 503 }
  | { kind: '429'; scope: 'user' | 'global' | 'shared'; retryAfterS: number }
  | { kind: 'reset-after-commit' }
  | { kind: 'unauthorized' };

export interface SentMessage {
  id: string;
  channelId: string;
  body: Record<string, unknown>;
  at: number;
}

export interface MessageInput {
  content?: string;
  channelId?: string;
  /** `null` for a DM. */
  guildId?: string | null;
  authorId?: string;
  authorName?: string;
  bot?: boolean;
  mentionsBot?: boolean;
  type?: number;
  webhook?: boolean;
  /** The bot's message this one replies to. */
  replyToBot?: boolean;
  id?: string;
  edit?: boolean;
}

const API = '/api/v10';
const DEFAULT_WAIT_MS = 2_000;
const INVALID_WINDOW_MS = 10 * 60_000;

let snowflake = BigInt(Date.now() - 1_420_070_400_000) << 22n;
function nextId(): string {
  snowflake += 1n;
  return snowflake.toString();
}

export class FakeDiscordServer {
  readonly settings: FakeDiscordSettings;
  readonly violations: Violation[] = [];
  readonly records: GatewayRecords & {
    gatewayBotRequests: number;
    sendRequests: Array<{ channelId: string; status: number; nonce: unknown; at: number }>;
  } = {
    connections: [],
    identifies: [],
    resumes: [],
    heartbeats: [],
    clientCloses: [],
    commandsPerConnection: [],
    gatewayBotRequests: 0,
    sendRequests: [],
  };
  /** Messages created (each once, whatever the retries). */
  readonly sent: SentMessage[] = [];
  private readonly events = new EventEmitter();
  private readonly sessions = new Map<string, Session>();
  private readonly host: GatewayHost;
  private readonly http: Server;
  private readonly resumeHttp: Server;
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<Connection>();
  private readonly nonces = new Map<string, { message: SentMessage; at: number }>();
  private readonly buckets = new Map<string, number[]>();
  private readonly globalTimes: number[] = [];
  private readonly invalidTimes: number[] = [];
  private readonly faults: SendFault[] = [];
  private readonly knownMessages = new Set<string>();
  private refuseUpgrades = false;
  private startsResetAt = 0;
  private port = 0;
  private resumePort = 0;
  private closing: Promise<void> | null = null;

  private constructor(options: FakeDiscordOptions) {
    this.settings = resolveSettings(options);
    this.events.setMaxListeners(0);
    this.startsResetAt = Date.now() + this.settings.sessionStartLimit.reset_after;
    this.host = {
      settings: this.settings,
      violation: (kind, detail) => this.recordViolation(kind, detail),
      changed: () => this.events.emit('change'),
      resumeUrl: () => `ws://127.0.0.1:${this.resumePort}/resume`,
      sessions: this.sessions,
      records: this.records,
      lastIdentifyAt: new Map(),
      takeSessionStart: () => this.takeSessionStart(),
    };
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
    this.http = createServer((req, res) => this.onRequest(req, res));
    this.resumeHttp = createServer((_req, res) => {
      res.writeHead(404).end();
    });
    for (const server of [this.http, this.resumeHttp]) {
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
        this.onUpgrade(req, socket, head),
      );
    }
  }

  static async start(options: FakeDiscordOptions = {}): Promise<FakeDiscordServer> {
    const fake = new FakeDiscordServer(options);
    fake.port = await listen(fake.http, fake.settings.host);
    fake.resumePort = await listen(fake.resumeHttp, fake.settings.host);
    return fake;
  }

  // ---- addresses -------------------------------------------------------------------------

  /** REST base to configure as `api_base`. */
  get apiBase(): string {
    return `http://127.0.0.1:${this.port}${API}`;
  }

  /** The URL `GET /gateway/bot` returns (Identify here). */
  get gatewayUrl(): string {
    return `ws://127.0.0.1:${this.port}/gateway`;
  }

  /** READY's `resume_gateway_url` (Resume only here: another port). */
  get resumeUrl(): string {
    return this.host.resumeUrl();
  }

  // ---- waiting -----------------------------------------------------------------------------

  /** Resolves once `predicate()` holds (checked after every change); rejects after `timeoutMs`. */
  until(predicate: () => boolean, what: string, timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.events.off('change', check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.events.off('change', check);
        reject(new Error(`fake discord: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.events.on('change', check);
    });
  }

  // ---- records -----------------------------------------------------------------------------

  assertNoViolations(): void {
    if (this.violations.length === 0) return;
    throw new Error(
      `protocol violations: ${this.violations.map((v) => `${v.kind}: ${v.detail}`).join('; ')}`,
    );
  }

  /** Identifies the fake accepted. */
  get acceptedIdentifies(): number {
    return this.records.identifies.filter((i) => i.accepted).length;
  }

  get acceptedResumes(): number {
    return this.records.resumes.filter((r) => r.accepted).length;
  }

  /** Connections with a session (READY or RESUMED sent) that are still open. */
  liveSessions(): number {
    return [...this.connections].filter((c) => !c.closed && c.session !== null).length;
  }

  get openConnections(): number {
    return [...this.connections].filter((c) => !c.closed).length;
  }

  /** The most recent session (the one dispatches go to). */
  get session(): Session | null {
    let last: Session | null = null;
    for (const s of this.sessions.values()) last = s;
    return last;
  }

  // ---- scripting: gateway ------------------------------------------------------------------

  /** Sends a dispatch on the current session (buffered for replay while disconnected). */
  dispatch(t: string, d: Record<string, unknown>): Dispatch | null {
    const session = this.session;
    if (session === null) return null;
    const visible = t.startsWith('MESSAGE_')
      ? Connection.visible(session, this.settings.bot.id, d)
      : d;
    if (visible === null) return null;
    const dispatch = push(session, t, visible, this.settings.replayBufferSize);
    session.conn?.sendDispatch(dispatch);
    this.events.emit('change');
    return dispatch;
  }

  /** A user's message (a guild text channel by default) as MESSAGE_CREATE (or UPDATE). */
  dispatchMessage(input: MessageInput = {}): Dispatch | null {
    const id = input.id ?? nextId();
    const channelId = input.channelId ?? '300000000000000001';
    const guildId = input.guildId === undefined ? this.settings.guildIds[0]! : input.guildId;
    const bot = this.settings.bot;
    const content = input.content ?? `hello ${id}`;
    const d: Record<string, unknown> = {
      id,
      channel_id: channelId,
      type: input.type ?? (input.replyToBot === true ? 19 : 0),
      author: {
        id: input.authorId ?? '400000000000000001',
        username: input.authorName ?? 'alice',
        global_name: input.authorName ?? 'Alice',
        ...(input.bot === true ? { bot: true } : {}),
      },
      content: input.mentionsBot === true ? `<@${bot.id}> ${content}` : content,
      timestamp: new Date().toISOString(),
      edited_timestamp: input.edit === true ? new Date().toISOString() : null,
      mentions:
        input.mentionsBot === true ? [{ id: bot.id, username: bot.username, bot: true }] : [],
      mention_roles: [],
      mention_everyone: false,
      attachments: [],
      embeds: [],
      components: [],
    };
    if (guildId !== null) d.guild_id = guildId;
    else d.channel_type = 1;
    if (input.webhook === true) d.webhook_id = '500000000000000001';
    if (input.replyToBot === true) {
      d.message_reference = { type: 0, message_id: '600000000000000001', channel_id: channelId };
      d.referenced_message = { id: '600000000000000001', author: { id: bot.id, bot: true } };
    }
    this.knownMessages.add(id);
    return this.dispatch(input.edit === true ? 'MESSAGE_UPDATE' : 'MESSAGE_CREATE', d);
  }

  private live(): Connection[] {
    return [...this.connections].filter((c) => !c.closed);
  }

  /**
   * Writes `count` DM MESSAGE_CREATE dispatches to the live session as fast as the socket
   * takes them (batches while less than 1 MB is buffered; not kept for replay): the bench's
   * producer.
   * Resolves once every frame is handed to the socket.
   */
  async produceMessages(count: number, channelId = '320000000000000001'): Promise<void> {
    const session = this.session;
    const conn = session?.conn;
    if (session === null || conn === null || conn === undefined) throw new Error('no live session');
    const ws = conn.ws;
    const author = { id: '400000000000000001', username: 'alice', global_name: 'Alice' };
    let written = 0;
    while (written < count) {
      while (ws.bufferedAmount > 1 << 20) await new Promise((r) => setTimeout(r, 1));
      if (ws.readyState !== ws.OPEN) throw new Error('the client closed during the run');
      const batch = Math.min(500, count - written);
      for (let i = 0; i < batch; i++) {
        const id = nextId();
        session.seq += 1;
        ws.send(
          JSON.stringify({
            op: 0,
            s: session.seq,
            t: 'MESSAGE_CREATE',
            d: {
              id,
              channel_id: channelId,
              channel_type: 1,
              type: 0,
              author,
              content: `message ${written + i}`,
              timestamp: new Date().toISOString(),
              edited_timestamp: null,
              mentions: [],
              attachments: [],
              embeds: [],
            },
          }),
        );
      }
      written += batch;
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Closes every live connection with `code`. */
  closeClient(code: number, reason = 'scripted close'): void {
    for (const c of this.live()) c.close(code, reason);
  }

  /** Drops every live connection without a close frame (1006 at the client). */
  terminateClient(): void {
    for (const c of this.live()) c.terminate();
  }

  /** Stops (or resumes) ACKing heartbeats on live and future connections. */
  stopAcks(on = true): void {
    this.settings.ackHeartbeats = !on;
    for (const c of this.live()) c.stopAcks = on;
  }

  /** The link goes silent both ways without closing (half-open TCP). */
  goHalfOpen(): void {
    for (const c of this.live()) c.halfOpen = true;
  }

  sendReconnect(): void {
    for (const c of this.live()) c.send({ op: 7, d: null });
  }

  sendInvalidSession(resumable: boolean): void {
    for (const c of this.live()) c.send({ op: 9, d: resumable });
  }

  /** Asks for a heartbeat now (server op 1), `times` times. */
  requestHeartbeat(times = 1): void {
    for (const c of this.live()) for (let i = 0; i < times; i++) c.send({ op: 1, d: null });
  }

  /** Refuses the next `count` Resumes with op 9 false. */
  refuseResumes(count = 1): void {
    refusing.set(this.host, count);
  }

  /** Answers every WebSocket upgrade 503 (on both URLs) while on. */
  refuseConnections(on = true): void {
    this.refuseUpgrades = on;
  }

  /** Forgets every session (a Resume then gets op 9 false). */
  invalidateSessions(): void {
    for (const s of this.sessions.values()) s.invalid = true;
  }

  setSessionStartLimit(patch: Partial<FakeDiscordSettings['sessionStartLimit']>): void {
    Object.assign(this.settings.sessionStartLimit, patch);
    if (patch.reset_after !== undefined) this.startsResetAt = Date.now() + patch.reset_after;
  }

  // ---- scripting: REST ---------------------------------------------------------------------

  queueSendFaults(...faults: SendFault[]): void {
    this.faults.push(...faults);
  }

  /** Deletes a created message (a retried enforced nonce then answers 10008). */
  deleteMessage(id: string): void {
    for (const [nonce, entry] of this.nonces) {
      if (entry.message.id === id)
        this.nonces.set(nonce, { ...entry, message: { ...entry.message, id: '' } });
    }
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const c of this.connections) c.terminate();
    this.wss.close();
    await Promise.all(
      [this.http, this.resumeHttp].map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
    this.events.removeAllListeners();
  }

  private recordViolation(kind: ViolationKind, detail: string): void {
    this.violations.push({ kind, detail, at: Date.now() });
    this.events.emit('change');
  }

  /** Refills the session starts once their window has passed. */
  private refreshStarts(): void {
    const limit = this.settings.sessionStartLimit;
    if (Date.now() < this.startsResetAt) return;
    limit.remaining = limit.total;
    this.startsResetAt = Date.now() + limit.reset_after;
  }

  private takeSessionStart(): boolean {
    this.refreshStarts();
    const limit = this.settings.sessionStartLimit;
    if (limit.remaining <= 0) return false;
    limit.remaining -= 1;
    return true;
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname;
    if (this.refuseUpgrades || (path !== '/gateway' && path !== '/resume')) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
      return;
    }
    const v = url.searchParams.get('v');
    const encoding = url.searchParams.get('encoding');
    const compress = url.searchParams.get('compress');
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.records.connections.push({ path, at: Date.now() });
      if (v !== '10' || encoding !== 'json' || compress !== null) {
        this.recordViolation('bad-query', `v=${v} encoding=${encoding} compress=${compress}`);
        ws.close(v !== '10' ? 4012 : 4002, 'bad query');
        return;
      }
      const conn = new Connection(this.host, ws, path);
      if (!this.settings.ackHeartbeats) conn.stopAcks = true;
      this.connections.add(conn);
      ws.on('close', () => {
        this.connections.delete(conn);
        this.events.emit('change');
      });
      this.events.emit('change');
    });
  }

  // ---- REST --------------------------------------------------------------------------------

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname;
    const body = await readBody(req);
    if (this.banned()) {
      res.writeHead(429, { 'content-type': 'text/html' }).end('error code: 1015');
      return;
    }
    if (req.headers.authorization !== `Bot ${this.settings.token}`) {
      this.invalid();
      json(res, 401, { message: '401: Unauthorized', code: 0 });
      return;
    }
    if (!String(req.headers['user-agent'] ?? '').startsWith('DiscordBot (')) {
      this.invalid();
      json(res, 403, { message: 'internal network error', code: 40333 });
      return;
    }
    if (req.method === 'GET' && path === `${API}/gateway/bot`) {
      this.records.gatewayBotRequests += 1;
      this.refreshStarts();
      this.events.emit('change');
      const limit = this.settings.sessionStartLimit;
      json(res, 200, {
        url: this.gatewayUrl,
        shards: 1,
        session_start_limit: {
          total: limit.total,
          remaining: limit.remaining,
          reset_after: Math.max(0, this.startsResetAt - Date.now()),
          max_concurrency: limit.max_concurrency,
        },
      });
      return;
    }
    if (req.method === 'GET' && path === `${API}/users/@me`) {
      json(res, 200, { ...this.settings.bot, bot: true });
      return;
    }
    const m = /^\/api\/v10\/channels\/(\d+)\/messages$/.exec(path);
    if (req.method === 'POST' && m !== null) {
      this.createMessage(m[1]!, req, body, res);
      return;
    }
    json(res, 404, { message: '404: Not Found', code: 0 });
  }

  private createMessage(
    channelId: string,
    req: IncomingMessage,
    text: string,
    res: ServerResponse,
  ): void {
    const record = { channelId, status: 0, nonce: undefined as unknown, at: Date.now() };
    this.records.sendRequests.push(record);
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      record.status = status;
      json(res, status, body, headers);
      this.events.emit('change');
    };
    if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) {
      answer(400, { message: 'Invalid Form Body', code: 50035 });
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      answer(400, { message: 'The request body contains invalid JSON.', code: 50109 });
      return;
    }
    if (!isObject(body)) {
      answer(400, { message: 'Invalid Form Body', code: 50035 });
      return;
    }
    record.nonce = body.nonce;
    // Limits before anything else, as Discord's edge answers them.
    const now = Date.now();
    const fault = this.faults.shift();
    const bucketKey = `messages:${channelId}`;
    const times = (this.buckets.get(bucketKey) ?? []).filter(
      (t) => t > now - this.settings.bucketLimit.windowMs,
    );
    this.buckets.set(bucketKey, times);
    while (this.globalTimes.length > 0 && this.globalTimes[0]! <= now - 1_000)
      this.globalTimes.shift();
    const remaining = Math.max(0, this.settings.bucketLimit.count - times.length - 1);
    const resetAfter =
      times.length > 0
        ? (times[0]! + this.settings.bucketLimit.windowMs - now) / 1000
        : this.settings.bucketLimit.windowMs / 1000;
    const rl = {
      'x-ratelimit-limit': String(this.settings.bucketLimit.count),
      'x-ratelimit-remaining': String(remaining),
      'x-ratelimit-reset-after': resetAfter.toFixed(3),
      'x-ratelimit-reset': ((now + resetAfter * 1000) / 1000).toFixed(3),
      'x-ratelimit-bucket': 'fake-bucket-create-message',
    };
    if (fault?.kind === '429' || this.globalTimes.length >= this.settings.globalPerSecond) {
      const global = fault?.kind === '429' ? fault.scope === 'global' : true;
      const scope = fault?.kind === '429' ? fault.scope : 'global';
      const retry = fault?.kind === '429' ? fault.retryAfterS : 1;
      if (scope !== 'shared') this.invalid();
      answer(
        429,
        { message: 'You are being rate limited.', retry_after: retry, global },
        {
          // A global limit says nothing about the route's bucket: its headers stay true.
          ...rl,
          ...(global
            ? {}
            : { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset-after': String(retry) }),
          'retry-after': String(Math.ceil(retry)),
          'x-ratelimit-scope': scope,
          ...(global ? { 'x-ratelimit-global': 'true' } : {}),
        },
      );
      return;
    }
    if (times.length >= this.settings.bucketLimit.count) {
      this.invalid();
      answer(
        429,
        { message: 'You are being rate limited.', retry_after: resetAfter, global: false },
        {
          ...rl,
          'x-ratelimit-remaining': '0',
          'retry-after': String(Math.ceil(resetAfter)),
          'x-ratelimit-scope': 'user',
        },
      );
      return;
    }
    times.push(now);
    this.globalTimes.push(now);
    if (fault?.kind === 'status') {
      answer(fault.status, { message: 'server error', code: 0 }, rl);
      return;
    }
    if (fault?.kind === 'unauthorized') {
      this.invalid();
      answer(401, { message: '401: Unauthorized', code: 0 });
      return;
    }
    const state = this.settings.channels[channelId] ?? 'ok';
    const refusal = CHANNEL_REFUSALS[state];
    if (refusal !== null) {
      if (refusal.status === 403) this.invalid();
      answer(refusal.status, { message: refusal.message, code: refusal.code }, rl);
      return;
    }
    const content = body.content;
    if (typeof content !== 'string' || content.trim() === '') {
      answer(400, { message: 'Cannot send an empty message', code: 50006 }, rl);
      return;
    }
    if (content.length > 2000) {
      answer(
        400,
        formError('content', 'BASE_TYPE_MAX_LENGTH', 'Must be 2000 or fewer in length.'),
        rl,
      );
      return;
    }
    const nonce = body.nonce;
    if (nonce !== undefined && (typeof nonce !== 'string' || nonce.length > 25)) {
      answer(400, formError('nonce', 'BASE_TYPE_MAX_LENGTH', 'Must be 25 or fewer in length.'), rl);
      return;
    }
    const mentions = isObject(body.allowed_mentions) ? body.allowed_mentions : null;
    if (mentions !== null && Array.isArray(mentions.parse)) {
      for (const type of ['users', 'roles'] as const) {
        const list = mentions[type];
        if (mentions.parse.includes(type) && Array.isArray(list) && list.length > 0) {
          answer(
            400,
            formError('allowed_mentions', 'MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE', 'exclusive'),
            rl,
          );
          return;
        }
      }
    }
    const ref = isObject(body.message_reference) ? body.message_reference : null;
    if (
      ref !== null &&
      ref.fail_if_not_exists !== false &&
      !this.knownMessages.has(String(ref.message_id))
    ) {
      answer(
        400,
        formError('message_reference', 'MESSAGE_REFERENCE_UNKNOWN_MESSAGE', 'Unknown message'),
        rl,
      );
      return;
    }
    if (body.enforce_nonce === true && typeof nonce === 'string') {
      const seen = this.nonces.get(nonce);
      if (seen !== undefined && now - seen.at < this.settings.nonceWindowMs) {
        if (seen.message.id === '') {
          answer(404, { message: 'Unknown Message', code: 10008 }, rl);
          return;
        }
        // The original message, nothing created, nothing dispatched.
        answer(200, messageObject(seen.message, this.settings.bot), rl);
        return;
      }
    }
    const message: SentMessage = { id: nextId(), channelId, body, at: now };
    this.sent.push(message);
    this.knownMessages.add(message.id);
    if (body.enforce_nonce === true && typeof nonce === 'string') {
      this.nonces.set(nonce, { message, at: now });
    }
    const object = messageObject(message, this.settings.bot);
    // The bot's own message comes back on the gateway, as on Discord.
    this.dispatch('MESSAGE_CREATE', object);
    if (fault?.kind === 'reset-after-commit') {
      record.status = -1;
      res.socket?.destroy();
      this.events.emit('change');
      return;
    }
    answer(200, object, rl);
  }

  private invalid(): void {
    this.invalidTimes.push(Date.now());
  }

  private banned(): boolean {
    const since = Date.now() - INVALID_WINDOW_MS;
    while (this.invalidTimes.length > 0 && this.invalidTimes[0]! <= since)
      this.invalidTimes.shift();
    return this.invalidTimes.length >= this.settings.invalidRequestBan;
  }
}

const CHANNEL_REFUSALS: Record<
  FakeDiscordSettings['channels'][string],
  { status: number; code: number; message: string } | null
> = {
  ok: null,
  unknown: { status: 404, code: 10003, message: 'Unknown Channel' },
  no_access: { status: 403, code: 50001, message: 'Missing Access' },
  no_permission: { status: 403, code: 50013, message: 'Missing Permissions' },
  dm_refused: { status: 403, code: 50007, message: 'Cannot send messages to this user' },
};

function messageObject(
  m: SentMessage,
  bot: { id: string; username: string },
): Record<string, unknown> {
  const ref = isObject(m.body.message_reference) ? m.body.message_reference : null;
  return {
    id: m.id,
    channel_id: m.channelId,
    type: ref === null ? 0 : 19,
    author: { id: bot.id, username: bot.username, bot: true },
    content: m.body.content,
    nonce: m.body.nonce,
    timestamp: new Date(m.at).toISOString(),
    edited_timestamp: null,
    mentions: [],
    mention_roles: [],
    mention_everyone: false,
    attachments: [],
    embeds: [],
    components: [],
    ...(ref === null ? {} : { message_reference: { type: 0, message_id: ref.message_id } }),
  };
}

function formError(field: string, code: string, message: string): Record<string, unknown> {
  return {
    message: 'Invalid Form Body',
    code: 50035,
    errors: { [field]: { _errors: [{ code, message }] } },
  };
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
