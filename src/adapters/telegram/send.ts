/**
 * Delivering messages (fact sheet §6-§8): sendMessage as plain text (no parse_mode, so user
 * text can never break entity parsing), the reply and forum topic kept, text split at the
 * length limit, a per-chat pacer so a burst queues instead of earning 429s, and one action per
 * failure: 400/403 fail the message for good, 429 waits retry_after (capped), 5xx and refused
 * connections retry, a timeout or reset after sending is "uncertain" and never resent (no
 * idempotency key), a migrated group is resent to its new id once.
 */
import type { Logger } from 'pino';
import type { OutboundMessage, SendResult } from '../../adapters/contract.js';
import { GatewayError } from '../../errors.js';
import { sleep } from '../../util/backoff.js';
import { RecentMap } from '../../util/recent.js';
import { splitText, utf16Length } from '../../util/split-text.js';
import { readReplyContext } from './normalize.js';
import { sendVerdictFor, sentMessageId } from './protocol.js';
import { isAbort, type TelegramRest } from './rest.js';

/** Chats whose pacing slot or migration is remembered. */
const CHAT_MEMORY = 10_000;

/**
 * Paces sends: each chat gets a slot at least its interval after the previous one, and every
 * send waits for a global slot when its turn comes (so a chat paused for minutes never holds
 * back the others). A 429 pushes that chat's next slot out by retry_after.
 */
export class SendPacer {
  private readonly nextAt = new RecentMap<string, number>(CHAT_MEMORY);
  private globalNextAt = 0;

  constructor(private readonly globalIntervalMs: number) {}

  /** Waits for `chat`'s next slot; false when `signal` aborted first. */
  async wait(chat: string, intervalMs: number, signal: AbortSignal): Promise<boolean> {
    const now = Date.now();
    const at = Math.max(now, this.nextAt.get(chat) ?? 0);
    this.nextAt.set(chat, at + intervalMs);
    if (at > now && !(await sleep(at - now, signal))) return false;
    const t = Date.now();
    const globalAt = Math.max(t, this.globalNextAt);
    this.globalNextAt = globalAt + this.globalIntervalMs;
    return globalAt <= t || sleep(globalAt - t, signal);
  }

  /** Holds `chat` for `ms` (a 429's retry_after). */
  pause(chat: string, ms: number): void {
    this.nextAt.set(chat, Math.max(this.nextAt.get(chat) ?? 0, Date.now() + ms));
  }
}

export interface SenderOptions {
  rest: TelegramRest;
  restMs: number;
  maxAttempts: number;
  maxTextLength: number;
  retryDelayMs: number;
  maxRetryAfterMs: number;
  privateIntervalMs: number;
  groupIntervalMs: number;
  globalIntervalMs: number;
  log: () => Logger;
}

export class Sender {
  private readonly pacer: SendPacer;
  /** Old chat id → new chat id after a group became a supergroup. */
  private readonly migrated = new RecentMap<string, number>(CHAT_MEMORY);

  constructor(private readonly options: SenderOptions) {
    this.pacer = new SendPacer(options.globalIntervalMs);
  }

  /**
   * Delivers `message`, split into chunks. Resolves with one message id per chunk. Rejects with
   * GW_ERR_TELEGRAM_SEND_REJECTED (400/403: never retried), GW_ERR_TELEGRAM_SEND_RATE_LIMITED,
   * GW_ERR_TELEGRAM_SEND_UNCERTAIN (may have been delivered: not resent) or
   * GW_ERR_TELEGRAM_SEND_FAILED; `details.sent_ids` lists the chunks delivered before.
   */
  async send(message: OutboundMessage, signal?: AbortSignal): Promise<SendResult> {
    const reply = readReplyContext(message.reply);
    const target = reply?.chat_id ?? chatIdOf(message.chat.id);
    const isPrivate = reply === null ? message.chat.type === 'c2c' : reply.chat_type === 'private';
    // The limit counts UTF-16 units (stricter than the server's code points); chunks end
    // between grapheme clusters, so neither a surrogate pair nor an emoji sequence is cut.
    const chunks = splitText(message.text, this.options.maxTextLength, utf16Length);
    const ids: string[] = [];
    const stop = signal ?? new AbortController().signal;
    for (const [i, text] of chunks.entries()) {
      const params: Record<string, unknown> = { text };
      if (reply?.message_thread_id !== undefined)
        params.message_thread_id = reply.message_thread_id;
      // The reply goes on the first chunk only; if its target is gone, send anyway (§7).
      if (i === 0 && reply?.message_id !== undefined) {
        params.reply_parameters = {
          message_id: reply.message_id,
          allow_sending_without_reply: true,
        };
      }
      try {
        ids.push(await this.sendChunk(target, isPrivate, params, stop));
      } catch (err) {
        const error =
          err instanceof GatewayError
            ? err
            : new GatewayError('GW_ERR_TELEGRAM_SEND_FAILED', String(err), { cause: err });
        error.details.sent_ids = [...ids];
        error.details.chunks = chunks.length;
        throw error;
      }
    }
    return { ids };
  }

  private async sendChunk(
    original: number | string,
    isPrivate: boolean,
    params: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<string> {
    const { rest, restMs, maxAttempts, maxRetryAfterMs, retryDelayMs } = this.options;
    const log = this.options.log();
    let chatId: number | string = this.migrated.get(String(original)) ?? original;
    let migratedOnce = false;
    let lastError: GatewayError | null = null;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const key = String(chatId);
      const interval = isPrivate ? this.options.privateIntervalMs : this.options.groupIntervalMs;
      if (!(await this.pacer.wait(key, interval, signal))) throw aborted();
      let outcome;
      try {
        outcome = await rest.call('sendMessage', { chat_id: chatId, ...params }, restMs, signal);
      } catch (err) {
        if (isAbort(err)) throw aborted();
        throw err;
      }
      if (outcome.kind === 'failure') {
        const facts = { failure: outcome.failure, status: outcome.status, attempt };
        const serverAnswered = outcome.failure === 'not_json' && (outcome.status ?? 0) >= 500;
        if (!serverAnswered && outcome.maybeSent) {
          // No idempotency key: a resend after a timeout or a reset may deliver it twice.
          throw new GatewayError(
            'GW_ERR_TELEGRAM_SEND_UNCERTAIN',
            `delivery uncertain, not resent: ${outcome.message}`,
            { details: facts },
          );
        }
        lastError = new GatewayError('GW_ERR_TELEGRAM_SEND_FAILED', outcome.message, {
          details: facts,
        });
        log.warn({ code: lastError.code, ...facts }, 'send attempt failed');
        if (attempt < maxAttempts && !(await sleep(retryDelayMs * 2 ** (attempt - 1), signal))) {
          throw aborted();
        }
        continue;
      }
      const { reply } = outcome;
      if (reply.ok) return String(sentMessageId(reply.result) ?? '');
      const facts = { error_code: reply.errorCode, attempt };
      switch (sendVerdictFor(reply)) {
        case 'migrated': {
          const next = reply.migrateToChatId!;
          if (migratedOnce) {
            throw new GatewayError(
              'GW_ERR_TELEGRAM_SEND_REJECTED',
              `chat migrated twice: ${reply.description}`,
              {
                details: facts,
              },
            );
          }
          migratedOnce = true;
          log.warn(
            {
              code: 'GW_ERR_TELEGRAM_SEND_REJECTED',
              ...facts,
              chat_id: chatId,
              migrate_to_chat_id: next,
            },
            `chat ${chatId} became supergroup ${next}: resending there`,
          );
          this.migrated.set(String(original), next);
          chatId = next;
          attempt -= 1;
          continue;
        }
        case 'rate_limited': {
          const waitMs = (reply.retryAfterS ?? 1) * 1000;
          lastError = new GatewayError(
            'GW_ERR_TELEGRAM_SEND_RATE_LIMITED',
            `send rate limited: ${reply.description}`,
            { details: { ...facts, retry_after_ms: waitMs } },
          );
          log.warn({ code: lastError.code, ...facts, retry_after_ms: waitMs }, 'send rate limited');
          this.pacer.pause(key, waitMs);
          if (waitMs > maxRetryAfterMs) throw lastError;
          continue;
        }
        case 'server':
          lastError = new GatewayError(
            'GW_ERR_TELEGRAM_SEND_FAILED',
            `send failed: ${reply.description}`,
            {
              details: facts,
            },
          );
          log.warn({ code: lastError.code, ...facts }, 'send attempt failed');
          if (attempt < maxAttempts && !(await sleep(retryDelayMs * 2 ** (attempt - 1), signal))) {
            throw aborted();
          }
          continue;
        case 'unauthorized':
        case 'rejected': {
          const error = new GatewayError(
            'GW_ERR_TELEGRAM_SEND_REJECTED',
            `the platform refused the message: ${reply.description}`,
            { details: facts },
          );
          log.warn({ code: error.code, ...facts }, `message refused for good (${reply.errorCode})`);
          throw error;
        }
      }
    }
    throw lastError ?? new GatewayError('GW_ERR_TELEGRAM_SEND_FAILED', 'send failed');
  }
}

/** A numeric chat id as a number (ids fit in 52 bits), else the `@channel` name as is. */
function chatIdOf(id: string): number | string {
  return /^-?\d+$/.test(id) ? Number(id) : id;
}

function aborted(): GatewayError {
  return new GatewayError('GW_ERR_TELEGRAM_SEND_FAILED', 'send aborted', {
    details: { failure: 'aborted' },
  });
}
