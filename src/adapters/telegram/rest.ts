/**
 * HTTP calls of the Telegram adapter: one JSON POST per Bot API method over the shared
 * keep-alive client, bounded by a timeout and a signal. The token sits in the URL path, so
 * every text that leaves this file (error messages, logged failures) is scrubbed of it.
 */
import type { Secret } from '../../config/secret.js';
import { HttpClient, HttpFailureError } from '../../net/http.js';
import { methodUrl, NOT_IDEMPOTENT_METHODS, parseEnvelope, type ApiReply } from './protocol.js';

const USER_AGENT = 'hermes-gateway (+telegram adapter)';
/** getUpdates answers up to 100 updates of up to 4096 characters each (plus captions). */
const MAX_RESPONSE_BYTES = 16 << 20;
/** Errors that mean the request never left this host: safe to send again. */
const NOT_SENT_ERRNOS = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/** A call that got no usable envelope. */
export interface CallFailure {
  kind: 'failure';
  /** `timeout`: no answer in time; `network`: reset, refused, DNS; `not_json`: an answer that is not the envelope. */
  failure: 'timeout' | 'network' | 'not_json';
  /** HTTP status of a non-envelope answer; null without an answer. */
  status: number | null;
  /** Scrubbed of the token. */
  message: string;
  /** False only when the request certainly never reached the server (refused, DNS). */
  maybeSent: boolean;
}

export type CallOutcome = { kind: 'reply'; status: number; reply: ApiReply } | CallFailure;

export class TelegramRest {
  private readonly http = new HttpClient({ maxResponseBytes: MAX_RESPONSE_BYTES });

  constructor(
    private readonly apiBase: string,
    private readonly token: Secret,
  ) {}

  /**
   * Calls `method` with `params` as JSON. Resolves with the envelope (any status) or a
   * CallFailure; rejects only with HttpFailureError `aborted` when `signal` aborted.
   */
  async call(
    method: string,
    params: Record<string, unknown>,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<CallOutcome> {
    let answer;
    try {
      answer = await this.http.request(
        methodUrl(this.apiBase, this.token.reveal(), method),
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': USER_AGENT },
          body: JSON.stringify(params),
          idempotent: !NOT_IDEMPOTENT_METHODS.has(method),
        },
        timeoutMs,
        signal,
      );
    } catch (err) {
      if (err instanceof HttpFailureError && err.failure === 'aborted') throw err;
      const failure = err instanceof HttpFailureError ? err.failure : 'network';
      const errno = (err as { cause?: { code?: unknown } }).cause?.code;
      return {
        kind: 'failure',
        failure: failure === 'timeout' ? 'timeout' : 'network',
        status: null,
        message: this.scrub(`${method}: ${failure}: ${(err as Error).message}`),
        maybeSent: !(typeof errno === 'string' && NOT_SENT_ERRNOS.has(errno)),
      };
    }
    const reply = parseEnvelope(answer.body);
    if (reply === null) {
      return {
        kind: 'failure',
        failure: 'not_json',
        status: answer.status,
        message: `${method}: HTTP ${answer.status} without a Bot API answer`,
        maybeSent: true,
      };
    }
    if (!reply.ok) reply.description = this.scrub(reply.description);
    return { kind: 'reply', status: answer.status, reply };
  }

  /** Removes the token (and its secret half alone) from text that came from outside. */
  scrub(text: string): string {
    return scrubToken(text, this.token);
  }

  /** Closes the keep-alive pool. */
  close(): void {
    this.http.close();
  }
}

/** Replaces the token, and its secret half, wherever it appears in `text`. */
export function scrubToken(text: string, token: Secret): string {
  const value = token.reveal();
  const secretHalf = value.slice(value.indexOf(':') + 1);
  let out = value === '' ? text : text.split(value).join('[redacted]');
  if (secretHalf.length >= 8) out = out.split(secretHalf).join('[redacted]');
  return out;
}

export function isAbort(err: unknown): boolean {
  return err instanceof HttpFailureError && err.failure === 'aborted';
}
