/**
 * Delivering messages (fact sheet §7): the endpoint per chat type, passive replies with an
 * increasing `msg_seq` per `msg_id`, text split at a length limit, and retries within a
 * budget: rate limits honour the platform's hint, server errors back off, an expired token
 * is refreshed once.
 */
import type { Logger } from 'pino';
import type { OutboundMessage, SendResult } from '../../adapters/contract.js';
import { GatewayError, isGatewayError } from '../../errors.js';
import { sleep } from '../../util/backoff.js';
import { pathSegmentProblem } from '../../util/path-segment.js';
import { RecentMap } from '../../util/recent.js';
import { codePointLength, splitText } from '../../util/split-text.js';
import { readReplyContext } from './normalize.js';
import {
  SEND_CODE_ACTIONS,
  sendPath,
  sentMessageId,
  textMessageBody,
  type SendScene,
} from './protocol.js';
import { HttpFailureError, type QQRest, type SendAnswer } from './rest.js';
import { isAbort, type TokenSource } from './token.js';

/** msg_ids whose last msg_seq is remembered; replies come within minutes of the message. */
const MSG_SEQ_MEMORY = 10_000;
/**
 * msg_seq values set aside per reply of an idempotent send: reply `ordinal`, chunk `i` uses
 * `ordinal × 100 + i + 1`, the same in every process (a chunk beyond 100 takes a fresh seq).
 */
const SEQ_SLOTS = 100;

export interface SenderOptions {
  rest: QQRest;
  tokens: TokenSource;
  maxAttempts: number;
  maxTextLength: number;
  retryDelayMs: number;
  maxRetryDelayMs: number;
  jitter: boolean;
  log: () => Logger;
  random?: () => number;
}

type Verdict = 'ok' | 'auth' | 'dedup' | 'rate' | 'server' | 'rejected';

/**
 * Reads a send answer (fact sheet §7.4): a 401 or 429 status decides; otherwise the business
 * code's row in SEND_CODE_ACTIONS, and for a code without a row, the status.
 */
function classify(answer: SendAnswer): Verdict {
  const { status, code } = answer;
  if (status >= 200 && status < 300 && (sentMessageId(answer.body) !== null || !code)) return 'ok';
  const action = code === null ? undefined : SEND_CODE_ACTIONS.get(code);
  if (status === 401 || action === 'refresh') return 'auth';
  if (action === 'dedup') return 'dedup';
  if (status === 429) return 'rate';
  switch (action) {
    case 'rate':
      return 'rate';
    case 'retry':
      return 'server';
    case 'give_up':
      return 'rejected';
    case undefined:
      return status >= 500 ? 'server' : 'rejected';
  }
}

export class Sender {
  private readonly seqs = new RecentMap<string, number>(MSG_SEQ_MEMORY);
  private readonly random: () => number;

  constructor(private readonly options: SenderOptions) {
    this.random = options.random ?? Math.random;
  }

  /**
   * Delivers `message`, split into chunks. Resolves with one platform id per chunk (an empty
   * string when a retried chunk turned out to be delivered already: the platform deduplicated
   * it and does not say its id). Rejects with a GatewayError: GW_ERR_QQ_CHAT_ID_INVALID
   * (before any request), GW_ERR_QQ_SEND_REJECTED,
   * GW_ERR_QQ_SEND_RATE_LIMITED, GW_ERR_QQ_SEND_UNAUTHORIZED or GW_ERR_QQ_SEND_FAILED, whose
   * `details.sent_ids` lists the chunks delivered before the failure.
   */
  async send(message: OutboundMessage, signal?: AbortSignal): Promise<SendResult> {
    const scene: SendScene = message.chat.type;
    const problem = pathSegmentProblem(message.chat.id);
    if (problem !== null) {
      // Refused before any request: encoded or not, `..` would climb out of the endpoint.
      throw new GatewayError(
        'GW_ERR_QQ_CHAT_ID_INVALID',
        `chat id ${JSON.stringify(message.chat.id.slice(0, 64))} ${problem}: no QQ ${scene} chat has such an id`,
        { details: { chat_type: scene, invalid_chat_id: true } },
      );
    }
    const path = sendPath(scene, message.chat.id);
    const reply = readReplyContext(message.reply);
    // QQ counts characters (code points); clusters are never cut (src/util/split-text.ts).
    const chunks = splitText(message.text, this.options.maxTextLength, codePointLength);
    const ids: string[] = [];
    const ordinal = message.idempotency?.ordinal;
    for (const [i, chunk] of chunks.entries()) {
      // Idempotent: the same msg_id + msg_seq as any earlier attempt, in this process or a
      // previous one; the platform refuses the copy (40054005), which means delivered.
      const fixedSeq =
        reply !== null && ordinal !== undefined && i < SEQ_SLOTS
          ? ordinal * SEQ_SLOTS + i + 1
          : null;
      try {
        ids.push(
          await this.sendChunk(
            scene,
            path,
            chunk,
            reply,
            signal ?? new AbortController().signal,
            fixedSeq,
          ),
        );
      } catch (err) {
        const error = isGatewayError(err)
          ? err
          : new GatewayError('GW_ERR_QQ_SEND_FAILED', String(err), { cause: err });
        error.details.sent_ids = [...ids];
        error.details.chunks = chunks.length;
        throw error;
      }
    }
    return { ids };
  }

  /** The next msg_seq for a reply to `msgId`: 1, 2, 3... (unique per msg_id, §7.2). */
  nextSeq(msgId: string): number {
    const next = (this.seqs.get(msgId) ?? 0) + 1;
    this.seqs.set(msgId, next);
    return next;
  }

  private async sendChunk(
    scene: SendScene,
    path: string,
    content: string,
    reply: { msgId: string } | null,
    signal: AbortSignal,
    fixedSeq: number | null = null,
  ): Promise<string> {
    const { rest, tokens, maxAttempts, maxRetryDelayMs } = this.options;
    const log = this.options.log();
    let msgSeq = reply === null ? null : (fixedSeq ?? this.nextSeq(reply.msgId));
    // Set once an attempt with this msg_seq may have reached the platform (5xx, timeout): a
    // later 40054005 then means "already delivered", not "pick another seq".
    let maybeDelivered = false;
    let refreshed = false;
    let lastError: GatewayError | null = null;
    const where = { path_kind: scene, reply: reply !== null };
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      let token;
      try {
        token = await tokens.get(signal);
      } catch (err) {
        if (isAbort(err)) throw aborted();
        const cause = isGatewayError(err) ? err : null;
        lastError = new GatewayError(
          'GW_ERR_QQ_SEND_FAILED',
          `no access token: ${cause?.message ?? String(err)}`,
          {
            cause: err,
            details: { ...where, token_code: cause?.code ?? null },
          },
        );
        if (cause !== null && !cause.retryable) throw lastError;
        if (attempt < maxAttempts) await this.pause(attempt, null, signal);
        continue;
      }
      const body = textMessageBody(
        scene,
        content,
        reply === null || msgSeq === null ? null : { msgId: reply.msgId, msgSeq },
      );
      let answer: SendAnswer;
      try {
        answer = await rest.postMessage(path, body, token.value, signal);
      } catch (err) {
        if (isAbort(err)) throw aborted();
        const failure = err instanceof HttpFailureError ? err.failure : 'network';
        maybeDelivered = true;
        lastError = new GatewayError(
          'GW_ERR_QQ_SEND_FAILED',
          `send ${failure}: ${(err as Error).message}`,
          {
            details: { ...where, failure, attempt },
          },
        );
        log.warn({ code: lastError.code, attempt, failure }, 'send attempt failed');
        if (attempt < maxAttempts) await this.pause(attempt, null, signal);
        continue;
      }
      const facts = {
        ...where,
        status: answer.status,
        platform_code: answer.code,
        trace_id: answer.traceId,
        attempt,
      };
      const verdict = classify(answer);
      switch (verdict) {
        case 'ok':
          return sentMessageId(answer.body) ?? '';
        case 'auth':
          if (!refreshed) {
            // One refresh per send on an expired-token answer; it does not use up an attempt.
            refreshed = true;
            tokens.invalidate(token);
            log.info({ ...facts }, 'send: token refused, refreshing it once');
            attempt -= 1;
            continue;
          }
          throw new GatewayError(
            'GW_ERR_QQ_SEND_UNAUTHORIZED',
            `send refused as unauthorized after a token refresh: ${answer.message}`,
            { details: facts },
          );
        case 'dedup':
          if (maybeDelivered || fixedSeq !== null) {
            log.info({ ...facts }, 'send: retry deduplicated, the earlier attempt was delivered');
            return '';
          }
          // The seq was used before us (e.g. by a previous process): take the next one.
          msgSeq = reply === null ? null : this.nextSeq(reply.msgId);
          lastError = new GatewayError(
            'GW_ERR_QQ_SEND_REJECTED',
            `msg_seq already used: ${answer.message}`,
            {
              details: facts,
            },
          );
          continue;
        case 'rate': {
          const hint = answer.retryAfterMs;
          lastError = new GatewayError(
            'GW_ERR_QQ_SEND_RATE_LIMITED',
            `send rate limited (HTTP ${answer.status}, code ${answer.code ?? 'none'}): ${answer.message}`,
            { details: { ...facts, retry_after_ms: hint } },
          );
          log.warn({ code: lastError.code, ...facts, retry_after_ms: hint }, 'send rate limited');
          if (hint !== null && hint > maxRetryDelayMs) throw lastError;
          if (attempt < maxAttempts) await this.pause(attempt, hint, signal);
          continue;
        }
        case 'server':
          maybeDelivered = true;
          lastError = new GatewayError(
            'GW_ERR_QQ_SEND_FAILED',
            `send failed with HTTP ${answer.status}: ${answer.message}`,
            { details: facts },
          );
          log.warn({ code: lastError.code, ...facts }, 'send attempt failed');
          if (attempt < maxAttempts) await this.pause(attempt, answer.retryAfterMs, signal);
          continue;
        case 'rejected':
          throw new GatewayError(
            'GW_ERR_QQ_SEND_REJECTED',
            `the platform refused the message (HTTP ${answer.status}, code ${answer.code ?? 'none'}): ${answer.message}`,
            { details: facts },
          );
      }
    }
    throw lastError ?? new GatewayError('GW_ERR_QQ_SEND_FAILED', 'send failed');
  }

  /** Waits before the next attempt: the platform's hint, else a doubling, jittered delay. */
  private async pause(attempt: number, hintMs: number | null, signal: AbortSignal): Promise<void> {
    const { retryDelayMs, maxRetryDelayMs, jitter } = this.options;
    let delayMs = hintMs ?? Math.min(maxRetryDelayMs, retryDelayMs * 2 ** (attempt - 1));
    if (hintMs === null && jitter) delayMs *= 1 - 0.25 * this.random();
    if (!(await sleep(delayMs, signal))) throw aborted();
  }
}

function aborted(): GatewayError {
  return new GatewayError('GW_ERR_QQ_SEND_FAILED', 'send aborted', {
    details: { failure: 'aborted' },
  });
}
