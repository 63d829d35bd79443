/**
 * HTTP calls of the QQ Bot adapter: the token endpoint, gateway discovery and message sends,
 * each bounded by a timeout from the config, over the shared keep-alive client (src/net/http.ts).
 */
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

import {
  HttpClient,
  HttpFailureError,
  retryAfterHeaderMs,
  type HttpAnswer,
} from '../../net/http.js';

export {
  HttpClient,
  HttpFailureError,
  MAX_RESPONSE_BYTES,
  retryAfterHeaderMs,
  type HttpAnswer,
  type HttpFailure,
  type HttpInit,
} from '../../net/http.js';

const USER_AGENT = 'hermes-gateway (+qqbot adapter)';

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
  private readonly http = new HttpClient({ traceHeader: 'x-tps-trace-id' });

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
