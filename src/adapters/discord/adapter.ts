/**
 * The Discord adapter: the reconnect loop (DESIGN §2). It owns the session across
 * connections (Resume at `resume_gateway_url`, Identify at the gateway URL), the reconnect
 * budget, the identify pacing and every state transition; one DiscordConnection at a time
 * does the protocol. `run()` resolves only after its signal aborts and throws when the budget
 * is exhausted or Discord refuses for good, so it can never end silently.
 */
import pino, { type Logger } from 'pino';
import type {
  Adapter,
  AdapterContext,
  OutboundMessage,
  SendResult,
} from '../../adapters/contract.js';
import { AdapterLifecycle } from '../lifecycle.js';
import { GatewayError, toGatewayError } from '../../errors.js';
import { HttpFailureError } from '../../net/http.js';
import { Backoff, sleep } from '../../util/backoff.js';
import { hasIntent, type DiscordSettings } from './config.js';
import { DiscordConnection, type ConnectionEnd } from './connection.js';
import './errors.js';
import { normalizeMessage } from './normalize.js';
import type { GatewayInfo, ReconnectAction } from './protocol.js';
import { DiscordRest } from './rest.js';
import { Sender } from './send.js';

const BACKOFF_JITTER = 0.25;
const SESSION_LIMIT_SLACK_MS = 50;

export interface DiscordStats {
  frames: number;
  messages: number;
  edits: number;
  /** Messages not answered on purpose (own, bots, system, not addressed). */
  ignored: number;
  badEvents: number;
  malformedFrames: number;
  oversizedFrames: number;
  otherDispatches: Record<string, number>;
  identifies: number;
  resumes: number;
  connections: number;
  /** The last zombie verdict: when, and the heartbeat interval then (bench, operators). */
  lastZombie: { at: number; intervalMs: number } | null;
}

interface AttemptEnd {
  action: ReconnectAction | 'stop';
  error: GatewayError | null;
  readyAt: number | null;
  /** The attempt set out to Resume (a session was held when it began). */
  triedResume: boolean;
}

export interface DiscordAdapterOptions {
  instance?: string;
  random?: () => number;
}

export class DiscordAdapter implements Adapter {
  readonly name: string;
  /** Replies carry a nonce with enforce_nonce: Discord answers a re-sent copy with the first. */
  readonly idempotentSends = true;
  readonly stats: DiscordStats = {
    frames: 0,
    messages: 0,
    edits: 0,
    ignored: 0,
    badEvents: 0,
    malformedFrames: 0,
    oversizedFrames: 0,
    otherDispatches: {},
    identifies: 0,
    resumes: 0,
    connections: 0,
    lastZombie: null,
  };
  private readonly rest: DiscordRest;
  private readonly sender: Sender;
  private readonly backoff: Backoff;
  private readonly random: () => number;
  private log: Logger = pino({ level: 'silent' });
  private readonly life = new AdapterLifecycle('discord', () => this.log);
  /** The session to resume; survives connections, dropped when Discord refuses it. */
  private session: { sessionId: string; seq: number; resumeUrl: string } | null = null;
  private botId: string | null = null;
  /** When this adapter last sent Identify (max_concurrency: one per window per shard). */
  private lastIdentifyAt = -Infinity;
  /** The last URL `GET /gateway/bot` gave, kept when the endpoint later fails. */
  private lastGatewayUrl: string | null = null;
  private contentWarned = false;

  constructor(
    readonly settings: DiscordSettings,
    options: DiscordAdapterOptions = {},
  ) {
    this.name = options.instance ?? 'discord';
    this.random = options.random ?? Math.random;
    this.rest = new DiscordRest({
      apiBase: settings.apiBase,
      token: settings.token,
      restMs: settings.timeouts.restMs,
      globalPerSecond: settings.send.globalPerSecond,
      invalidRequestLimit: settings.send.invalidRequestLimit,
    });
    this.sender = new Sender({
      rest: this.rest,
      maxAttempts: settings.send.maxAttempts,
      maxTextLength: settings.send.maxTextLength,
      retryDelayMs: settings.send.retryDelayMs,
      maxRetryDelayMs: settings.send.maxRetryDelayMs,
      allowedMentions: settings.send.allowedMentions,
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
   * The adapter's life. Resolves after `signal` aborts (the socket closed with 4000, so the
   * session stays resumable for the next process). Rejects with
   * GW_ERR_DISCORD_RECONNECT_EXHAUSTED (exit 1) when reconnect.max_attempts reconnects in a
   * row failed, GW_ERR_DISCORD_UNAUTHORIZED (exit 78) when the token is refused, or the
   * close code's error (GW_ERR_DISCORD_CLOSE_4014..., exit 78) for a fatal close.
   */
  async run(ctx: AdapterContext, signal: AbortSignal): Promise<void> {
    this.log = ctx.log;
    this.life.bind(ctx);
    const taken = this.life.takeResumePoint(ctx, ['session_id', 'resume_url']);
    if (taken !== null) {
      this.session = {
        sessionId: taken.session.session_id!,
        resumeUrl: taken.session.resume_url!,
        seq: taken.seq,
      };
      this.botId = taken.session.bot_id ?? this.botId;
    }
    try {
      await this.life.move({
        reconnectAttempt: 0,
        maxReconnectAttempts: this.settings.reconnect.maxAttempts,
        resumable: this.session !== null,
        lastError: null,
        detail: 'starting',
      });
      await this.loop(ctx, signal);
    } catch (err) {
      if (signal.aborted) {
        this.log.debug({ err: String(err) }, 'error after the stop request ignored');
        return;
      }
      throw err;
    } finally {
      this.life.clearHealthyTimer();
      this.rest.close();
    }
  }

  /** See Adapter.send; rejects with GW_ERR_DISCORD_SEND_* (send.ts). */
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
        end.error ?? new GatewayError('GW_ERR_DISCORD_CONNECTION_CLOSED', 'connection ended');
      if (end.action === 'fatal' || !error.retryable) {
        this.log.warn({ code: error.code }, `giving up for good: ${error.message}`);
        throw error;
      }
      // Never loop on Resume: after max_resume_failures Resumes in a row that did not reach
      // RESUMED, whether refused or cut before an answer (Discord has answered Resumes with
      // 1006 for minutes before an op 9: fact sheet §13), start a new session.
      if (this.life.resumeGivenUp(end.readyAt, end.triedResume, maxResumeFailures)) {
        this.session = null;
      }
      const [lo, hi] = this.settings.reconnect.invalidSessionWaitMs;
      const waitMs = await this.life.reconnect({
        instance: this.name,
        error,
        action: end.action,
        readyAt: end.readyAt,
        maxAttempts,
        healthyAfterMs,
        exhaustedCode: 'GW_ERR_DISCORD_RECONNECT_EXHAUSTED',
        waitMs: (attempt) =>
          end.action === 'wait'
            ? rateLimitedWaitMs
            : end.action === 'identify'
              ? Math.round(lo + (hi - lo) * (this.settings.jitter ? this.random() : 0.5))
              : this.backoff.delayFor(attempt),
        detail:
          end.action === 'wait'
            ? 'rate_limited'
            : end.action === 'identify'
              ? 'invalid_session'
              : 'backoff',
        resumable: this.session !== null,
      });
      if (!(await sleep(waitMs, signal))) return;
    }
  }

  /** One attempt: discovery (for Identify), one connection until it closes. */
  private async attemptOnce(ctx: AdapterContext, signal: AbortSignal): Promise<AttemptEnd> {
    const stop: AttemptEnd = { action: 'stop', error: null, readyAt: null, triedResume: false };
    let url: string;
    const session = this.session;
    if (session !== null) {
      // Resume needs no discovery: the session's own URL is where it lives.
      url = session.resumeUrl;
    } else {
      const found = await this.discover(signal);
      if (found === 'stop') return stop;
      if (found instanceof GatewayError) {
        return {
          action: found.retryable ? 'resume' : 'fatal',
          error: found,
          readyAt: null,
          triedResume: false,
        };
      }
      url = found.url;
      // max_concurrency: identifies of one shard no closer than identify_interval_ms.
      const spacingMs =
        this.lastIdentifyAt + this.settings.reconnect.identifyIntervalMs - Date.now();
      if (spacingMs > 0) {
        this.life.setDetail('identify_spacing');
        if (!(await sleep(spacingMs, signal))) return stop;
      }
    }

    const connection = new DiscordConnection({
      url,
      token: this.settings.token.reveal(),
      intents: this.settings.intents,
      shard: this.settings.shard,
      resume: session,
      timeouts: {
        connectMs: this.settings.timeouts.connectMs,
        helloMs: this.settings.timeouts.helloMs,
        readyMs: this.settings.timeouts.readyMs,
        heartbeatAckMs: this.settings.timeouts.heartbeatAckMs,
        closeMs: this.settings.timeouts.closeMs,
      },
      gatewayLimit: this.settings.gatewayLimit,
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
          else {
            this.stats.identifies += 1;
            this.lastIdentifyAt = Date.now();
          }
          this.life.setDetail(detail);
        },
        ready: async (info) => {
          if (!info.resumed) {
            this.botId = info.botId ?? this.botId;
            // A new seq stream: the resume point follows it from here.
            const saved: Record<string, unknown> = {
              session_id: info.sessionId,
              resume_url: info.resumeUrl,
            };
            if (this.botId !== null) saved.bot_id = this.botId;
            ctx.saveSession(saved);
            this.warnContentIntent();
          }
          this.life.settleRestartResume(ctx, info.resumed);
          this.log.info(
            { resumed: info.resumed, attempt: this.life.attempt },
            info.resumed ? 'session resumed (RESUMED)' : 'session ready (READY)',
          );
          await this.life.move(
            { reconnectAttempt: this.life.attempt, resumable: true, detail: null },
            'connected',
          );
          this.life.armHealthyTimer(this.settings.reconnect.healthyAfterMs);
        },
        dispatch: (t, d, seq) => this.onDispatch(ctx, t, d, seq),
        dropped: (code) => {
          if (code === 'GW_ERR_DISCORD_FRAME_TOO_LARGE') this.stats.oversizedFrames += 1;
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
      if (signal.aborted) return stop;
      throw err;
    } finally {
      this.life.clearHealthyTimer();
    }
    if (end.zombieAt !== null)
      this.stats.lastZombie = { at: end.zombieAt, intervalMs: end.intervalMs };
    this.session = end.session;
    return {
      action: end.action,
      error: end.error,
      readyAt: end.readyAt,
      triedResume: session !== null,
    };
  }

  /**
   * The URL to Identify at: `GET /gateway/bot` (config gateway_url overrides its URL, not its
   * limits). With no session start left, waits for `reset_after` instead of burning attempts.
   */
  private async discover(signal: AbortSignal): Promise<{ url: string } | GatewayError | 'stop'> {
    for (;;) {
      this.life.setDetail('fetching_gateway');
      let info: GatewayInfo;
      try {
        info = await this.rest.gatewayBot(signal);
      } catch (err) {
        if (signal.aborted || (err instanceof HttpFailureError && err.failure === 'aborted')) {
          return 'stop';
        }
        const error = toGatewayError(err, 'GW_ERR_DISCORD_GATEWAY_FAILED');
        // The endpoint failing is no reason not to connect: keep the last good URL.
        const fallback = this.settings.gatewayUrl ?? this.lastGatewayUrl;
        if (error.retryable && fallback !== null) {
          this.log.warn(
            { code: error.code },
            `GET /gateway/bot failed (${error.message}): using the last known gateway URL`,
          );
          return { url: fallback };
        }
        return error;
      }
      this.lastGatewayUrl = info.url;
      const limit = info.sessionStartLimit;
      if (limit === null || limit.remaining > 0)
        return { url: this.settings.gatewayUrl ?? info.url };
      const waitMs = limit.resetAfterMs + SESSION_LIMIT_SLACK_MS;
      this.log.warn(
        { remaining: limit.remaining, total: limit.total, reset_after_ms: limit.resetAfterMs },
        `session start limit reached: waiting ${waitMs} ms for its reset`,
      );
      await this.life.move({ detail: 'waiting_session_limit' });
      if (!(await sleep(waitMs, signal))) return 'stop';
    }
  }

  /** Without MESSAGE_CONTENT, guild messages that do not mention the bot arrive empty. */
  private warnContentIntent(): void {
    if (this.contentWarned || hasIntent(this.settings, 'MESSAGE_CONTENT')) return;
    if (this.settings.respondTo !== 'all') return;
    this.contentWarned = true;
    this.log.warn(
      { intents: this.settings.intents },
      'respond_to is "all" but the MESSAGE_CONTENT intent is not requested: guild messages that do not mention the bot arrive with empty text',
    );
  }

  private onDispatch(ctx: AdapterContext, t: string, d: unknown, seq: number | null): void {
    if (t !== 'MESSAGE_CREATE' && t !== 'MESSAGE_UPDATE') {
      this.stats.otherDispatches[t] = (this.stats.otherDispatches[t] ?? 0) + 1;
      return;
    }
    const normalized = normalizeMessage(
      t,
      d,
      {
        botId: this.botId,
        respondTo: this.settings.respondTo,
        ignoreBots: this.settings.ignoreBots,
      },
      this.name,
    );
    switch (normalized.kind) {
      case 'malformed':
        this.stats.badEvents += 1;
        this.log.warn(
          { code: 'GW_ERR_DISCORD_BAD_EVENT', event_type: t },
          `message dispatch dropped: ${normalized.reason}`,
        );
        return;
      case 'ignored':
        // Dropped on purpose: it does not hold the handled watermark back (never emitted).
        this.stats.ignored += 1;
        this.log.debug({ event_type: t, reason: normalized.reason }, 'message not answered');
        return;
      case 'message':
        if (t === 'MESSAGE_UPDATE') this.stats.edits += 1;
        else this.stats.messages += 1;
        if (seq !== null) normalized.event.position = seq;
        ctx.emit(normalized.event);
        return;
    }
  }
}
