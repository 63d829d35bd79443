/**
 * A small HTTP client for platform REST calls: node:http / node:https with keep-alive agents
 * owned by the client (global fetch cost about six times the CPU per call), every exchange
 * bounded by a timeout and a signal, answers bounded in size, closed with its owner. Shared by
 * the QQ and Telegram adapters.
 */
import type { Socket } from 'node:net';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';

/** Answers above this are refused unless the client is built with another bound. */
export const MAX_RESPONSE_BYTES = 1 << 20;
/**
 * An idle pooled socket is closed after this, before a server's usual 5 s keep-alive ends
 * it under a request (a shorter `Keep-Alive: timeout=` hint from the server wins).
 */
const IDLE_SOCKET_MS = 4_000;

/** Why an HTTP exchange produced no answer. */
export type HttpFailure = 'timeout' | 'network' | 'aborted';

/** An HTTP exchange without an answer; `failure` tells a timeout from a stop request. */
export class HttpFailureError extends Error {
  constructor(
    readonly failure: HttpFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'HttpFailureError';
  }
}

export interface HttpAnswer {
  status: number;
  /** Parsed JSON body; undefined when the body is empty or not JSON. */
  body: unknown;
  headers: IncomingHttpHeaders;
  /** The value of the client's `traceHeader` (QQ: `X-Tps-trace-ID`), for the log. */
  traceId: string | null;
}

export interface HttpInit {
  method: string;
  headers: Record<string, string>;
  body?: string;
  /**
   * False for a request that must not reach the server twice (a Telegram sendMessage: no
   * idempotency key). Such a request is sent again after a reset of a reused keep-alive
   * socket only if the reset came before the whole request was handed to the socket; a
   * reset after that may hide a request the server already acted on, so it is a `network`
   * failure for the caller to judge. Default true (a GET, or a send the platform
   * deduplicates, like QQ's msg_seq).
   */
  idempotent?: boolean;
}

/**
 * The adapter's HTTP transport: one keep-alive agent per scheme, so a reply reuses a warm
 * connection. No redirect is followed (the platform's API does not redirect, and a redirect
 * must not carry the Authorization header elsewhere).
 */
export interface HttpClientOptions {
  /** Largest answer body accepted (default MAX_RESPONSE_BYTES). */
  maxResponseBytes?: number;
  /** A response header whose value is reported as `traceId` (lower case). */
  traceHeader?: string;
}

export class HttpClient {
  private readonly maxResponseBytes: number;
  private readonly traceHeader: string | null;
  private readonly httpAgent = new http.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS });
  private closed = false;

  constructor(options: HttpClientOptions = {}) {
    this.maxResponseBytes = options.maxResponseBytes ?? MAX_RESPONSE_BYTES;
    this.traceHeader = options.traceHeader ?? null;
  }

  /**
   * One HTTP exchange, body included, bounded by `timeoutMs`. Resolves with any status;
   * rejects with HttpFailureError (`timeout`, `network` — a body above maxResponseBytes
   * included — or `aborted` when `signal` aborted).
   */
  request(
    url: string,
    init: HttpInit,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<HttpAnswer> {
    return new Promise<HttpAnswer>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new HttpFailureError('aborted', 'request aborted'));
        return;
      }
      let target: URL;
      try {
        target = new URL(url);
        if (target.protocol !== 'http:' && target.protocol !== 'https:') {
          throw new TypeError(`unsupported protocol ${target.protocol}`);
        }
      } catch (err) {
        reject(
          new HttpFailureError('network', `invalid URL ${url}: ${String(err)}`, { cause: err }),
        );
        return;
      }
      const secure = target.protocol === 'https:';
      const body = init.body === undefined ? undefined : Buffer.from(init.body, 'utf8');
      const headers =
        body === undefined
          ? init.headers
          : { ...init.headers, 'content-length': String(body.length) };
      let req: http.ClientRequest | null = null;
      let socket: Socket | null = null;
      let settled = false;
      const finish = (err: HttpFailureError | null, answer?: HttpAnswer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err !== null) {
          req?.destroy();
          reject(err);
          return;
        }
        // Closed while this exchange ran: its socket must not stay in the pool.
        if (this.closed) socket?.destroy();
        resolve(answer!);
      };
      const timer = setTimeout(() => {
        finish(new HttpFailureError('timeout', `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = (): void => finish(new HttpFailureError('aborted', 'request aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });

      const send = (retry: boolean): void => {
        const agent = this.closed ? false : secure ? this.httpsAgent : this.httpAgent;
        const current = (secure ? https : http).request(target, {
          method: init.method,
          headers,
          agent,
        });
        req = current;
        let answered = false;
        // 'finish': the whole request was handed to the socket, so the server may have it.
        let written = false;
        current.on('finish', () => {
          written = true;
        });
        current.on('socket', (s) => {
          socket = s;
        });
        current.on('error', (err: NodeJS.ErrnoException) => {
          if (settled || current !== req) return;
          // A pooled socket the server closed while idle: the request most likely never
          // reached it, so it goes once more on a fresh socket (the retry Node's docs
          // recommend for idempotent requests). A non-idempotent request already written may
          // have been acted on: resending it blindly could post it twice.
          if (
            retry &&
            !answered &&
            current.reusedSocket &&
            err.code === 'ECONNRESET' &&
            (init.idempotent !== false || !written)
          ) {
            send(false);
            return;
          }
          finish(new HttpFailureError('network', err.message, { cause: err }));
        });
        current.on('response', (res) => {
          answered = true;
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > this.maxResponseBytes) {
              finish(
                new HttpFailureError(
                  'network',
                  `answer body above ${this.maxResponseBytes} bytes (HTTP ${res.statusCode ?? 0})`,
                ),
              );
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => {
            finish(null, {
              status: res.statusCode ?? 0,
              body: parseJson(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)),
              headers: res.headers,
              traceId:
                this.traceHeader === null ? null : headerValue(res.headers[this.traceHeader]),
            });
          });
          res.on('error', (err) => {
            finish(
              new HttpFailureError('network', `answer broke off: ${err.message}`, { cause: err }),
            );
          });
          res.on('close', () => {
            if (!res.complete) finish(new HttpFailureError('network', 'answer broke off'));
          });
        });
        current.end(body);
      };
      send(true);
    });
  }

  /**
   * Ends the pool: idle sockets are destroyed now, a socket still in use once its exchange
   * ends, and any later request goes without keep-alive. Nothing is left open.
   */
  close(): void {
    this.closed = true;
    for (const agent of [this.httpAgent, this.httpsAgent]) {
      for (const sockets of Object.values(agent.freeSockets)) {
        for (const s of sockets ?? []) s.destroy();
      }
    }
  }
}

/** The body as JSON; undefined when it is empty or not JSON (a leading BOM is skipped). */
function parseJson(raw: Buffer): unknown {
  let text = raw.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function headerValue(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  return Array.isArray(value) ? (value[0] ?? null) : value;
}

/** `Retry-After` (seconds or an HTTP date) in ms; null when absent or unreadable. */
export function retryAfterHeaderMs(headers: IncomingHttpHeaders, now = Date.now()): number | null {
  const value = headerValue(headers['retry-after']);
  if (value === null || value.trim() === '') return null;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}
