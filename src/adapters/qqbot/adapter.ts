/**
 * The QQ Bot adapter: the reconnect loop (DESIGN §2). It owns the session across
 * connections, the reconnect budget and every state transition; one GatewayConnection at a
 * time does the protocol. `run()` resolves only after its signal aborts and throws when the
 * budget is exhausted or the platform refuses for good, so it can never end silently.
 */
import pino, { type Logger } from 'pino';
import type {
  Adapter,
  AdapterContext,
  OutboundMessage,
  SendResult,
} from '../../adapters/contract.js';
import { AdapterLifecycle } from '../lifecycle.js';
import { GatewayError, isGatewayError, toGatewayError } from '../../errors.js';
import { Backoff, sleep } from '../../util/backoff.js';
import type { QQBotSettings } from './config.js';
import { GatewayConnection, type ConnectionEnd } from './connection.js';
import './errors.js';
import { normalizeMessage } from './normalize.js';
import { INTENTS, isMessageEvent, type GatewayInfo, type ReconnectAction } from './protocol.js';
import { QQRest } from './rest.js';
import { Sender } from './send.js';
import { TokenSource, isAbort, type AccessToken } from './token.js';
import { webhookLastValidCallback } from '../../metrics.js';
import {
  holdRoute,
  ingress as sharedIngress,
  type IngressHub,
  type IngressRequest,
} from '../../ingress/server.js';
import { deriveKeys } from './signature.js';
import { CallbackReceiver } from './webhook.js';

/** Jitter ratio of backoff steps when jitter is on. */
const BACKOFF_JITTER = 0.25;
/** Extra wait after a session start limit's reset_after, so we ask after the reset. */
const SESSION_LIMIT_SLACK_MS = 50;

/** Counters for operators and tests; never persisted. */
export interface QQBotStats {
  frames: number;
  messages: number;
  badEvents: number;
  malformedFrames: number;
  oversizedFrames: number;
  /** Dispatches that are not messages (or not enabled), by event type. */
  otherDispatches: Record<string, number>;
  identifies: number;
  resumes: number;
  connections: number;
}

/** The outcome of one connection attempt, from token fetch to socket close. */
interface AttemptEnd {
  action: ReconnectAction | 'stop';
  error: GatewayError | null;
  readyAt: number | null;
  sentResume: boolean;
  token: AccessToken | null;
}

export interface QQBotAdapterOptions {
  /** The instance name (the key under `platforms:`); `qqbot` when not given. */
  instance?: string;
  /** Injectable randomness for jitter (tests, bench); defaults to Math.random. */
  random?: () => number;
  /** The inbound HTTP server of the webhook transport; the process's own by default. */
  ingress?: IngressHub;
}

export class QQBotAdapter implements Adapter {
  /** The instance name: the state file key, the event ids' prefix, the metrics' label. */
  readonly name: string;
  /** Replies carry msg_id + msg_seq: the platform refuses a re-sent copy (send.ts). */
  readonly idempotentSends = true;
  readonly stats: QQBotStats = {
    frames: 0,
    messages: 0,
    badEvents: 0,
    malformedFrames: 0,
    oversizedFrames: 0,
    otherDispatches: {},
    identifies: 0,
    resumes: 0,
    connections: 0,
  };
  private readonly rest: QQRest;
  private readonly tokens: TokenSource;
  private readonly sender: Sender;
  private readonly backoff: Backoff;
  private readonly random: () => number;
  private log: Logger = pino({ level: 'silent' });
  private readonly life = new AdapterLifecycle('qqbot', () => this.log);
  /** The session to resume; survives connections, dropped when the server refuses it. */
  private session: { id: string; seq: number } | null = null;
  private botId: string | null = null;
  private readonly ingress: IngressHub;
  /** The webhook transport's request handling; null in WebSocket mode. */
  receiver: CallbackReceiver | null = null;

  constructor(
    readonly settings: QQBotSettings,
    options: QQBotAdapterOptions = {},
  ) {
    this.name = options.instance ?? 'qqbot';
    this.random = options.random ?? Math.random;
    this.ingress = options.ingress ?? sharedIngress;
    this.rest = new QQRest({
      appId: settings.appId,
      apiBase: settings.apiBase,
      tokenUrl: settings.tokenUrl,
      restMs: settings.timeouts.restMs,
      tokenMs: settings.timeouts.tokenMs,
    });
    this.tokens = new TokenSource({
      rest: this.rest,
      secret: settings.clientSecret,
      marginMs: settings.tokenRefreshMarginMs,
      jitter: settings.jitter,
      log: () => this.log,
      random: this.random,
    });
    this.sender = new Sender({
      rest: this.rest,
      tokens: this.tokens,
      maxAttempts: settings.send.maxAttempts,
      maxTextLength: settings.send.maxTextLength,
      retryDelayMs: settings.send.retryDelayMs,
      maxRetryDelayMs: settings.send.maxRetryDelayMs,
      jitter: settings.jitter,
      log: () => this.log,
      random: this.random,
    });
    this.backoff = new Backoff({
      stepsMs: settings.reconnect.backoffMs,
      jitterRatio: settings.jitter ? BACKOFF_JITTER : 0,
      random: this.random,
    });
  }

  /**
   * The adapter's life. Resolves after `signal` aborts. Rejects with
   * GW_ERR_QQ_RECONNECT_EXHAUSTED (retryable: exit 1) when reconnect.max_attempts reconnects
   * in a row failed, with GW_ERR_QQ_CREDENTIALS_REJECTED (exit 78) when the token endpoint
   * refuses the credentials, or with the close code's error (GW_ERR_QQ_CLOSE_4915...,
   * non-retryable: exit 78) for a fatal row of the close-code table.
   */
  async run(ctx: AdapterContext, signal: AbortSignal): Promise<void> {
    this.log = ctx.log;
    this.life.bind(ctx);
    if (this.settings.transport === 'webhook') return this.runWebhook(ctx, signal);
    const taken = this.life.takeResumePoint(ctx, ['session_id']);
    if (taken !== null) {
      this.session = { id: taken.session.session_id!, seq: taken.seq };
      this.botId = taken.session.bot_id ?? this.botId;
    }
    try {
      await this.life.move({
        reconnectAttempt: 0,
        maxReconnectAttempts: this.settings.reconnect.maxAttempts,
        resumable: false,
        lastError: null,
        detail: 'fetching_token',
      });
      ctx.track('qqbot token refresh', this.tokens.refreshLoop(signal));
      await this.loop(ctx, signal);
    } catch (err) {
      // A crash and a stop are told apart by the signal: rethrow only if nobody asked to stop
      // (e.g. a transition refused because the runner already ended the adapter).
      if (signal.aborted) {
        this.log.debug({ err: String(err) }, 'error after the stop request ignored');
        return;
      }
      throw err;
    } finally {
      this.life.clearHealthyTimer();
      this.tokens.close();
      this.rest.close();
    }
  }

  /**
   * The webhook transport's life (issue 11): `connecting` while the route is bound and the
   * token fetched, `connected` once both hold, then it waits for the stop or for the listener
   * to die. Rejects with GW_ERR_INGRESS_LISTEN / GW_ERR_INGRESS_ROUTE_TAKEN (exit 78) when the
   * address cannot be bound, GW_ERR_QQ_CREDENTIALS_REJECTED (exit 78), GW_ERR_INGRESS_LISTENER_DIED
   * (exit 1), or GW_ERR_QQ_RECONNECT_EXHAUSTED when the token endpoint kept failing.
   */
  private async runWebhook(ctx: AdapterContext, signal: AbortSignal): Promise<void> {
    const webhook = this.settings.webhook;
    const receiver = new CallbackReceiver({
      appId: this.settings.appId,
      keys: deriveKeys(this.settings.clientSecret),
      timestampToleranceS: webhook.timestampToleranceS,
      log: () => this.log,
      valid: () => {
        ctx.touch();
        webhookLastValidCallback.set(this.name);
      },
      // A retried callback carries the same message id: the pipeline's dedupe drops it.
      dispatch: (frame) => this.onDispatch(ctx, frame.t, frame.d, null),
    });
    this.receiver = receiver;
    const path = webhook.path ?? `/qqbot/${this.name}`;
    try {
      await this.life.move({
        reconnectAttempt: 0,
        maxReconnectAttempts: this.settings.reconnect.maxAttempts,
        resumable: false,
        lastError: null,
        detail: 'binding',
      });
      const spec = {
        listen: webhook.listen,
        path,
        instance: this.name,
        maxBodyBytes: webhook.maxBodyBytes,
        requestTimeoutMs: webhook.requestTimeoutMs,
        handler: (request: IngressRequest) => receiver.handle(request),
        log: this.log,
      };
      await holdRoute(this.ingress, spec, signal, async () => {
        ctx.track('qqbot token refresh', this.tokens.refreshLoop(signal));
        if (!(await this.firstToken(signal))) return false;
        this.log.info('webhook transport ready (listener bound, token accepted)');
        await this.life.move({ reconnectAttempt: 0, lastError: null, detail: null }, 'connected');
        return true;
      });
    } catch (err) {
      if (signal.aborted) {
        this.log.debug({ err: String(err) }, 'error after the stop request ignored');
        return;
      }
      throw err;
    } finally {
      this.tokens.close();
      this.rest.close();
    }
  }

  /**
   * The first token of the webhook transport, with the reconnect budget over failures of the
   * token endpoint. Resolves true with a token, false when stopped; rejects with a refusal.
   */
  private async firstToken(signal: AbortSignal): Promise<boolean> {
    for (;;) {
      this.life.setDetail('fetching_token');
      try {
        await this.tokens.get(signal);
        return true;
      } catch (err) {
        if (signal.aborted || isAbort(err)) return false;
        const error = toGatewayError(err, 'GW_ERR_QQ_TOKEN_FAILED');
        if (!error.retryable) throw error;
        // The same budget as a WebSocket reconnect: exhausted → exit 1, never a silent stop.
        const waitMs = await this.life.reconnect({
          instance: this.name,
          error,
          action: 'fetch the token again',
          readyAt: null,
          maxAttempts: this.settings.reconnect.maxAttempts,
          healthyAfterMs: this.settings.reconnect.healthyAfterMs,
          exhaustedCode: 'GW_ERR_QQ_RECONNECT_EXHAUSTED',
          waitMs: (attempt) => this.backoff.delayFor(attempt),
          detail: 'backoff',
          resumable: false,
        });
        if (!(await sleep(waitMs, signal))) return false;
      }
    }
  }

  /** See Adapter.send; rejects with GW_ERR_QQ_SEND_* (send.ts). */
  send(message: OutboundMessage, signal?: AbortSignal): Promise<SendResult> {
    return this.sender.send(message, signal);
  }

  private async loop(ctx: AdapterContext, signal: AbortSignal): Promise<void> {
    const { maxAttempts, healthyAfterMs, maxResumeFailures, rateLimitedWaitMs } =
      this.settings.reconnect;
    while (!signal.aborted) {
      const end = await this.attemptOnce(ctx, signal);
      if (end.action === 'stop' || signal.aborted) return;
      const error =
        end.error ?? new GatewayError('GW_ERR_QQ_CONNECTION_CLOSED', 'connection ended');
      if (end.action === 'fatal') {
        // warn: the runner logs the fatal's one error line (with the exit code) when it ends.
        this.log.warn({ code: error.code }, `giving up for good: ${error.message}`);
        throw error;
      }
      if (end.action === 'refresh_token') this.tokens.invalidate(end.token ?? undefined);
      // Never loop on Resume: after maxResumeFailures refused or failed Resumes, Identify.
      if (this.life.resumeGivenUp(end.readyAt, end.sentResume, maxResumeFailures)) {
        this.session = null;
      }
      const rateLimited = end.action === 'wait';
      const waitMs = await this.life.reconnect({
        instance: this.name,
        error,
        action: end.action,
        readyAt: end.readyAt,
        maxAttempts,
        healthyAfterMs,
        exhaustedCode: 'GW_ERR_QQ_RECONNECT_EXHAUSTED',
        waitMs: (attempt) => (rateLimited ? rateLimitedWaitMs : this.backoff.delayFor(attempt)),
        detail: rateLimited ? 'rate_limited' : 'backoff',
        resumable: this.session !== null,
      });
      if (!(await sleep(waitMs, signal))) return;
    }
  }

  /** One attempt: token, gateway discovery, one connection until it closes. */
  private async attemptOnce(ctx: AdapterContext, signal: AbortSignal): Promise<AttemptEnd> {
    const failed = (err: unknown, token: AccessToken | null = null): AttemptEnd => {
      if (signal.aborted || isAbort(err)) return { ...blank(token), action: 'stop' };
      const error = toGatewayError(err, 'GW_ERR_QQ_GATEWAY_FAILED');
      return { ...blank(token), action: error.retryable ? 'resume' : 'fatal', error };
    };
    let token: AccessToken;
    let info: GatewayInfo;
    for (;;) {
      // Only the platform calls are caught here: a failed state write is not a network
      // error to retry, it propagates (and the runner has already ended the gateway).
      this.life.setDetail('fetching_token');
      try {
        token = await this.tokens.get(signal);
      } catch (err) {
        return failed(err);
      }
      this.life.setDetail('fetching_gateway');
      try {
        info = await this.gatewayInfo(token, signal);
        token = await this.tokens.get(signal);
      } catch (err) {
        return failed(err);
      }
      const limit = info.sessionStartLimit;
      if (this.session !== null || limit === null || limit.remaining > 0) break;
      // No Identify left in this window: wait for its reset instead of burning attempts.
      const waitMs = Math.max(limit.resetAfterMs, 0) + SESSION_LIMIT_SLACK_MS;
      this.log.warn(
        { remaining: limit.remaining, total: limit.total, reset_after_ms: limit.resetAfterMs },
        `session start limit reached: waiting ${waitMs} ms for its reset`,
      );
      // Persisted before the wait, which may be long: the operator sees why nothing happens.
      await this.life.move({ detail: 'waiting_session_limit' });
      if (!(await sleep(waitMs, signal))) return { ...blank(token), action: 'stop' };
    }

    const resume =
      this.session === null ? null : { sessionId: this.session.id, seq: this.session.seq };
    const connection = new GatewayConnection({
      url: this.settings.gatewayUrl ?? info.url,
      accessToken: token.value.reveal(),
      intents: this.settings.intents,
      shard: this.settings.shard,
      resume,
      timeouts: {
        connectMs: this.settings.timeouts.connectMs,
        helloMs: this.settings.timeouts.helloMs,
        readyMs: this.settings.timeouts.readyMs,
        heartbeatAckMs: this.settings.timeouts.heartbeatAckMs,
        closeMs: this.settings.timeouts.closeMs,
      },
      maxPayloadBytes: this.settings.maxPayloadBytes,
      jitter: this.settings.jitter,
      random: this.random,
      log: this.log,
      hooks: {
        frame: () => {
          this.stats.frames += 1;
          ctx.touch();
        },
        phase: (detail) => {
          if (detail === 'resuming') this.stats.resumes += 1;
          else this.stats.identifies += 1;
          this.life.setDetail(detail);
        },
        ready: async (readyInfo) => {
          if (!readyInfo.resumed) {
            this.session = { id: readyInfo.sessionId, seq: 0 };
            this.botId = readyInfo.botId ?? this.botId;
            // A new seq stream: the resume point follows it from here.
            const saved: Record<string, unknown> = { session_id: readyInfo.sessionId };
            if (this.botId !== null) saved.bot_id = this.botId;
            ctx.saveSession(saved);
          }
          this.life.settleRestartResume(ctx, readyInfo.resumed);
          this.log.info(
            { resumed: readyInfo.resumed, attempt: this.life.attempt },
            readyInfo.resumed ? 'session resumed (RESUMED)' : 'session ready (READY)',
          );
          await this.life.move(
            { reconnectAttempt: this.life.attempt, resumable: true, detail: null },
            'connected',
          );
          this.life.armHealthyTimer(this.settings.reconnect.healthyAfterMs);
        },
        dispatch: (t, d, _id, seq) => this.onDispatch(ctx, t, d, seq),
        dropped: (code) => {
          if (code === 'GW_ERR_QQ_FRAME_TOO_LARGE') this.stats.oversizedFrames += 1;
          else this.stats.malformedFrames += 1;
        },
      },
    });
    this.stats.connections += 1;
    let end: ConnectionEnd;
    try {
      this.life.setDetail('opening_socket');
      end = await connection.run(signal);
    } catch (err) {
      if (signal.aborted) return { ...blank(token), action: 'stop' };
      throw err;
    } finally {
      this.life.clearHealthyTimer();
    }
    // The session as the connection leaves it: forgotten (identify) or with its last seq.
    this.session = end.sessionId === null ? null : { id: end.sessionId, seq: end.seq ?? 0 };
    return {
      action: end.action,
      error: end.error,
      readyAt: end.readyAt,
      sentResume: end.sentResume,
      token,
    };
  }

  /** `GET /gateway/bot`, with one token refresh when the token is refused. */
  private async gatewayInfo(token: AccessToken, signal: AbortSignal): Promise<GatewayInfo> {
    try {
      return await this.rest.gatewayBot(token.value, signal);
    } catch (err) {
      if (!(isGatewayError(err) && err.details.auth === true)) throw err;
      this.log.info({ code: err.code }, 'gateway endpoint refused the token: refreshing it once');
      this.tokens.invalidate(token);
      const fresh = await this.tokens.get(signal);
      return this.rest.gatewayBot(fresh.value, signal);
    }
  }

  private onDispatch(ctx: AdapterContext, t: string, d: unknown, seq: number | null): void {
    const enabled =
      isMessageEvent(t) &&
      (t !== 'MESSAGE_CREATE' || (this.settings.intents & INTENTS.GUILD_MESSAGES) !== 0);
    if (!enabled) {
      this.stats.otherDispatches[t] = (this.stats.otherDispatches[t] ?? 0) + 1;
      this.log.debug({ event_type: t }, 'dispatch ignored');
      return;
    }
    const normalized = normalizeMessage(t, d, this.botId, this.name);
    if (normalized.kind === 'malformed') {
      this.stats.badEvents += 1;
      this.log.warn(
        { code: 'GW_ERR_QQ_BAD_EVENT', event_type: t },
        `message dispatch dropped: ${normalized.reason}`,
      );
      return;
    }
    // A redelivered message (after a resume, or AT_MESSAGE_CREATE + MESSAGE_CREATE of one
    // message) is emitted again with the same event id: the pipeline's dedupe window drops
    // it, in one place for every platform, and counts it in hermes_duplicates_dropped_total.
    this.stats.messages += 1;
    if (seq !== null) normalized.event.position = seq;
    ctx.emit(normalized.event);
  }
}

function blank(token: AccessToken | null): AttemptEnd {
  return { action: 'resume', error: null, readyAt: null, sentResume: false, token };
}
