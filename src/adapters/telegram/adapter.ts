/**
 * The Telegram adapter: the polling loop and its budget (DESIGN §2). getMe proves the token,
 * then one getUpdates at a time; every failure is one action (poller.ts, protocol.ts) and the
 * budget ends in a fatal error instead of a silent stop. The only file that calls
 * `transition()`. `run()` resolves only after its signal aborts.
 */
import { createHash } from 'node:crypto';
import pino, { type Logger } from 'pino';
import type {
  Adapter,
  AdapterContext,
  AdapterStatusPatch,
  OutboundMessage,
  SendResult,
} from '../../adapters/contract.js';
import { GatewayError } from '../../errors.js';
import { Backoff, sleep } from '../../util/backoff.js';
import type { TelegramSettings } from './config.js';

import './errors.js';
import { normalizeUpdate } from './normalize.js';
import { badResult, callError, OffsetTracker, pollRequest, type CallError } from './poller.js';
import {
  parseUpdates,
  parseUser,
  UPDATE_RETENTION_MS,
  type TgUpdate,
  type TgUser,
} from './protocol.js';
import { isAbort, TelegramRest } from './rest.js';
import { Sender } from './send.js';
import {
  holdRoute,
  ingress as sharedIngress,
  type IngressHub,
  type IngressRequest,
} from '../../ingress/server.js';
import { webhookLastValidCallback } from '../../metrics.js';
import { parseWebhookInfo, setWebhookParams, UpdateReceiver } from './webhook.js';

/** Jitter ratio of backoff steps when jitter is on (jitter only shortens a step). */
const BACKOFF_JITTER = 0.25;
/** The confirming getUpdates after a stop gets at most this long (the stop deadline is short). */
const STOP_CONFIRM_MS = 2_000;

/** Counters for operators and tests; never persisted. */
export interface TelegramStats {
  polls: number;
  updates: number;
  events: number;
  ignored: number;
  malformed: number;
  failures: Record<string, number>;
}

export interface TelegramAdapterOptions {
  /** Injectable randomness for jitter (tests, bench); defaults to Math.random. */
  random?: () => number;
  /** The inbound HTTP server of webhook mode; the process's own by default. */
  ingress?: IngressHub;
}

export class TelegramAdapter implements Adapter {
  readonly stats: TelegramStats = {
    polls: 0,
    updates: 0,
    events: 0,
    ignored: 0,
    malformed: 0,
    failures: {},
  };
  private readonly rest: TelegramRest;
  private readonly sender: Sender;
  private readonly backoff: Backoff;
  private offsets = new OffsetTracker();
  private log: Logger = pino({ level: 'silent' });
  private ctx: AdapterContext | null = null;
  private me: TgUser | null = null;
  /** The offset of the last answered getUpdates; a stop confirms when it is behind. */
  private confirmedOffset: number | undefined = undefined;
  /**
   * The next poll is a short one (timeout 0): at start and after a failure, so `connected`
   * follows as soon as the platform answers instead of after a whole idle long poll.
   */
  private shortPollNext = true;
  private deleteWebhookNext: boolean;
  /** Failed calls since polls were last healthy for healthy_after_ms. */
  private attempt = 0;
  /** When polls started succeeding again after a failure; null while failing. */
  private healthySince: number | null = null;
  /** A 409 conflict burst is logged once, at its first poll. */
  private inConflictBurst = false;
  private state: 'connecting' | 'reconnecting' | 'connected' = 'connecting';
  private readonly ingress: IngressHub;

  /** Telegram has no idempotency key: a reply re-sent after a crash may arrive twice. */
  readonly idempotentSends = false;
  /** What a resume point is for: update ids are counted per bot and per Bot API server. */
  private readonly session: Record<string, unknown>;

  constructor(
    readonly settings: TelegramSettings,
    readonly name = 'telegram',
    options: TelegramAdapterOptions = {},
  ) {
    this.rest = new TelegramRest(settings.apiBase, settings.token);
    this.sender = new Sender({
      rest: this.rest,
      restMs: settings.timeouts.restMs,
      ...settings.send,
      log: () => this.log,
    });
    this.backoff = new Backoff({
      stepsMs: settings.reconnect.backoffMs,
      jitterRatio: settings.jitter ? BACKOFF_JITTER : 0,
      ...(options.random === undefined ? {} : { random: options.random }),
    });
    this.deleteWebhookNext = settings.deleteWebhookOnStart;
    this.session = { bot_id: settings.botId, server: serverId(settings.apiBase) };
    this.ingress = options.ingress ?? sharedIngress;
  }

  /**
   * The adapter's life. Resolves after `signal` aborts. Rejects with
   * GW_ERR_TELEGRAM_UNAUTHORIZED or GW_ERR_TELEGRAM_WEBHOOK_ACTIVE (non-retryable: exit 78), or
   * GW_ERR_TELEGRAM_RECONNECT_EXHAUSTED (retryable: exit 1) after reconnect.max_attempts
   * failed calls in a row without a healthy period.
   */
  async run(ctx: AdapterContext, signal: AbortSignal): Promise<void> {
    this.ctx = ctx;
    this.log = ctx.log;
    if (this.settings.webhook !== null) return this.runWebhook(ctx, signal, this.settings.webhook);
    try {
      await this.move('connecting', {
        reconnectAttempt: 0,
        maxReconnectAttempts: this.settings.reconnect.maxAttempts,
        resumable: false,
        lastError: null,
        detail: 'get_me',
      });
      this.takeResumePoint(ctx);
      await this.loop(ctx, signal);
    } catch (err) {
      // A crash and a stop are told apart by the signal: rethrow only if nobody asked to stop.
      if (signal.aborted) {
        this.log.debug({ err: String(err) }, 'error after the stop request ignored');
        return;
      }
      throw err;
    } finally {
      if (signal.aborted) await this.confirmOnStop();
      this.rest.close();
    }
  }

  /**
   * Webhook mode's life: `connecting` while the route is bound and getMe, setWebhook and
   * getWebhookInfo answer, `connected` once the platform confirmed our URL, then it waits for
   * the stop or for the listener to die. Rejects with GW_ERR_INGRESS_LISTEN (exit 78),
   * GW_ERR_TELEGRAM_UNAUTHORIZED / GW_ERR_TELEGRAM_WEBHOOK_REJECTED (exit 78),
   * GW_ERR_INGRESS_LISTENER_DIED or GW_ERR_TELEGRAM_RECONNECT_EXHAUSTED (exit 1). The webhook
   * stays set on stop: Telegram keeps the updates and retries them until we are back.
   */
  private async runWebhook(
    ctx: AdapterContext,
    signal: AbortSignal,
    webhook: NonNullable<TelegramSettings['webhook']>,
  ): Promise<void> {
    const receiver = new UpdateReceiver({
      secretToken: webhook.secretToken,
      log: () => this.log,
      valid: () => {
        ctx.touch();
        webhookLastValidCallback.set(this.name);
      },
      take: (update) => {
        this.stats.updates += 1;
        this.take(ctx, update);
      },
    });
    try {
      await this.move('connecting', {
        reconnectAttempt: 0,
        maxReconnectAttempts: this.settings.reconnect.maxAttempts,
        resumable: false,
        lastError: null,
        detail: 'binding',
      });
      const spec = {
        listen: webhook.listen,
        path: webhook.path,
        instance: this.name,
        maxBodyBytes: webhook.maxBodyBytes,
        requestTimeoutMs: webhook.requestTimeoutMs,
        handler: (request: IngressRequest) => receiver.handle(request),
        log: this.log,
      };
      await holdRoute(this.ingress, spec, signal, async () => {
        for (;;) {
          const failure = await this.setUpWebhook(webhook, signal);
          if (signal.aborted) return false;
          if (failure === null) break;
          if (!(await this.failed(failure, signal))) return false;
        }
        await this.move('connected', { reconnectAttempt: this.attempt, detail: null });
        return true;
      });
    } catch (err) {
      if (signal.aborted || isAbort(err)) {
        this.log.debug({ err: String(err) }, 'error after the stop request ignored');
        return;
      }
      throw err;
    } finally {
      this.rest.close();
    }
  }

  /** getMe: proves the token; null when it answered with the bot user (kept in `me`). */
  private async fetchMe(signal: AbortSignal): Promise<CallError | null> {
    const { restMs } = this.settings.timeouts;
    const outcome = await this.rest.call('getMe', {}, restMs, signal);
    const failure = callError('getMe', outcome);
    if (failure !== null) return failure;
    const me =
      outcome.kind === 'reply' && outcome.reply.ok ? parseUser(outcome.reply.result) : null;
    if (me === null) return badResult('getMe');
    this.me = me;
    this.log.info(
      {
        bot_id: me.id,
        username: me.username ?? null,
        can_read_all_group_messages: me.can_read_all_group_messages ?? null,
      },
      me.can_read_all_group_messages === false
        ? 'getMe: token accepted; privacy mode is on, so in groups the bot sees only commands and replies to it'
        : 'getMe: token accepted',
    );
    return null;
  }

  /** getMe (once), setWebhook, getWebhookInfo; null when Telegram confirmed our URL. */
  private async setUpWebhook(
    webhook: NonNullable<TelegramSettings['webhook']>,
    signal: AbortSignal,
  ): Promise<CallError | null> {
    const { restMs } = this.settings.timeouts;
    if (this.me === null) {
      const failure = await this.fetchMe(signal);
      if (failure !== null) return failure;
    }
    const params = setWebhookParams(webhook, this.settings.allowedUpdates);
    const set = await this.rest.call('setWebhook', params, restMs, signal);
    if (set.kind === 'reply' && !set.reply.ok && set.reply.errorCode === 400) {
      // "bad webhook: ..." (not HTTPS, a port Telegram does not call, an unresolvable host):
      // the config is wrong, and asking again cannot change the answer.
      throw new GatewayError(
        'GW_ERR_TELEGRAM_WEBHOOK_REJECTED',
        `setWebhook: ${set.reply.description}: check webhook.public_url`,
        { details: { method: 'setWebhook', error_code: 400 } },
      );
    }
    const setFailure = callError('setWebhook', set);
    if (setFailure !== null) return setFailure;
    const info = await this.rest.call('getWebhookInfo', {}, restMs, signal);
    const infoFailure = callError('getWebhookInfo', info);
    if (infoFailure !== null) return infoFailure;
    const parsed =
      info.kind === 'reply' && info.reply.ok ? parseWebhookInfo(info.reply.result) : null;
    if (parsed === null) return badResult('getWebhookInfo');
    if (parsed.url !== webhook.publicUrl) {
      // Someone else set another URL in between (another process on this token).
      return {
        ...badResult('getWebhookInfo'),
        error: new GatewayError(
          'GW_ERR_TELEGRAM_CONFLICT',
          "getWebhookInfo: the webhook URL is not ours: another process sets this bot's webhook",
          { details: { method: 'getWebhookInfo' } },
        ),
        action: 'conflict',
      };
    }
    this.log.info(
      {
        pending_update_count: parsed.pendingUpdateCount,
        last_error_message: parsed.lastErrorMessage,
        last_error_date: parsed.lastErrorDate,
      },
      parsed.lastErrorMessage === null
        ? 'setWebhook: confirmed by getWebhookInfo'
        : `setWebhook: confirmed; Telegram's last delivery error: ${parsed.lastErrorMessage}`,
    );
    return null;
  }

  /** See Adapter.send; rejects with GW_ERR_TELEGRAM_SEND_* (send.ts). */
  send(message: OutboundMessage, signal?: AbortSignal): Promise<SendResult> {
    return this.sender.send(message, signal);
  }

  private async loop(ctx: AdapterContext, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let failure: CallError | null;
      try {
        failure = await this.cycle(ctx, signal);
      } catch (err) {
        if (isAbort(err) || signal.aborted) return;
        throw err;
      }
      if (signal.aborted) return;
      if (failure === null) await this.healthy(ctx);
      else if (!(await this.failed(failure, signal))) return;
    }
  }

  /** getMe and deleteWebhook when due, then one getUpdates; null when all succeeded. */
  private async cycle(ctx: AdapterContext, signal: AbortSignal): Promise<CallError | null> {
    const { restMs } = this.settings.timeouts;
    if (this.me === null) {
      const failure = await this.fetchMe(signal);
      if (failure !== null) return failure;
    }
    if (this.deleteWebhookNext) {
      const outcome = await this.rest.call(
        'deleteWebhook',
        { drop_pending_updates: false },
        restMs,
        signal,
      );
      const failure = callError('deleteWebhook', outcome);
      if (failure !== null) return failure;
      this.deleteWebhookNext = false;
      this.log.info('deleteWebhook: polling owns the bot (delete_webhook_on_start)');
    }
    return this.poll(ctx, signal);
  }

  /**
   * Continues where the previous process of this instance stopped: its persisted handled
   * position, when it is for this bot on this server and younger than Telegram keeps
   * unconfirmed updates. Otherwise a fresh position stream from the server's queue head
   * (everything unconfirmed comes again; what was answered is dropped by the answered set).
   */
  private takeResumePoint(ctx: AdapterContext): void {
    const session = this.session;
    const point = ctx.resumePoint;
    const same =
      point !== null &&
      point.session.bot_id === session.bot_id &&
      point.session.server === session.server;
    if (point !== null && same && point.ageMs < UPDATE_RETENTION_MS) {
      if (point.position !== null) {
        this.offsets = new OffsetTracker(point.position);
        ctx.resumeOutcome('accepted');
        this.log.info(
          { resume_point_age_ms: point.ageMs, update_id: point.position },
          'resuming after the last update the previous process handled',
        );
      }
      return;
    }
    if (point !== null) {
      ctx.resumeOutcome(same ? 'stale' : 'refused');
      this.log.warn(
        { resume_point_age_ms: point.ageMs, update_id: point.position },
        same
          ? `resume point of the previous process is ${point.ageMs} ms old, past Telegram's 24 h: starting at the oldest unconfirmed update`
          : 'resume point of the previous process is for another bot or server: starting at the oldest unconfirmed update',
      );
    }
    ctx.saveSession(session);
  }

  private async poll(ctx: AdapterContext, signal: AbortSignal): Promise<CallError | null> {
    // Only handled updates are confirmed, and unconfirmed ones come back with every poll:
    // asking while the last batch is in the pipeline would get it again at once. Wait for it,
    // bounded, so a slow chat does not hold the others' new messages back for long.
    const pending = this.offsets.unhandled(ctx.handledPosition());
    if (pending !== null && !this.shortPollNext) {
      await waitHandled(ctx, pending, this.settings.polling.handledWaitMs, signal);
      if (signal.aborted) return null;
    }
    const offset = this.offsets.next(ctx.handledPosition());
    const { params, deadlineMs } = pollRequest(
      {
        ...this.settings.polling,
        allowedUpdates: this.settings.allowedUpdates,
        pollSlackMs: this.settings.timeouts.pollSlackMs,
      },
      offset,
      this.shortPollNext,
    );
    this.stats.polls += 1;
    const startedAt = Date.now();
    const outcome = await this.rest.call('getUpdates', params, deadlineMs, signal);
    const failure = callError('getUpdates', outcome);
    if (failure !== null) {
      if (failure.error.code === 'GW_ERR_TELEGRAM_POLL_TIMEOUT') {
        failure.error.details.elapsed_ms = Date.now() - startedAt;
        failure.error.details.deadline_ms = deadlineMs;
      }
      return failure;
    }
    const updates =
      outcome.kind === 'reply' && outcome.reply.ok ? parseUpdates(outcome.reply.result) : null;
    if (updates === null) return badResult('getUpdates');
    ctx.touch();
    // The server answered, so it processed the offset: everything below it is confirmed.
    this.confirmedOffset = offset;
    this.shortPollNext = false;
    const first = updates[0];
    if (offset !== undefined && first !== undefined && first.update_id < offset) {
      // Ids below the offset: the server restarted its ids (a queue idle for a week, another
      // server) and answered from its head (fact sheet §3.3 rule 1). A new position stream.
      this.log.warn(
        { offset, update_id: first.update_id },
        'getUpdates answered below the offset: the server restarted its update ids',
      );
      this.offsets = new OffsetTracker();
      ctx.saveSession(this.session);
    }
    for (const update of updates) {
      // Not confirmed yet (in the pipeline): the server sends it again until it is.
      if (this.offsets.seen(update.update_id)) continue;
      this.offsets.taken(update.update_id, this.take(ctx, update));
    }
    return null;
  }

  /** Hands one update on; true when it went to the pipeline as an event. */
  private take(ctx: AdapterContext, update: TgUpdate): boolean {
    this.stats.updates += 1;
    const normalized = normalizeUpdate(update, this.name, this.me?.id ?? null);
    switch (normalized.kind) {
      case 'event':
        this.stats.events += 1;
        // The update_id is the event's place in the stream: the handled watermark, the
        // offset that confirms, and the resume point follow it.
        ctx.emit({ ...normalized.event, position: update.update_id });
        if (normalized.callbackQueryId !== null) {
          ctx.track(
            'telegram answerCallbackQuery',
            this.answerCallback(normalized.callbackQueryId),
          );
        }
        return true;
      case 'ignored':
        this.stats.ignored += 1;
        this.log.debug({ update_id: update.update_id }, `update skipped: ${normalized.reason}`);
        return false;
      case 'malformed':
        this.stats.malformed += 1;
        this.log.warn(
          { code: 'GW_ERR_TELEGRAM_BAD_UPDATE', update_id: update.update_id },
          `update skipped: ${normalized.reason}`,
        );
        return false;
    }
  }

  /** Stops the button's spinner. Never rejects: a failed answer only costs the user a spinner. */
  private async answerCallback(id: string): Promise<void> {
    try {
      const outcome = await this.rest.call(
        'answerCallbackQuery',
        { callback_query_id: id },
        this.settings.timeouts.restMs,
        undefined,
      );
      const failure = callError('answerCallbackQuery', outcome);
      if (failure !== null) {
        this.log.warn(
          { code: failure.error.code },
          `answerCallbackQuery failed: ${failure.error.message}`,
        );
      }
    } catch (err) {
      this.log.warn({ err: this.rest.scrub(String(err)) }, 'answerCallbackQuery failed');
    }
  }

  /** A successful cycle: `connected` after the first, the budget reset after a healthy period. */
  private async healthy(ctx: AdapterContext): Promise<void> {
    this.inConflictBurst = false;
    const now = Date.now();
    if (this.state !== 'connected') {
      this.log.info({ attempt: this.attempt }, 'polling: getMe and the first getUpdates answered');
      await this.move('connected', {
        reconnectAttempt: this.attempt,
        resumable: true,
        detail: null,
      });
    }
    if (this.attempt === 0) return;
    this.healthySince ??= now;
    if (now - this.healthySince < this.settings.reconnect.healthyAfterMs) return;
    // Only polls that kept succeeding reset the budget, never the start of a poller
    // (the hermes-agent 409 bug that left a bot deaf for days: fact sheet §10.1).
    this.attempt = 0;
    this.healthySince = null;
    this.log.info('polling healthy: failure count reset');
    ctx.note({ reconnectAttempt: 0, lastError: null });
  }

  /**
   * One failed call: throws for a fatal one, else persists `reconnecting` and waits. Resolves
   * false when a stop request ended the wait.
   */
  private async failed(failure: CallError, signal: AbortSignal): Promise<boolean> {
    const { error, action } = failure;
    this.healthySince = null;
    this.shortPollNext = true;
    this.stats.failures[error.code] = (this.stats.failures[error.code] ?? 0) + 1;
    if (action === 'unauthorized') throw error;
    if (action === 'webhook_active') {
      if (!this.settings.deleteWebhookOnStart) throw error;
      this.deleteWebhookNext = true;
    }
    const { maxAttempts } = this.settings.reconnect;
    this.attempt += 1;
    if (this.attempt > maxAttempts) {
      throw new GatewayError(
        'GW_ERR_TELEGRAM_RECONNECT_EXHAUSTED',
        `gave up after ${maxAttempts} failed calls without a healthy period; last error ${error.code}: ${error.message}`,
        { cause: error, details: { attempts: maxAttempts, last_code: error.code } },
      );
    }
    const waitMs =
      action === 'rate_limited' && failure.retryAfterMs !== null
        ? failure.retryAfterMs
        : this.backoff.delayFor(this.attempt);
    const facts = {
      code: error.code,
      method: failure.method,
      action,
      attempt: this.attempt,
      max_attempts: maxAttempts,
      wait_ms: waitMs,
      ...error.details,
    };
    const text = `${error.message}; retry ${this.attempt}/${maxAttempts} in ${waitMs} ms`;
    if (action !== 'conflict') this.log.warn(facts, text);
    else if (!this.inConflictBurst) {
      this.inConflictBurst = true;
      this.log.warn(
        {
          ...facts,
          hint: 'another process is polling this bot token: stop it, or give each process its own bot',
        },
        `${text} (logged once until a poll succeeds)`,
      );
    } else this.log.debug(facts, text);
    await this.move('reconnecting', {
      reconnectAttempt: this.attempt,
      lastError: error,
      detail: action,
    });
    return sleep(waitMs, signal);
  }

  /**
   * After a stop, confirms the updates handled since the last poll (getUpdates with the new
   * offset, timeout 0, limit 1) so a successor does not get them again; those not handled
   * stay unconfirmed for it. Bounded; best effort.
   */
  private async confirmOnStop(): Promise<void> {
    const offset = this.offsets.next(this.ctx?.handledPosition() ?? null);
    if (offset === undefined || offset === this.confirmedOffset) return;
    const timeoutMs = Math.min(this.settings.timeouts.restMs, STOP_CONFIRM_MS);
    try {
      const outcome = await this.rest.call(
        'getUpdates',
        { offset, limit: 1, timeout: 0 },
        timeoutMs,
        undefined,
      );
      const failure = callError('getUpdates', outcome);
      if (failure === null) this.confirmedOffset = offset;
      else
        this.log.warn(
          { code: failure.error.code },
          `stop: offset not confirmed: ${failure.error.message}`,
        );
    } catch (err) {
      this.log.warn({ err: this.rest.scrub(String(err)) }, 'stop: offset not confirmed');
    }
  }

  private async move(
    state: 'connecting' | 'reconnecting' | 'connected',
    patch: AdapterStatusPatch,
  ): Promise<void> {
    const ctx = this.ctx;
    if (ctx === null) return;
    await ctx.transition(state, patch);
    this.state = state;
  }
}

/**
 * Which Bot API server a resume point belongs to: update ids are counted per server (fact
 * sheet §3.2). A hash, so an api_base with credentials in it is not stored.
 */
export function serverId(apiBase: string): string {
  return createHash('sha256').update(apiBase).digest('hex').slice(0, 16);
}

/** Waits until `position` is handled, at most `timeoutMs`, or until `signal` aborts. */
async function waitHandled(
  ctx: AdapterContext,
  position: number,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<void> {
  const bound = new AbortController();
  const timer = setTimeout(() => bound.abort(), timeoutMs);
  const onAbort = (): void => bound.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await ctx.whenHandled(position, bound.signal);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}
