/**
 * HTTP calls of the QQ Bot adapter: the token endpoint, gateway discovery and message sends,
 * each bounded by a timeout from the config. node:http / node:https with keep-alive agents
 * owned by the client (global fetch cost about six times the CPU per send), closed with it.
 */
import type { Socket } from 'node:net';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { Secret } from '../../config/secret.js';
import { GatewayError } from '../../errors.js';
import { scrub } from '../../util/scrub.js';
import {
  ApiCode,
  TOKEN_REJECTION_CODES,
  apiErrorOf,
  authorization,
  parseGatewayInfo,
  parseTokenAnswer,
  retryAfterBodyMs,
  tokenRequestBody,
  type GatewayInfo,
} from './protocol.js';

const USER_AGENT = 'hermes-gateway (+qqbot adapter)';
/** Answers above this are refused: the platform's JSON answers are a few hundred bytes. */
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
  /** The platform's `X-Tps-trace-ID`, for the log. */
  traceId: string | null;
}

export interface HttpInit {
  method: string;
  headers: Record<string, string>;
  body?: string;
}

/**
 * The adapter's HTTP transport: one keep-alive agent per scheme, so a reply reuses a warm
 * connection. No redirect is followed (the platform's API does not redirect, and a redirect
 * must not carry the Authorization header elsewhere).
 */
export class HttpClient {
  private readonly httpAgent = new http.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS });
  private closed = false;

  /**
   * One HTTP exchange, body included, bounded by `timeoutMs`. Resolves with any status;
   * rejects with HttpFailureError (`timeout`, `network` — a body above MAX_RESPONSE_BYTES
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
        current.on('socket', (s) => {
          socket = s;
        });
        current.on('error', (err: NodeJS.ErrnoException) => {
          if (settled || current !== req) return;
          // A pooled socket the server closed while idle: the request never reached it, so
          // it goes once more on a fresh socket (the retry Node's docs recommend).
          if (retry && !answered && current.reusedSocket && err.code === 'ECONNRESET') {
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
            if (size > MAX_RESPONSE_BYTES) {
              finish(
                new HttpFailureError(
                  'network',
                  `answer body above ${MAX_RESPONSE_BYTES} bytes (HTTP ${res.statusCode ?? 0})`,
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
              traceId: headerValue(res.headers['x-tps-trace-id']),
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

export interface RestOptions {
  appId: string;
  apiBase: string;
  tokenUrl: string;
  restMs: number;
  tokenMs: number;
}

export interface AccessTokenGrant {
  accessToken: string;
  expiresInMs: number;
}

/** The answer to a message send; the caller classifies it (send.ts). */
export interface SendAnswer {
  status: number;
  body: unknown;
  /** Platform business code (`code`, else `err_code`), null when none. */
  code: number | null;
  message: string;
  /** From `Retry-After` or a `retry_after` body field; null when the platform gave none. */
  retryAfterMs: number | null;
  traceId: string | null;
}

/** The adapter's HTTP client. Every method takes a signal; none logs a secret or token. */
export class QQRest {
  private readonly http = new HttpClient();

  constructor(private readonly options: RestOptions) {}

  /** Closes the keep-alive pool (see HttpClient.close); the client stays usable, unpooled. */
  close(): void {
    this.http.close();
  }

  /**
   * Asks the token endpoint for an access token. Rejects with GW_ERR_QQ_CREDENTIALS_REJECTED
   * (kind `config`) when the platform refuses the credentials, GW_ERR_QQ_TOKEN_FAILED for
   * anything else, or HttpFailureError `aborted` on a stop request.
   */
  async fetchToken(secret: Secret, signal?: AbortSignal): Promise<AccessTokenGrant> {
    const { tokenUrl, tokenMs, appId } = this.options;
    let answer: HttpAnswer;
    try {
      answer = await this.http.request(
        tokenUrl,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': USER_AGENT },
          body: tokenRequestBody(appId, secret.reveal()),
        },
        tokenMs,
        signal,
      );
    } catch (err) {
      if (err instanceof HttpFailureError && err.failure === 'aborted') throw err;
      const failure = err instanceof HttpFailureError ? err.failure : 'network';
      throw new GatewayError(
        'GW_ERR_QQ_TOKEN_FAILED',
        `token endpoint: ${failure}: ${scrub((err as Error).message)}`,
        { details: { failure } },
      );
    }
    const parsed = parseTokenAnswer(answer.body);
    const trace = { status: answer.status, trace_id: answer.traceId };
    if (parsed.kind === 'token' && answer.status >= 200 && answer.status < 300) {
      return { accessToken: parsed.accessToken, expiresInMs: parsed.expiresInMs };
    }
    if (parsed.kind === 'error') {
      const text = scrub(parsed.message);
      if (parsed.code !== null && TOKEN_REJECTION_CODES.has(parsed.code)) {
        throw new GatewayError(
          'GW_ERR_QQ_CREDENTIALS_REJECTED',
          `the token endpoint rejected the credentials of app ${appId}: ${text} (code ${parsed.code})`,
          { details: { ...trace, platform_code: parsed.code, platform_message: text } },
        );
      }
      throw new GatewayError(
        'GW_ERR_QQ_TOKEN_FAILED',
        `token endpoint: HTTP ${answer.status}: ${text} (code ${parsed.code ?? 'none'})`,
        { details: { ...trace, platform_code: parsed.code, platform_message: text } },
      );
    }
    throw new GatewayError(
      'GW_ERR_QQ_TOKEN_FAILED',
      `token endpoint: HTTP ${answer.status} without a usable access_token`,
      { details: trace },
    );
  }

  /**
   * `GET /gateway/bot`: the WebSocket URL and the session start limit. Rejects with
   * GW_ERR_QQ_GATEWAY_FAILED (`details.auth` true when the token was refused), or
   * HttpFailureError `aborted`.
   */
  async gatewayBot(accessToken: Secret, signal?: AbortSignal): Promise<GatewayInfo> {
    const url = `${this.options.apiBase}/gateway/bot`;
    let answer: HttpAnswer;
    try {
      answer = await this.http.request(
        url,
        { method: 'GET', headers: this.headers(accessToken) },
        this.options.restMs,
        signal,
      );
    } catch (err) {
      if (err instanceof HttpFailureError && err.failure === 'aborted') throw err;
      const failure = err instanceof HttpFailureError ? err.failure : 'network';
      throw new GatewayError(
        'GW_ERR_QQ_GATEWAY_FAILED',
        `GET /gateway/bot: ${failure}: ${scrub((err as Error).message)}`,
        {
          details: { failure },
        },
      );
    }
    const { code, message: echoed } = apiErrorOf(answer.body);
    // A refusing endpoint may quote the `QQBot <token>` it received.
    const message = scrub(echoed);
    const trace = { status: answer.status, trace_id: answer.traceId, platform_code: code };
    if (answer.status === 401 || code === ApiCode.TokenExpired) {
      throw new GatewayError(
        'GW_ERR_QQ_GATEWAY_FAILED',
        `GET /gateway/bot: token refused: ${message}`,
        {
          details: { ...trace, auth: true },
        },
      );
    }
    const info = answer.status >= 200 && answer.status < 300 ? parseGatewayInfo(answer.body) : null;
    if (info === null) {
      throw new GatewayError(
        'GW_ERR_QQ_GATEWAY_FAILED',
        `GET /gateway/bot: HTTP ${answer.status}${message ? `: ${message}` : ''} without a usable url`,
        { details: trace },
      );
    }
    return info;
  }

  /** POSTs a message body to `path`. Resolves with any HTTP answer; rejects with HttpFailureError. */
  async postMessage(
    path: string,
    body: string,
    accessToken: Secret,
    signal?: AbortSignal,
  ): Promise<SendAnswer> {
    const answer = await this.http.request(
      `${this.options.apiBase}${path}`,
      { method: 'POST', headers: this.headers(accessToken), body },
      this.options.restMs,
      signal,
    );
    const { code, message } = apiErrorOf(answer.body);
    return {
      status: answer.status,
      body: answer.body,
      code,
      // A refusing endpoint may quote the `QQBot <token>` it received.
      message: scrub(message),
      retryAfterMs: retryAfterHeaderMs(answer.headers) ?? retryAfterBodyMs(answer.body),
      traceId: answer.traceId,
    };
  }

  private headers(accessToken: Secret): Record<string, string> {
    return {
      authorization: authorization(accessToken.reveal()),
      'content-type': 'application/json',
      // Sent by BOTGO, BOTPY, NONEBOT and SATORI; harmless where not required.
      'x-union-appid': this.options.appId,
      'user-agent': USER_AGENT,
    };
  }
}
