/**
 * A protocol-faithful fake of the QQ Bot Open Platform on loopback: token endpoint, REST
 * API and WebSocket gateway on one HTTP server, with a scripting API to inject every fault
 * and records to assert on. It is an independent implementation of the wire protocol
 * (nothing from `src/`), so that it catches adapter bugs rather than sharing them.
 *
 * @example
 * const fake = await FakeQQServer.start({ heartbeatIntervalMs: 50 });
 * try {
 *   // point the adapter at fake.tokenUrl / fake.apiBase, then:
 *   await fake.waitFor('ready');
 *   fake.dispatchC2CMessage({ content: 'hi' });
 *   const sent = await fake.waitFor('message-sent');
 *   fake.assertNoViolations();
 * } finally {
 *   await fake.close();
 * }
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { FakeRecords, SessionStartCounter, type FakeContext } from './context.js';
import { handleControl } from './control.js';
import { DEFAULT_WAIT_MS, FakeEvents } from './events.js';
import { Gateway } from './gateway-session.js';
import { reply } from './http-util.js';
import {
  resolveSettings,
  type FakeQQServerOptions,
  type FakeQQSettings,
  type SessionStartLimit,
} from './options.js';
import * as payloads from './payloads.js';
import type {
  DispatchRecord,
  FakeQQEventName,
  FakeQQEvents,
  Violation,
  ViolationKind,
} from './records.js';
import { Rest, type GatewayFault, type TokenFault } from './rest.js';
import type { SendFault } from './messages.js';
import { TokenStore } from './tokens.js';
import { FakeWebhook } from './webhook.js';

/** A dispatch whose payload type is known. */
export type Dispatched<T> = DispatchRecord & { d: T };

/** The fake QQ Bot platform. Create it with {@link FakeQQServer.start}. */
export class FakeQQServer {
  /** Live settings: changes apply to the next request, connection or event. */
  readonly settings: FakeQQSettings;
  /** Everything recorded so far. */
  readonly records = new FakeRecords();
  /** The platform's side of the webhook transport: signed callbacks to the bot's URL. */
  readonly webhook: FakeWebhook;

  private readonly events = new FakeEvents();
  private readonly tokens: TokenStore;
  private readonly sessionStarts: SessionStartCounter;
  private readonly gateway: Gateway;
  private readonly rest: Rest;
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private refuseUpgrades = false;
  /** Kept after listen so the addresses stay readable after `close()`. */
  private listenPort = 0;
  private closing: Promise<void> | null = null;

  private constructor(options: FakeQQServerOptions) {
    this.settings = resolveSettings(options);
    this.tokens = new TokenStore(() => ({
      ttlSec: this.settings.tokenTtlSec,
      renewWindowSec: this.settings.renewWindowSec,
    }));
    this.sessionStarts = new SessionStartCounter(this.settings);
    const ctx: FakeContext = {
      settings: this.settings,
      tokens: this.tokens,
      events: this.events,
      records: this.records,
      sessionStarts: this.sessionStarts,
      knownIds: new Set(),
      violation: (kind, detail) => this.recordViolation(kind, detail),
    };
    this.gateway = new Gateway(ctx);
    this.webhook = new FakeWebhook(ctx);
    this.rest = new Rest(ctx, () => this.wsUrl);
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.settings.maxClientFrameBytes,
    });
    this.http = createServer((req, res) => this.onRequest(req, res));
    this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
  }

  /**
   * Starts a fake listening on `options.host`:`options.port` (default 127.0.0.1:0).
   * Resolves once it accepts connections; rejects if it cannot listen.
   */
  static async start(options: FakeQQServerOptions = {}): Promise<FakeQQServer> {
    const fake = new FakeQQServer(options);
    await new Promise<void>((resolve, reject) => {
      fake.http.once('error', reject);
      fake.http.listen(fake.settings.port, fake.settings.host, () => {
        fake.http.off('error', reject);
        fake.listenPort = (fake.http.address() as AddressInfo).port;
        resolve();
      });
    });
    return fake;
  }

  // ---- addresses -------------------------------------------------------------------------

  /** The port actually listened on. */
  get port(): number {
    return this.listenPort;
  }

  /** REST base, e.g. `http://127.0.0.1:34567`. */
  get apiBase(): string {
    return `http://${urlHost(this.settings.host)}:${this.port}`;
  }

  /** Full URL of the token endpoint. */
  get tokenUrl(): string {
    return `${this.apiBase}/app/getAppAccessToken`;
  }

  /** WebSocket gateway URL, as `GET /gateway` returns it. */
  get wsUrl(): string {
    return `ws://${urlHost(this.settings.host)}:${this.port}/websocket`;
  }

  // ---- records -----------------------------------------------------------------------------

  /** Protocol violations of the clients so far. */
  get violations(): readonly Violation[] {
    return this.records.violations;
  }

  /** Throws an Error listing every violation, if there is any. */
  assertNoViolations(): void {
    if (this.records.violations.length === 0) return;
    const lines = this.records.violations.map((v) => `- ${v.kind}: ${v.detail}`);
    throw new Error(
      `fake QQ server saw ${lines.length} protocol violation(s):\n${lines.join('\n')}`,
    );
  }

  /** Forgets the violations recorded so far (after a test provoked some on purpose). */
  clearViolations(): void {
    this.records.violations.length = 0;
  }

  get identifies(): FakeRecords['identifies'] {
    return this.records.identifies;
  }
  get resumes(): FakeRecords['resumes'] {
    return this.records.resumes;
  }
  get heartbeats(): FakeRecords['heartbeats'] {
    return this.records.heartbeats;
  }
  get connections(): FakeRecords['connections'] {
    return this.records.connections;
  }
  get disconnects(): FakeRecords['disconnects'] {
    return this.records.disconnects;
  }
  get tokenRequests(): FakeRecords['tokenRequests'] {
    return this.records.tokenRequests;
  }
  get refusedUpgrades(): FakeRecords['refusedUpgrades'] {
    return this.records.refusedUpgrades;
  }
  get gatewayRequests(): FakeRecords['gatewayRequests'] {
    return this.records.gatewayRequests;
  }
  get sendRequests(): FakeRecords['sendRequests'] {
    return this.records.sendRequests;
  }
  get sentMessages(): FakeRecords['sentMessages'] {
    return this.records.sentMessages;
  }
  get dispatches(): FakeRecords['dispatches'] {
    return this.records.dispatches;
  }

  /** Seqs written to sockets, in order, replays included. */
  get deliveredSeqs(): number[] {
    return this.records.deliveries.map((d) => d.s);
  }

  /** Number of open WebSocket connections. */
  get openConnections(): number {
    return this.gateway.openConnections;
  }

  /** Session that `dispatch()` targets by default (latest READY or RESUMED), if any. */
  get currentSessionId(): string | null {
    return this.gateway.currentSessionId;
  }

  /** Every access token this fake has issued, oldest first. */
  get issuedTokens(): string[] {
    return this.tokens.issuedTokens;
  }

  /** The token a request would get back now without minting, if any. */
  get currentToken(): string | null {
    return this.tokens.currentToken;
  }

  // ---- events ------------------------------------------------------------------------------

  on<K extends FakeQQEventName>(name: K, listener: (payload: FakeQQEvents[K]) => void): this {
    this.events.on(name, listener);
    return this;
  }

  once<K extends FakeQQEventName>(name: K, listener: (payload: FakeQQEvents[K]) => void): this {
    this.events.once(name, listener);
    return this;
  }

  off<K extends FakeQQEventName>(name: K, listener: (payload: FakeQQEvents[K]) => void): this {
    this.events.off(name, listener);
    return this;
  }

  /**
   * Resolves with the next `name` event (matching `predicate`) emitted after the call.
   * Rejects with a `FakeWaitError` (`code` `FAKE_QQ_WAIT_TIMEOUT` or `FAKE_QQ_CLOSED`).
   */
  waitFor<K extends FakeQQEventName>(
    name: K,
    timeoutMs = DEFAULT_WAIT_MS,
    predicate?: (payload: FakeQQEvents[K]) => boolean,
  ): Promise<FakeQQEvents[K]> {
    return this.events.waitFor(name, timeoutMs, predicate);
  }

  /** Resolves once `predicate()` holds (checked now and after every event); rejects like `waitFor`. */
  until(predicate: () => boolean, timeoutMs = DEFAULT_WAIT_MS, what?: string): Promise<void> {
    return this.events.until(predicate, timeoutMs, what);
  }

  // ---- gateway scripting ---------------------------------------------------------------------

  /**
   * Sends dispatch `t` with payload `d` on the current session (or `sessionId`): written at
   * once if its client is live, else buffered for Resume. Throws when there is no session.
   */
  dispatch<T>(t: string, d: T, sessionId?: string): Dispatched<T> {
    return this.gateway.dispatch(t, d, sessionId) as Dispatched<T>;
  }

  /** Dispatches a C2C_MESSAGE_CREATE built by {@link payloads.c2cMessage}. */
  dispatchC2CMessage(
    input: Parameters<typeof payloads.c2cMessage>[0],
  ): Dispatched<payloads.C2CMessage> {
    return this.dispatch('C2C_MESSAGE_CREATE', payloads.c2cMessage(input));
  }

  /** Dispatches a GROUP_AT_MESSAGE_CREATE built by {@link payloads.groupAtMessage}. */
  dispatchGroupAtMessage(
    input: Parameters<typeof payloads.groupAtMessage>[0],
  ): Dispatched<payloads.GroupAtMessage> {
    return this.dispatch('GROUP_AT_MESSAGE_CREATE', payloads.groupAtMessage(input));
  }

  /** Dispatches an AT_MESSAGE_CREATE mentioning this fake's bot. */
  dispatchAtMessage(input: payloads.GuildMessageInput): Dispatched<payloads.GuildMessage> {
    return this.dispatch(
      'AT_MESSAGE_CREATE',
      payloads.atMessage({ ...input, bot: this.settings.bot }),
    );
  }

  /** Dispatches a DIRECT_MESSAGE_CREATE (guild DM). */
  dispatchDirectMessage(
    input: Parameters<typeof payloads.directMessage>[0],
  ): Dispatched<payloads.GuildMessage> {
    return this.dispatch('DIRECT_MESSAGE_CREATE', payloads.directMessage(input));
  }

  /** Dispatches a MESSAGE_CREATE (any guild channel message, private-domain bots). */
  dispatchMessageCreate(input: payloads.GuildMessageInput): Dispatched<payloads.GuildMessage> {
    return this.dispatch('MESSAGE_CREATE', payloads.guildMessage(input));
  }

  /** Closes the newest client connection with `code`. Throws when none is open. */
  closeClient(code: number, reason?: string): void {
    this.gateway.closeClient(code, reason);
  }

  /** Drops the newest client connection without a close frame. Throws when none is open. */
  terminateClient(): void {
    this.gateway.terminateClient();
  }

  /** Stops (or, with `false`, resumes) acknowledging heartbeats on the newest connection. */
  stopAcking(on = true): void {
    this.gateway.stopAcking(on);
  }

  /** Makes the newest connection half-open: nothing read, acked or sent; never closed. */
  goHalfOpen(): void {
    this.gateway.goHalfOpen();
  }

  /** Sends op 7 Reconnect, then closes 4009 after `settings.reconnectCloseDelayMs`. */
  sendReconnect(): void {
    this.gateway.sendReconnect();
  }

  /** Sends op 9 Invalid Session, then closes after `settings.invalidSessionCloseDelayMs`. */
  sendInvalidSession(resumable: boolean): void {
    this.gateway.sendInvalidSession(resumable);
  }

  /** Sends `text` verbatim as one text frame (malformed frames, unknown ops...). */
  sendRaw(text: string): void {
    this.gateway.sendRaw(text);
  }

  /**
   * Sends a dispatch-shaped text frame of exactly `bytes` bytes (at least its skeleton),
   * without a seq, to test the client's frame size limit.
   */
  sendOversized(bytes: number): void {
    const skeleton = JSON.stringify({ op: 0, t: 'OVERSIZED', d: { pad: '' } });
    const pad = 'x'.repeat(Math.max(0, bytes - skeleton.length));
    this.gateway.sendRaw(JSON.stringify({ op: 0, t: 'OVERSIZED', d: { pad } }));
  }

  /** Forgets a session (default: the current one) so that its Resume is refused. */
  forgetSession(sessionId?: string): void {
    this.gateway.forgetSession(sessionId);
  }

  /**
   * Refuses new WebSocket upgrades with HTTP 503 (or accepts them again); with
   * `gateway: true`, `GET /gateway` and `/gateway/bot` answer 503 as well.
   */
  refuseConnections(on = true, options: { gateway?: boolean } = {}): void {
    this.refuseUpgrades = on;
    this.rest.refuseGateway = on && options.gateway === true;
  }

  // ---- REST scripting ----------------------------------------------------------------------

  /** Makes the next `count` token requests (default: all) fail with `fault`. */
  setTokenFault(fault: TokenFault, count = Infinity): void {
    Object.assign(this.rest.tokenFault, { fault, remaining: count });
  }

  /** The token fault in force (`'none'` once its count is used up). */
  get tokenFault(): TokenFault {
    const { fault, remaining } = this.rest.tokenFault;
    return remaining > 0 ? fault : 'none';
  }

  /** Same as `setTokenFault(fault)`: every following token request. */
  set tokenFault(fault: TokenFault) {
    this.setTokenFault(fault);
  }

  /** Revokes every token issued so far: REST calls get 401/11244, Identify gets 4004. */
  revokeTokens(): void {
    this.tokens.revokeAll();
  }

  /** Makes the next `count` `/gateway` or `/gateway/bot` requests (default: all) fail. */
  setGatewayFault(fault: GatewayFault, count = Infinity): void {
    Object.assign(this.rest.gatewayFault, { fault, remaining: count });
  }

  /** Changes `session_start_limit` (e.g. `{ remaining: 0, reset_after: 5000 }`). */
  setSessionStartLimit(patch: Partial<SessionStartLimit>): void {
    this.sessionStarts.set(patch);
  }

  /** Queues scripted answers for the next send requests, in order. */
  queueSendFaults(...faults: SendFault[]): void {
    this.rest.messages.faults.push(...faults);
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /**
   * Terminates every client, answers nothing more, clears every timer and stops listening.
   * Pending waits reject with `FAKE_QQ_CLOSED`. Idempotent; resolves when all is closed.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.webhook.close();
    this.events.close();
    this.gateway.closeAll();
    this.rest.hung.destroyAll();
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections();
    await closed;
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private recordViolation(kind: ViolationKind, detail: string): void {
    const violation = { kind, detail, at: Date.now() };
    this.records.violations.push(violation);
    this.events.emit('violation', violation);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const handled =
      this.settings.controlApi && path.startsWith('/_fake/')
        ? handleControl(this, req, res, path)
        : this.rest.handle(req, res);
    handled.catch((err: unknown) => {
      // A client that went away mid-body needs no answer; anything else is a bug of the
      // fake, made loud so it is not mistaken for a platform answer.
      if (!req.destroyed)
        process.emitWarning(err instanceof Error ? err : String(err), 'FakeQQServer');
      if (!res.headersSent) reply(res, 500, { code: 500, message: 'fake server error' });
      else res.destroy();
    });
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // A reset during the handshake must not crash the fake.
    socket.on('error', () => socket.destroy());
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const refusal =
      path !== '/websocket' && path !== '/websocket/'
        ? '404 Not Found'
        : this.refuseUpgrades || this.closing !== null
          ? '503 Service Unavailable'
          : null;
    if (refusal !== null) {
      const response = `HTTP/1.1 ${refusal}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`;
      socket.end(response, () => socket.destroy());
      const record = { path, status: Number(refusal.slice(0, 3)), at: Date.now() };
      this.records.refusedUpgrades.push(record);
      if (this.closing === null) this.events.emit('upgrade-refused', record);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      // An upgrade that completes after close() must not outlive it.
      if (this.closing !== null) ws.terminate();
      else this.gateway.accept(ws);
    });
  }
}

/** Host part of a URL: loopback for wildcard addresses, brackets for IPv6. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}
