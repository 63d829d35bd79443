import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { setTimeout as delay } from 'node:timers/promises';
import { GatewayError } from '../errors.js';
import { scrub } from '../util/scrub.js';
import './errors.js';

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface PostOptions {
  url: URL;
  body: Buffer;
  headers: Record<string, string>;
  /** Deadline of one attempt, from connect to the last byte of the response. */
  timeoutMs: number;
  maxResponseBytes: number;
  signal: AbortSignal;
}

export interface RetryOptions {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
}

/** The URL without credentials or query (which may hold a key), for logs and errors. */
export function safeUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

function cancelled(): GatewayError {
  return new GatewayError('GW_ERR_HANDLER_CANCELLED', 'handler cancelled: the gateway is stopping');
}

/**
 * One POST. Resolves with any status once the whole body is in; rejects with
 * `GW_ERR_HANDLER_TIMEOUT`, `GW_ERR_HANDLER_NETWORK`, `GW_ERR_HANDLER_RESPONSE_TOO_LARGE` or
 * `GW_ERR_HANDLER_CANCELLED`. No connection is pooled: nothing outlives the call.
 */
export function postOnce(options: PostOptions): Promise<HttpResponse> {
  const { url, signal } = options;
  const where = safeUrl(url);
  return new Promise<HttpResponse>((resolve, reject) => {
    if (signal.aborted) {
      reject(cancelled());
      return;
    }
    let done = false;
    const finish = (err: GatewayError | null, response?: HttpResponse): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (err) {
        req.destroy();
        reject(err);
      } else {
        resolve(response!);
      }
    };
    const onAbort = (): void => finish(cancelled());
    const timer = setTimeout(() => {
      finish(
        new GatewayError(
          'GW_ERR_HANDLER_TIMEOUT',
          `no complete answer from ${where} within ${options.timeoutMs} ms`,
          { details: { url: where, timeout_ms: options.timeoutMs } },
        ),
      );
    }, options.timeoutMs);
    const tooLarge = (): GatewayError =>
      new GatewayError(
        'GW_ERR_HANDLER_RESPONSE_TOO_LARGE',
        `answer from ${where} is larger than ${options.maxResponseBytes} bytes`,
        { details: { url: where, max_response_bytes: options.maxResponseBytes } },
      );
    const request = url.protocol === 'https:' ? https.request : http.request;
    const req = request(url, {
      method: 'POST',
      agent: false,
      headers: { ...options.headers, 'content-length': String(options.body.length) },
    });
    signal.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err: NodeJS.ErrnoException) => {
      finish(
        new GatewayError(
          'GW_ERR_HANDLER_NETWORK',
          `cannot reach ${where}: ${err.code ?? err.message}`,
          {
            cause: err,
            details: { url: where, errno: err.code ?? null },
          },
        ),
      );
    });
    req.on('response', (res) => {
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > options.maxResponseBytes) {
        finish(tooLarge());
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > options.maxResponseBytes) {
          finish(tooLarge());
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        finish(null, {
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
        });
      });
      res.on('error', (err) => {
        finish(
          new GatewayError('GW_ERR_HANDLER_NETWORK', `answer from ${where} broke off`, {
            cause: err,
            details: { url: where },
          }),
        );
      });
    });
    req.end(options.body);
  });
}

function retryAfterMs(headers: IncomingHttpHeaders): number | null {
  const value = Number(headers['retry-after']);
  return Number.isFinite(value) && value >= 0 ? value * 1000 : null;
}

/** The start of an error body, for the log. Scrubbed: servers echo the key they refused. */
function excerpt(body: Buffer): string {
  // Scrubbed before the cut, so a secret straddling the cut is still matched whole.
  const text = scrub(body.subarray(0, 4_096).toString('utf8'));
  return text.slice(0, 200).replace(/\s+/g, ' ').trim();
}

/**
 * POSTs with retries: network errors, 429 and 5xx are tried again after a jittered, capped,
 * doubling backoff until `maxAttempts` are spent. Timeouts are not retried (the endpoint may
 * still be acting on the request). Resolves with a 2xx response; rejects with
 * `GW_ERR_HANDLER_HTTP_STATUS` (details: `status`, `attempts`) for any other final status, or
 * with the last attempt's error.
 */
export async function postWithRetry(
  options: PostOptions & RetryOptions,
  onRetry?: (attempt: number, reason: string) => void,
): Promise<HttpResponse> {
  const where = safeUrl(options.url);
  for (let attempt = 1; ; attempt++) {
    let reason: string;
    let hintMs: number | null = null;
    try {
      const response = await postOnce(options);
      if (response.status >= 200 && response.status < 300) return response;
      const retryable = response.status === 429 || response.status >= 500;
      if (!retryable || attempt >= options.maxAttempts) {
        throw new GatewayError(
          'GW_ERR_HANDLER_HTTP_STATUS',
          `HTTP ${response.status} from ${where} (attempt ${attempt}/${options.maxAttempts})`,
          {
            details: {
              url: where,
              status: response.status,
              attempts: attempt,
              response_excerpt: excerpt(response.body),
            },
          },
        );
      }
      reason = `HTTP ${response.status}`;
      hintMs = retryAfterMs(response.headers);
    } catch (err) {
      if (!(err instanceof GatewayError) || err.code !== 'GW_ERR_HANDLER_NETWORK') throw err;
      if (attempt >= options.maxAttempts) throw err;
      reason = err.message;
    }
    const base = Math.min(options.retryBackoffMaxMs, options.retryBackoffMs * 2 ** (attempt - 1));
    let waitMs = base / 2 + (Math.random() * base) / 2;
    if (hintMs !== null) waitMs = Math.max(waitMs, Math.min(hintMs, options.retryBackoffMaxMs));
    onRetry?.(attempt, reason);
    try {
      await delay(waitMs, undefined, { signal: options.signal });
    } catch {
      throw cancelled();
    }
  }
}
