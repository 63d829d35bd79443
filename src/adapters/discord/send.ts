/**
 * Delivering messages (fact sheet §9-§11): text split at 2000 preferring line breaks, a reply
 * reference that never fails, no mention parsed unless configured, and a `nonce` with
 * `enforce_nonce` per chunk, the same on every attempt and in every process, so a retry (or a
 * re-send after a restart) cannot post twice. Rate limits wait as the headers say; 5xx and
 * network failures retry; a permanent refusal is never retried.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { OutboundMessage, SendResult } from '../../adapters/contract.js';
import { GatewayError, isGatewayError } from '../../errors.js';
import { HttpFailureError } from '../../net/http.js';
import { sleep } from '../../util/backoff.js';
import { splitText, utf16Length } from '../../util/split-text.js';
import { readReplyContext } from './normalize.js';
import {
  MAX_NONCE_LENGTH,
  PERMANENT_CODES,
  UNKNOWN_MESSAGE,
  createMessageBody,
  sentMessageId,
} from './protocol.js';
import { ROUTE_CREATE_MESSAGE, type CreateAnswer, type DiscordRest } from './rest.js';

export interface SenderOptions {
  rest: DiscordRest;
  maxAttempts: number;
  maxTextLength: number;
  retryDelayMs: number;
  maxRetryDelayMs: number;
  allowedMentions: readonly ('users' | 'roles' | 'everyone')[];
  jitter: boolean;
  log: () => Logger;
  random?: () => number;
}

/**
 * The nonce of chunk `index` of a reply: from its idempotency key when it has one (the same in
 * every process), else random; made before the first attempt and reused on every retry.
 */
export function chunkNonce(key: string | undefined, index: number): string {
  if (key === undefined) return randomBytes(12).toString('hex').slice(0, MAX_NONCE_LENGTH);
  return createHash('sha256')
    .update(`${key}\u0000${index}`)
    .digest('hex')
    .slice(0, MAX_NONCE_LENGTH);
}

export class Sender {
  private readonly random: () => number;
  /** Set by a 401: the token is dead, and every further request counts toward an IP ban. */
  private unauthorized = false;

  constructor(private readonly options: SenderOptions) {
    this.random = options.random ?? Math.random;
  }

  /**
   * Delivers `message`, split into chunks. Resolves with one id per chunk. Rejects with
   * GW_ERR_DISCORD_CHAT_ID_INVALID (before any request), GW_ERR_DISCORD_SEND_REJECTED,
   * GW_ERR_DISCORD_SEND_UNAUTHORIZED, GW_ERR_DISCORD_SEND_RATE_LIMITED,
   * GW_ERR_DISCORD_INVALID_REQUEST_LIMIT or GW_ERR_DISCORD_SEND_FAILED, whose
   * `details.sent_ids` lists the chunks delivered before the failure.
   */
  async send(message: OutboundMessage, signal?: AbortSignal): Promise<SendResult> {
    const channelId = message.chat.id;
    if (!/^\d{1,20}$/.test(channelId)) {
      throw new GatewayError(
        'GW_ERR_DISCORD_CHAT_ID_INVALID',
        `chat id ${JSON.stringify(channelId.slice(0, 64))} is not a Discord channel id`,
        { details: { invalid_chat_id: true } },
      );
    }
    const reply = readReplyContext(message.reply);
    // UTF-16 units are never fewer than what Discord counts, so a chunk within it fits.
    const chunks = splitText(message.text, this.options.maxTextLength, utf16Length);
    const ids: string[] = [];
    const run = signal ?? new AbortController().signal;
    for (const [i, chunk] of chunks.entries()) {
      const nonce = chunkNonce(message.idempotency?.key, i);
      const body = createMessageBody({
        content: chunk,
        nonce,
        // Only the first chunk is the reply; the rest follow it.
        replyTo: i === 0 && reply !== null ? reply.messageId : null,
        allowedMentions: this.options.allowedMentions,
      });
      try {
        ids.push(await this.sendChunk(channelId, body, run));
      } catch (err) {
        const error = isGatewayError(err)
          ? err
          : new GatewayError('GW_ERR_DISCORD_SEND_FAILED', String(err), { cause: err });
        error.details.sent_ids = [...ids];
        error.details.chunks = chunks.length;
        throw error;
      }
    }
    return { ids };
  }

  private async sendChunk(channelId: string, body: string, signal: AbortSignal): Promise<string> {
    const { rest, maxAttempts, maxRetryDelayMs } = this.options;
    const log = this.options.log();
    let lastError: GatewayError | null = null;
    let maybeDelivered = false;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      this.refuseIfBanned(log);
      // Checked again after every wait: other sends may have taken the room meanwhile. No
      // await lies between the last check and the request taking its slot.
      for (;;) {
        const waitMs = rest.limits.waitMs(ROUTE_CREATE_MESSAGE, channelId);
        if (waitMs === 0) break;
        if (waitMs > maxRetryDelayMs) {
          throw new GatewayError(
            'GW_ERR_DISCORD_SEND_RATE_LIMITED',
            `rate limited for ${Math.round(waitMs)} ms, above send.max_retry_delay_ms`,
            { details: { retry_after_ms: Math.round(waitMs), attempt } },
          );
        }
        if (!(await sleep(waitMs, signal))) throw aborted();
      }
      let answer: CreateAnswer;
      try {
        answer = await rest.createMessage(channelId, body, signal);
      } catch (err) {
        if (err instanceof HttpFailureError && err.failure === 'aborted') throw aborted();
        const failure = err instanceof HttpFailureError ? err.failure : 'network';
        // The message may have been created: the retry carries the same nonce.
        maybeDelivered = true;
        lastError = new GatewayError(
          'GW_ERR_DISCORD_SEND_FAILED',
          `send ${failure}: ${(err as Error).message}`,
          { details: { failure, attempt } },
        );
        log.warn({ code: lastError.code, attempt, failure }, 'send attempt failed');
        if (attempt < maxAttempts) await this.pause(attempt, signal);
        continue;
      }
      const facts = { status: answer.status, platform_code: answer.code, attempt };
      if (answer.status >= 200 && answer.status < 300) {
        return sentMessageId(answer.body) ?? '';
      }
      if (answer.status === 401) {
        this.unauthorized = true;
        log.error(
          { code: 'GW_ERR_DISCORD_SEND_UNAUTHORIZED', ...facts },
          'Discord refused the bot token on a send: no more messages are sent',
        );
        throw new GatewayError(
          'GW_ERR_DISCORD_SEND_UNAUTHORIZED',
          `Discord refused the bot token (HTTP 401): ${answer.message}`,
          { details: facts },
        );
      }
      if (answer.status === 429) {
        lastError = new GatewayError(
          'GW_ERR_DISCORD_SEND_RATE_LIMITED',
          `send rate limited (${answer.global ? 'global' : (answer.scope ?? 'bucket')}), retry after ${answer.retryAfterMs ?? '?'} ms`,
          {
            details: {
              ...facts,
              retry_after_ms: answer.retryAfterMs,
              global: answer.global,
              scope: answer.scope,
            },
          },
        );
        log.warn({ code: lastError.code, ...lastError.details }, 'send rate limited');
        continue; // the limits hold the wait; the loop's head waits it out
      }
      if (answer.status >= 500) {
        maybeDelivered = true;
        lastError = new GatewayError(
          'GW_ERR_DISCORD_SEND_FAILED',
          `send failed with HTTP ${answer.status}`,
          { details: facts },
        );
        log.warn({ code: lastError.code, ...facts }, 'send attempt failed');
        if (attempt < maxAttempts) await this.pause(attempt, signal);
        continue;
      }
      if (answer.code === UNKNOWN_MESSAGE && maybeDelivered) {
        // enforce_nonce: the first attempt created the message and it was deleted since.
        log.info({ ...facts }, 'send: the retried nonce names a deleted message: delivered');
        return '';
      }
      const known = answer.code === null ? undefined : PERMANENT_CODES.get(answer.code);
      log.warn(
        { code: 'GW_ERR_DISCORD_SEND_REJECTED', ...facts },
        `Discord refused the message for good: ${known ?? answer.message}`,
      );
      throw new GatewayError(
        'GW_ERR_DISCORD_SEND_REJECTED',
        `Discord refused the message (HTTP ${answer.status}, code ${answer.code ?? 'none'}): ${known ?? answer.message}`,
        { details: facts },
      );
    }
    throw lastError ?? new GatewayError('GW_ERR_DISCORD_SEND_FAILED', 'send failed');
  }

  /**
   * No request after a 401, nor while the invalid requests of the last 10 minutes are at
   * send.invalid_request_limit: Discord bans the IP at 10,000 (logged loudly, once).
   */
  private refuseIfBanned(log: Logger): void {
    if (this.unauthorized) {
      throw new GatewayError(
        'GW_ERR_DISCORD_SEND_UNAUTHORIZED',
        'not sent: Discord refused the bot token earlier',
      );
    }
    const limits = this.options.rest.limits;
    const count = limits.invalidCount();
    if (count < limits.invalidRequestLimit) return;
    if (limits.firstPauseNotice()) {
      log.error(
        {
          code: 'GW_ERR_DISCORD_INVALID_REQUEST_LIMIT',
          invalid_requests: count,
          limit: limits.invalidRequestLimit,
        },
        'too many 401/403/429 answers in 10 minutes: sends paused before Discord bans the IP',
      );
    }
    throw new GatewayError(
      'GW_ERR_DISCORD_INVALID_REQUEST_LIMIT',
      `${count} invalid requests in 10 minutes: sends paused`,
      { details: { invalid_requests: count } },
    );
  }

  private async pause(attempt: number, signal: AbortSignal): Promise<void> {
    const { retryDelayMs, maxRetryDelayMs, jitter } = this.options;
    let delayMs = Math.min(maxRetryDelayMs, retryDelayMs * 2 ** (attempt - 1));
    if (jitter) delayMs *= 1 - 0.25 * this.random();
    if (!(await sleep(delayMs, signal))) throw aborted();
  }
}

function aborted(): GatewayError {
  return new GatewayError('GW_ERR_DISCORD_SEND_FAILED', 'send aborted', {
    details: { failure: 'aborted' },
  });
}
