/**
 * A fake Telegram Bot API server speaking the real wire protocol over real HTTP on loopback
 * (fact sheet §11): `/bot<token>/<method>` with case-insensitive methods, parameters from the
 * query string, JSON or urlencoded bodies, the official envelope and error texts (HTTP status
 * = error_code, Retry-After on 429), a real long-poll wait, webhook state, chats that can be
 * blocked, kicked or migrated, and scripted faults. Like the platform, it keeps every update
 * until an offset above it confirms it, however many clients come and go (a restarted gateway
 * gets what was never confirmed). It records protocol violations by the client (two polls at
 * once, the offset going backwards on one connection, text over 4096 code points, a reply to
 * an unknown message without allow_sending_without_reply) and `close()` fails on them.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

/** Official error texts (tdlib/telegram-bot-api Client.cpp, confirmed by field reports). */
export const TEXTS = {
  invalidToken: 'Unauthorized: invalid token specified',
  unauthorized: 'Unauthorized',
  notFound: 'Not Found',
  methodNotFound: 'Not Found: method not found',
  conflictPoller:
    'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running',
  conflictWebhook:
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
  conflictSetWebhook: 'Conflict: terminated by setWebhook request',
  chatNotFound: 'Bad Request: chat not found',
  tooLong: 'Bad Request: message is too long',
  emptyText: 'Bad Request: message text is empty',
  replyNotFound: 'Bad Request: message to be replied not found',
  threadNotFound: 'Bad Request: message thread not found',
  migrated: 'Bad Request: group chat was upgraded to a supergroup chat',
  blocked: 'Forbidden: bot was blocked by the user',
  kicked: 'Forbidden: bot was kicked from the group chat',
  queryTooOld: 'Bad Request: query is too old and response timeout expired or query ID is invalid',
  restart: 'Internal Server Error: restart',
  badGateway: 'Bad Gateway',
  tooManyRequests: (n: number): string => `Too Many Requests: retry after ${n}`,
} as const;

/** The official server's limit on parsed text, in code points (TD MessageContent.cpp). */
const MAX_TEXT_CODE_POINTS = 4096;
const LONG_POLL_MAX_S = 50;
/** How long an abandoned poll may take to close after the client's next one arrived. */
const POLL_OVERLAP_GRACE_MS = 50;

export type Fault =
  | { kind: 'error'; code: number; description: string; retryAfter?: number; migrateTo?: number }
  /** Accept the request, then reset the connection without an answer. */
  | { kind: 'reset' }
  /**
   * Carry the request out (a sendMessage is posted), then reset the connection instead of
   * answering: the client cannot tell this from `reset`, and must not resend blindly.
   */
  | { kind: 'lost-answer' }
  /** Accept the request and never answer (a half-open link, as the client sees it). */
  | { kind: 'hang' }
  /** Answer normally, after `ms`. */
  | { kind: 'slow'; ms: number }
  /** 200 with a body that is not JSON. */
  | { kind: 'malformed' }
  /** An edge proxy's HTML error page. */
  | { kind: 'html'; status: number };

export interface FakeChat {
  id: number;
  type: 'private' | 'group' | 'supergroup' | 'channel';
  title?: string;
  first_name?: string;
  username?: string;
  is_forum?: boolean;
}

interface ChatState {
  chat: FakeChat;
  messages: Set<number>;
  nextMessageId: number;
  topics: Set<number>;
  /** A 403 description every send gets (blocked, kicked). */
  forbidden: string | null;
  migratedTo: number | null;
}

export interface SentMessage {
  chatId: number;
  text: string;
  messageId: number;
  params: Record<string, unknown>;
  replyTo: number | null;
  threadId: number | null;
  at: number;
}

export interface FakeRequest {
  method: string;
  params: Record<string, unknown>;
  at: number;
}

export interface FakeTelegramOptions {
  /** `<bot id>:<secret>`; by default a new bot id per fake. */
  token?: string;
  username?: string;
  canReadAllGroupMessages?: boolean;
  firstUpdateId?: number;
}

interface PendingPoll {
  res: ServerResponse;
  offset: number;
  limit: number;
  timer: NodeJS.Timeout;
}

/**
 * A token of a bot of its own per fake: the gateway locks each credential machine-wide (an
 * abstract socket), so two fakes sharing one bot id would make gateways run side by side (in
 * other test files, other checkouts) refuse each other's credential.
 */
function uniqueToken(): string {
  return `${randomInt(1_000_000_000, 9_000_000_000)}:AAH${randomBytes(24).toString('base64url')}`;
}
const TOKEN_SHAPE = /^[1-9]\d{0,17}:[A-Za-z0-9_-]+$/;

export class FakeTelegramServer extends EventEmitter {
  readonly token: string;
  readonly botId: number;
  readonly requests: FakeRequest[] = [];
  readonly sent: SentMessage[] = [];
  readonly answeredCallbacks: string[] = [];
  readonly violations: string[] = [];
  /** getUpdates requests accepted, and those that carried an offset. */
  polls = 0;
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private readonly faults = new Map<string, Fault[]>();
  private readonly chats = new Map<number, ChatState>();
  private readonly callbacks = new Set<string>();
  private readonly files = new Map<string, string>();
  private readonly held = new Set<ServerResponse>();
  /** Answers that die in a reset instead of being written (the `lost-answer` fault). */
  private readonly answersLost = new WeakSet<ServerResponse>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private queue: Array<{ update_id: number; [k: string]: unknown }> = [];
  private nextUpdateId: number;
  /** getUpdates requests not yet answered or closed, and how each ended. */
  private readonly openPolls = new Map<
    ServerResponse,
    { state: 'open' | 'answered' | 'abandoned' }
  >();
  /** Overlap checks still waiting for their grace period; close() runs them at once. */
  private readonly overlapChecks = new Set<() => void>();
  /**
   * The last offset each connection sent. A lower offset is no error across connections (a
   * restarted client resumes from its own persisted point, which may lag what the dead process
   * confirmed), but on one keep-alive connection it is a client that lost track of its offset.
   */
  private readonly offsetBySocket = new WeakMap<Socket, number>();
  private pending: PendingPoll | null = null;
  private revoked = false;
  private webhook: { url: string; secret: string | null; maxConnections: number } | null = null;
  private allowedUpdates: string[] | null = null;
  /** The webhook pusher's state (see "webhook delivery" below). */
  private readonly webhookPush = { running: false, closed: false };
  private username: string;
  private canReadAll: boolean;
  private port = 0;

  private constructor(options: FakeTelegramOptions) {
    super();
    this.token = options.token ?? uniqueToken();
    this.botId = Number(this.token.split(':')[0]);
    this.username = options.username ?? 'hermes_test_bot';
    this.canReadAll = options.canReadAllGroupMessages ?? false;
    this.nextUpdateId = options.firstUpdateId ?? 100_000_001;
    this.server = http.createServer((req, res) => this.onRequest(req, res));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(options: FakeTelegramOptions = {}): Promise<FakeTelegramServer> {
    const fake = new FakeTelegramServer(options);
    fake.server.listen(0, '127.0.0.1');
    await once(fake.server, 'listening');
    fake.port = (fake.server.address() as AddressInfo).port;
    return fake;
  }

  /** The `api_base` a client uses (no trailing slash). */
  get apiBase(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  // ---- scripting ------------------------------------------------------------------------

  /** The next `times` calls of `method` (case-insensitive) meet `fault`. */
  fault(method: string, fault: Fault, times = 1): void {
    const list = this.faults.get(method.toLowerCase()) ?? [];
    for (let i = 0; i < times; i++) list.push(fault);
    this.faults.set(method.toLowerCase(), list);
  }

  /** Every later call of `method` meets `fault` until clearFaults(). */
  faultAlways(method: string, fault: Fault): void {
    this.fault(method, fault, 1_000_000);
  }

  clearFaults(method?: string): void {
    if (method === undefined) this.faults.clear();
    else this.faults.delete(method.toLowerCase());
  }

  /** Errors in the official shape, for `fault()`. */
  static error(code: number, description: string, retryAfter?: number): Fault {
    return retryAfter === undefined
      ? { kind: 'error', code, description }
      : { kind: 'error', code, description, retryAfter };
  }

  /** Revokes the token (BotFather /revoke): every call, a waiting poll included, gets 401. */
  revokeToken(): void {
    this.revoked = true;
    const p = this.pending;
    if (p !== null)
      this.finishPoll(p, () => this.reply(p.res, 401, this.fail(401, TEXTS.unauthorized)));
  }

  /** Another process polls the bot: a waiting long poll gets the 409 conflict (§3.3 rule 3). */
  pollFromElsewhere(): boolean {
    const p = this.pending;
    if (p === null) return false;
    this.finishPoll(p, () => this.reply(p.res, 409, this.fail(409, TEXTS.conflictPoller)));
    return true;
  }

  /** Sets a webhook as if another tool had called setWebhook. */
  setWebhookState(url: string | null): void {
    this.webhook = url === null ? null : { url, secret: null, maxConnections: 40 };
    const p = this.pending;
    if (url !== null && p !== null) {
      this.finishPoll(p, () => this.reply(p.res, 409, this.fail(409, TEXTS.conflictSetWebhook)));
    }
  }

  get webhookUrl(): string | null {
    return this.webhook?.url ?? null;
  }

  addChat(chat: FakeChat, topics: number[] = []): void {
    if (this.chats.has(chat.id)) return;
    this.chats.set(chat.id, {
      chat,
      messages: new Set(),
      nextMessageId: 1,
      topics: new Set(topics),
      forbidden: null,
      migratedTo: null,
    });
  }

  /** Every later send to `chatId` gets 403 with `description` (blocked, kicked). */
  forbid(chatId: number, description: string): void {
    this.chatState(chatId).forbidden = description;
  }

  /** The group becomes a supergroup with `newId`: sends to the old id get 400 + migrate_to_chat_id. */
  migrate(chatId: number, newId: number): void {
    const old = this.chatState(chatId);
    old.migratedTo = newId;
    this.addChat({ ...old.chat, id: newId, type: 'supergroup' });
  }

  /** Queues an update (its kind as the only key besides update_id); returns its update_id. */
  pushUpdate(kind: string, payload: unknown): number {
    const update_id = this.nextUpdateId++;
    // allowed_updates is applied when an update is enqueued (SRV add_update_impl).
    if (
      this.allowedUpdates !== null &&
      this.allowedUpdates.length > 0 &&
      !this.allowedUpdates.includes(kind)
    ) {
      return update_id;
    }
    this.queue.push({ update_id, [kind]: payload });
    this.wakePoll();
    this.wakeWebhook();
    return update_id;
  }

  /** A user message in `chat` (a private chat with user 1001 by default). */
  message(
    text: string | null,
    options: {
      chat?: FakeChat;
      from?: Record<string, unknown> | null;
      kind?: 'message' | 'edited_message' | 'channel_post';
      extra?: Record<string, unknown>;
      messageId?: number;
    } = {},
  ): { updateId: number; messageId: number } {
    const chat = options.chat ?? { id: 1001, type: 'private', first_name: 'Ada' };
    this.addChat(chat);
    const state = this.chatState(chat.id);
    const messageId = options.messageId ?? state.nextMessageId++;
    state.messages.add(messageId);
    const payload: Record<string, unknown> = {
      message_id: messageId,
      date: Math.floor(Date.now() / 1000),
      chat,
      ...(text === null ? {} : { text }),
      ...options.extra,
    };
    const from =
      options.from === undefined
        ? chat.type === 'channel'
          ? null
          : { id: chat.type === 'private' ? chat.id : 1001, is_bot: false, first_name: 'Ada' }
        : options.from;
    if (from !== null) payload.from = from;
    const updateId = this.pushUpdate(
      options.kind ?? (chat.type === 'channel' ? 'channel_post' : 'message'),
      payload,
    );
    return { updateId, messageId };
  }

  /** A button press under message `messageId` in `chat`. */
  callbackQuery(data: string, chat: FakeChat, messageId: number): { updateId: number; id: string } {
    const id = `cb${this.nextUpdateId}`;
    this.callbacks.add(id);
    const updateId = this.pushUpdate('callback_query', {
      id,
      from: { id: 1001, is_bot: false, first_name: 'Ada' },
      chat_instance: '42',
      data,
      message: { message_id: messageId, date: Math.floor(Date.now() / 1000), chat },
    });
    return { updateId, id };
  }

  /** A file getFile knows. */
  addFile(fileId: string, path: string): void {
    this.files.set(fileId, path);
  }

  /** Updates not yet confirmed by an offset. */
  get pendingUpdates(): number {
    return this.queue.length;
  }

  /** Whether a long poll is being held right now. */
  get pollWaiting(): boolean {
    return this.pending !== null;
  }

  /** Resolves with the first `event` emission whose argument satisfies `predicate`; rejects after `timeoutMs`. */
  waitFor<T = unknown>(
    event: string,
    timeoutMs: number,
    predicate: (value: T) => boolean = () => true,
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      const onEvent = (value: T): void => {
        if (!predicate(value)) return;
        clearTimeout(timer);
        this.off(event, onEvent);
        resolve(value);
      };
      const timer = setTimeout(() => {
        this.off(event, onEvent);
        reject(new Error(`fake telegram: timed out after ${timeoutMs} ms waiting for ${event}`));
      }, timeoutMs);
      this.on(event, onEvent);
    });
  }

  /**
   * Stops the server and drops every connection. Rejects when the client broke the protocol
   * during the test, so a violation fails the test that caused it.
   */
  async close(): Promise<void> {
    this.webhookPush.closed = true;
    // An overlap still in its grace period is judged before the verdict.
    if (this.overlapChecks.size > 0) await delay(POLL_OVERLAP_GRACE_MS);
    for (const check of [...this.overlapChecks]) check();
    for (const timer of this.timers) clearTimeout(timer);
    if (this.pending !== null) clearTimeout(this.pending.timer);
    this.pending = null;
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
    this.server.closeAllConnections();
    if (this.server.listening) await once(this.server, 'close');
    if (this.violations.length > 0) {
      throw new Error(`fake telegram: protocol violations: ${this.violations.join('; ')}`);
    }
  }

  // ---- wire ---------------------------------------------------------------------------------

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let params: Record<string, unknown>;
      const url = new URL(req.url ?? '/', 'http://fake');
      try {
        params = {
          ...Object.fromEntries(url.searchParams),
          ...parseBody(req, Buffer.concat(chunks)),
        };
      } catch {
        this.reply(res, 400, this.fail(400, "Bad Request: can't parse JSON object"));
        return;
      }
      const match = /^\/bot([^/]*)\/([A-Za-z]+)$/.exec(url.pathname);
      if (match === null) {
        this.reply(res, 404, this.fail(404, TEXTS.notFound));
        return;
      }
      const [, token, rawMethod] = match as unknown as [string, string, string];
      if (!TOKEN_SHAPE.test(token)) {
        this.reply(res, 401, this.fail(401, TEXTS.invalidToken));
        return;
      }
      if (token !== this.token || this.revoked) {
        this.reply(res, 401, this.fail(401, TEXTS.unauthorized));
        return;
      }
      const method = rawMethod.toLowerCase();
      this.requests.push({ method, params, at: Date.now() });
      this.emit('request', { method, params });
      const fault = this.faults.get(method)?.shift();
      if (fault !== undefined) {
        if (method === 'getupdates') this.trackPoll(res);
        this.applyFault(fault, method, params, res);
        return;
      }
      this.dispatch(method, params, res);
    });
  }

  private applyFault(
    fault: Fault,
    method: string,
    params: Record<string, unknown>,
    res: ServerResponse,
  ): void {
    switch (fault.kind) {
      case 'error': {
        const parameters: Record<string, number> = {};
        if (fault.retryAfter !== undefined) parameters.retry_after = fault.retryAfter;
        if (fault.migrateTo !== undefined) parameters.migrate_to_chat_id = fault.migrateTo;
        this.reply(res, fault.code, this.fail(fault.code, fault.description, parameters));
        return;
      }
      case 'reset':
        res.socket?.resetAndDestroy();
        return;
      case 'lost-answer':
        this.loseAnswer(method, params, res);
        return;
      case 'hang':
        this.held.add(res);
        this.emit('hang', { method, at: Date.now() });
        return;
      case 'slow': {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          this.dispatch(method, params, res);
        }, fault.ms);
        this.timers.add(timer);
        return;
      }
      case 'malformed':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true,"result":[{"update_id":');
        return;
      case 'html':
        res.writeHead(fault.status, { 'content-type': 'text/html' });
        res.end(
          `<html><head><title>${fault.status} Bad Gateway</title></head><body>nginx</body></html>`,
        );
        return;
    }
  }

  /** The `lost-answer` fault: the request takes effect, its answer dies in a reset. */
  private loseAnswer(method: string, params: Record<string, unknown>, res: ServerResponse): void {
    this.answersLost.add(res);
    this.dispatch(method, params, res);
  }

  private dispatch(method: string, params: Record<string, unknown>, res: ServerResponse): void {
    switch (method) {
      case 'getme':
        this.ok(res, {
          id: this.botId,
          is_bot: true,
          first_name: 'Hermes Test',
          username: this.username,
          can_join_groups: true,
          can_read_all_group_messages: this.canReadAll,
          supports_inline_queries: false,
        });
        return;
      case 'getupdates':
        this.trackPoll(res);
        this.getUpdates(params, res);
        return;
      case 'setwebhook':
        return this.setWebhook(params, res);
      case 'deletewebhook': {
        const had = this.webhook !== null;
        this.webhook = null;
        if (toBool(params.drop_pending_updates)) this.queue = [];
        this.ok(res, true, had ? 'Webhook was deleted' : 'Webhook is already deleted');
        return;
      }
      case 'getwebhookinfo':
        this.ok(res, {
          url: this.webhook?.url ?? '',
          has_custom_certificate: false,
          pending_update_count: this.queue.length,
          max_connections: this.webhook?.maxConnections ?? 40,
          ...(this.allowedUpdates === null ? {} : { allowed_updates: this.allowedUpdates }),
        });
        return;
      case 'sendmessage':
        return this.sendMessage(params, res);
      case 'answercallbackquery': {
        const id = str(params.callback_query_id);
        if (!this.callbacks.delete(id)) {
          this.reply(res, 400, this.fail(400, TEXTS.queryTooOld));
          return;
        }
        this.answeredCallbacks.push(id);
        this.emit('callback-answered', id);
        this.ok(res, true);
        return;
      }
      case 'getfile': {
        const fileId = str(params.file_id);
        const path = this.files.get(fileId);
        if (path === undefined) {
          this.reply(res, 400, this.fail(400, 'Bad Request: invalid file_id'));
          return;
        }
        this.ok(res, {
          file_id: fileId,
          file_unique_id: `u${fileId}`,
          file_size: 1024,
          file_path: path,
        });
        return;
      }
      default:
        this.reply(res, 404, this.fail(404, TEXTS.methodNotFound));
    }
  }

  /**
   * Counts polls in flight; two at once from the client is a violation (§3.5). A poll the
   * client gave up on (aborted at its deadline, or on stop) closes without an answer a few
   * turns of the event loop after the client's next poll may have arrived, so each poll open
   * when another arrives is judged after POLL_OVERLAP_GRACE_MS: still open, or answered while
   * its client was still connected, means the client really had two in flight.
   */
  private trackPoll(res: ServerResponse): void {
    this.polls += 1;
    const socket = res.socket;
    const others = [...this.openPolls.entries()].filter(([, p]) => p.state === 'open');
    const poll: { state: 'open' | 'answered' | 'abandoned' } = { state: 'open' };
    this.openPolls.set(res, poll);
    const end = (how: 'answered' | 'abandoned'): void => {
      if (poll.state !== 'open') return;
      poll.state = how === 'answered' && socket?.readableEnded !== true ? 'answered' : 'abandoned';
      this.openPolls.delete(res);
      this.held.delete(res);
      if (this.pending?.res === res) {
        clearTimeout(this.pending.timer);
        this.pending = null;
      }
    };
    res.on('finish', () => end('answered'));
    res.on('close', () => end('abandoned'));
    if (others.length === 0) return;
    const check = (): void => {
      this.overlapChecks.delete(check);
      const overlapping = others.filter(([, p]) => p.state !== 'abandoned').length;
      if (overlapping > 0) {
        this.violations.push(`two getUpdates in flight at once (${overlapping + 1})`);
      }
    };
    this.overlapChecks.add(check);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      check();
    }, POLL_OVERLAP_GRACE_MS);
    this.timers.add(timer);
  }

  private getUpdates(params: Record<string, unknown>, res: ServerResponse): void {
    if (this.webhook !== null) {
      this.reply(res, 409, this.fail(409, TEXTS.conflictWebhook));
      return;
    }
    const offset = toInt(params.offset) ?? 0;
    const limit = clamp(toInt(params.limit) ?? 100, 1, 100);
    const timeoutS = clamp(toInt(params.timeout) ?? 0, 0, LONG_POLL_MAX_S);
    if (params.allowed_updates !== undefined) {
      const list: unknown =
        typeof params.allowed_updates === 'string'
          ? JSON.parse(params.allowed_updates)
          : params.allowed_updates;
      if (Array.isArray(list)) this.allowedUpdates = list.map(String);
    }
    // An offset more than 10 past the newest id is not valid (the ids restarted, another
    // server's offset): the server answers from its queue head and confirms nothing (§3.3 rule 1).
    if (offset > this.nextUpdateId - 1 + 10) {
      this.emit('offset-replaced', offset);
    } else if (offset > 0) {
      const last = this.offsetBySocket.get(res.req.socket) ?? 0;
      if (offset < last) {
        this.violations.push(`offset went backwards on one connection: ${offset} after ${last}`);
      }
      this.offsetBySocket.set(res.req.socket, Math.max(last, offset));
      // Calling with an offset confirms every update below it. A lower offset than before is
      // no error for the platform: it answers from its oldest unconfirmed update.
      this.queue = this.queue.filter((u) => u.update_id >= offset);
    }
    this.emit('poll', { offset, limit, timeoutS });
    const ready = this.queue.slice(0, limit);
    if (ready.length > 0 || timeoutS === 0) {
      this.ok(res, ready);
      return;
    }
    const timer = setTimeout(() => {
      const p = this.pending;
      if (p !== null && p.res === res) this.finishPoll(p, () => this.ok(res, []));
    }, timeoutS * 1000);
    this.pending = { res, offset, limit, timer };
    this.emit('poll-waiting');
  }

  private wakePoll(): void {
    const p = this.pending;
    if (p === null) return;
    // The server batches for a moment before it answers (§3.1).
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.pending !== p) return;
      this.finishPoll(p, () => this.ok(p.res, this.queue.slice(0, p.limit)));
    }, 1);
    this.timers.add(timer);
  }

  private finishPoll(p: PendingPoll, answer: () => void): void {
    clearTimeout(p.timer);
    this.pending = null;
    answer();
  }

  // ---- webhook delivery (the platform calling the bot's webhook) ----------------------------

  /** Every POST the fake made to the webhook URL, in order (retries included). */
  readonly webhookDeliveries: Array<{ updateId: number; status: number; at: number }> = [];
  /** Pause before a delivery that got no 2xx is retried (Telegram backs off; ms here). */
  webhookRetryMs = 100;
  /** The last setWebhook parameters (secret_token replaced by its length). */
  webhookParams: Record<string, unknown> | null = null;

  /** Remembers what setWebhook asked for and starts delivering the queue to the URL. */
  private webhookSetWith(params: Record<string, unknown>): void {
    const { secret_token: secret, ...rest } = params;
    this.webhookParams = {
      ...rest,
      secret_token_length: typeof secret === 'string' ? secret.length : 0,
    };
    if (Array.isArray(params.allowed_updates)) {
      this.allowedUpdates = params.allowed_updates.map((kind) => String(kind));
    }
    this.wakeWebhook();
  }

  /** Starts the pusher when a webhook is set and updates are waiting. */
  private wakeWebhook(): void {
    if (this.webhook === null || this.webhookPush.running || this.webhookPush.closed) return;
    if (this.queue.length === 0) return;
    this.webhookPush.running = true;
    // pushWebhook never rejects: every failed POST is a status 0 and a retry.
    this.pushWebhook().then(
      () => {
        this.webhookPush.running = false;
        this.wakeWebhook();
      },
      (err: unknown) => this.violations.push(`fake telegram webhook pusher broke: ${String(err)}`),
    );
  }

  /**
   * Delivers the queue in order, one update per POST with the secret header, as the platform
   * does: an update leaves the queue on a 2xx answer, anything else is retried after a pause.
   */
  private async pushWebhook(): Promise<void> {
    while (this.webhook !== null && this.queue.length > 0 && !this.webhookPush.closed) {
      const update = this.queue[0]!;
      const status = await this.postWebhook(this.webhook, update);
      this.webhookDeliveries.push({ updateId: update.update_id, status, at: Date.now() });
      this.emit('webhook-delivery', { updateId: update.update_id, status });
      if (status >= 200 && status < 300) {
        if (this.queue[0] === update) this.queue.shift();
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          resolve();
        }, this.webhookRetryMs);
        this.timers.add(timer);
      });
    }
  }

  /** One POST of `update` to the webhook; resolves with the status (0: no answer). */
  private postWebhook(
    hook: { url: string; secret: string | null },
    update: { update_id: number },
  ): Promise<number> {
    const body = JSON.stringify(update);
    return new Promise((resolve) => {
      const req = http.request(
        hook.url,
        {
          method: 'POST',
          agent: false,
          timeout: 5_000,
          headers: {
            'content-type': 'application/json',
            'content-length': String(Buffer.byteLength(body)),
            ...(hook.secret === null ? {} : { 'x-telegram-bot-api-secret-token': hook.secret }),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', () => resolve(0));
        },
      );
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(0));
      req.end(body);
    });
  }

  private setWebhook(params: Record<string, unknown>, res: ServerResponse): void {
    const url = str(params.url);
    if (url === '') {
      this.webhook = null;
      this.ok(res, true, 'Webhook was deleted');
      return;
    }
    const secret = params.secret_token === undefined ? null : str(params.secret_token);
    if (secret !== null && !/^[A-Za-z0-9_-]{1,256}$/.test(secret)) {
      this.reply(
        res,
        400,
        this.fail(400, 'Bad Request: secret token contains unallowed characters'),
      );
      return;
    }
    this.setWebhookState(url);
    this.webhook = { url, secret, maxConnections: toInt(params.max_connections) ?? 40 };
    this.webhookSetWith(params);
    this.ok(res, true, 'Webhook was set');
  }

  private sendMessage(params: Record<string, unknown>, res: ServerResponse): void {
    const chatId = toInt(params.chat_id);
    const state = chatId === null ? undefined : this.chats.get(chatId);
    if (chatId === null || state === undefined) {
      this.reply(res, 400, this.fail(400, TEXTS.chatNotFound));
      return;
    }
    if (state.migratedTo !== null) {
      this.reply(
        res,
        400,
        this.fail(400, TEXTS.migrated, { migrate_to_chat_id: state.migratedTo }),
      );
      return;
    }
    if (state.forbidden !== null) {
      this.reply(res, 403, this.fail(403, state.forbidden));
      return;
    }
    const text = typeof params.text === 'string' ? params.text : '';
    if (text.trim() === '') {
      this.reply(res, 400, this.fail(400, TEXTS.emptyText));
      return;
    }
    const codePoints = [...text].length;
    if (codePoints > MAX_TEXT_CODE_POINTS) {
      this.violations.push(
        `sendMessage text of ${codePoints} code points (max ${MAX_TEXT_CODE_POINTS})`,
      );
      this.reply(res, 400, this.fail(400, TEXTS.tooLong));
      return;
    }
    const threadId = toInt(params.message_thread_id);
    if (threadId !== null && !state.topics.has(threadId)) {
      this.reply(res, 400, this.fail(400, TEXTS.threadNotFound));
      return;
    }
    const replyParams = toObject(params.reply_parameters);
    const replyId = toInt(replyParams?.message_id ?? params.reply_to_message_id);
    const allowWithout = toBool(
      replyParams?.allow_sending_without_reply ?? params.allow_sending_without_reply,
    );
    let replyTo: number | null = null;
    if (replyId !== null) {
      if (state.messages.has(replyId)) replyTo = replyId;
      else if (!allowWithout) {
        this.violations.push(
          `reply to unknown message ${replyId} without allow_sending_without_reply`,
        );
        this.reply(res, 400, this.fail(400, TEXTS.replyNotFound));
        return;
      }
    }
    const messageId = state.nextMessageId++;
    state.messages.add(messageId);
    const record: SentMessage = {
      chatId,
      text,
      messageId,
      params,
      replyTo,
      threadId,
      at: Date.now(),
    };
    this.sent.push(record);
    this.emit('sent', record);
    this.ok(res, {
      message_id: messageId,
      date: Math.floor(Date.now() / 1000),
      chat: state.chat,
      from: { id: this.botId, is_bot: true, first_name: 'Hermes Test', username: this.username },
      text,
      ...(threadId === null ? {} : { message_thread_id: threadId, is_topic_message: true }),
      ...(replyTo === null
        ? {}
        : { reply_to_message: { message_id: replyTo, date: 0, chat: state.chat } }),
    });
  }

  private chatState(id: number): ChatState {
    const state = this.chats.get(id);
    if (state === undefined) throw new Error(`fake telegram: unknown chat ${id}`);
    return state;
  }

  private ok(res: ServerResponse, result: unknown, description?: string): void {
    this.reply(res, 200, {
      ok: true,
      result,
      ...(description === undefined ? {} : { description }),
    });
  }

  private fail(
    code: number,
    description: string,
    parameters: Record<string, number> = {},
  ): Record<string, unknown> {
    return {
      ok: false,
      error_code: code,
      description,
      ...(Object.keys(parameters).length > 0 ? { parameters } : {}),
    };
  }

  private reply(res: ServerResponse, status: number, body: Record<string, unknown>): void {
    if (res.writableEnded || res.destroyed) return;
    if (this.answersLost.has(res)) {
      res.socket?.resetAndDestroy();
      return;
    }
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const retryAfter = (body.parameters as { retry_after?: number } | undefined)?.retry_after;
    if (status === 429 && retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
    res.writeHead(status, headers);
    res.end(JSON.stringify(body));
  }
}

function parseBody(req: IncomingMessage, raw: Buffer): Record<string, unknown> {
  if (raw.length === 0) return {};
  const type = req.headers['content-type'] ?? '';
  if (type.startsWith('application/json')) {
    const value: unknown = JSON.parse(raw.toString('utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  }
  if (type.startsWith('application/x-www-form-urlencoded')) {
    return Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
  }
  throw new Error(`unsupported content type ${type}`);
}

/** Integers may come as numbers or strings (form and query encodings). */
function toInt(value: unknown): number | null {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return Number(value);
  return null;
}

/** The server reads true, yes and 1 as true (SRV to_bool). */
function toBool(value: unknown): boolean {
  if (value === true) return true;
  return typeof value === 'string' || typeof value === 'number'
    ? ['true', 'yes', '1'].includes(String(value).toLowerCase())
    : false;
}

/** Object parameters may arrive as JSON strings (form and query encodings). */
function toObject(value: unknown): Record<string, unknown> | null {
  if (typeof value === 'string') {
    try {
      return toObject(JSON.parse(value));
    } catch {
      return null;
    }
  }
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : null;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

/** A scalar parameter as text; objects are not scalars. */
function str(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
    ? String(value)
    : '';
}
