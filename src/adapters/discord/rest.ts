/**
 * HTTP calls of the Discord adapter (`GET /gateway/bot`, `POST /channels/{id}/messages`) over
 * the shared keep-alive client (src/net/http.ts), and the REST rate limits learnt from the
 * answers: per bucket and channel from the `X-RateLimit-*` headers, the global limit, 429
 * `retry_after`, and the count of invalid requests that gets an IP banned
 * (https://discord.com/developers/docs/topics/rate-limits).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Secret } from '../../config/secret.js';
import { GatewayError } from '../../errors.js';
import {
  HttpClient,
  HttpFailureError,
  retryAfterHeaderMs,
  type HttpAnswer,
} from '../../net/http.js';
import { scrub } from '../../util/scrub.js';
import { WindowPacer } from '../../util/window-pacer.js';
import { apiErrorOf, parseGatewayInfo, rateLimitBody, type GatewayInfo } from './protocol.js';

/** Discord requires a `DiscordBot (url, version)` User-Agent; others may be blocked (40333). */
const USER_AGENT = 'DiscordBot (https://github.com/hermes-gateway/hermes-gateway, 1)';
/** The window of the invalid-request limit (10,000 per 10 minutes per IP). */
const INVALID_WINDOW_MS = 10 * 60_000;
/** Added to a bucket's reset: Discord's clock and ours are not the same clock. */
const RESET_SLACK_MS = 50;

export interface RestOptions {
  apiBase: string;
  token: Secret;
  restMs: number;
  globalPerSecond: number;
  invalidRequestLimit: number;
}

/** A message-create answer; the sender classifies it (send.ts). */
export interface CreateAnswer {
  status: number;
  body: unknown;
  code: number | null;
  message: string;
  /** For a 429: how long to wait, and whether the whole bot is limited. */
  retryAfterMs: number | null;
  global: boolean;
  scope: string | null;
}

interface BucketState {
  remaining: number;
  resetAt: number;
}

/** What the REST limits know; `waitMs` says how long a request on a route must wait. */
export class RateLimits {
  /** Route template → bucket hash, learnt from `X-RateLimit-Bucket`. */
  private readonly bucketOf = new Map<string, string>();
  /** `<bucket or route>:<major id>` → what the last answer said. */
  private readonly buckets = new Map<string, BucketState>();
  private readonly global: WindowPacer;
  private globalUntil = 0;
  private readonly invalid: number[] = [];
  /** Whether the invalid-request pause was logged in this window (logged once). */
  private invalidLogged = false;

  constructor(
    globalPerSecond: number,
    readonly invalidRequestLimit: number,
    private readonly now: () => number = Date.now,
  ) {
    this.global = new WindowPacer(globalPerSecond, 1_000 + RESET_SLACK_MS, now);
  }

  private key(route: string, major: string): string {
    return `${this.bucketOf.get(route) ?? route}:${major}`;
  }

  /** Milliseconds before a request on `route` for `major` may go (0: now). */
  waitMs(route: string, major: string): number {
    const now = this.now();
    let wait = Math.max(0, this.globalUntil - now, this.global.waitMs());
    const state = this.buckets.get(this.key(route, major));
    if (state !== undefined && state.remaining <= 0 && state.resetAt > now) {
      wait = Math.max(wait, state.resetAt - now);
    }
    return wait;
  }

  /** Records that a request goes now (global pacing, and the bucket's remaining). */
  take(route: string, major: string): void {
    this.global.tryTake();
    const state = this.buckets.get(this.key(route, major));
    if (state !== undefined && state.resetAt > this.now()) state.remaining -= 1;
  }

  /** Invalid requests (401, 403, 429 not `shared`) in the last 10 minutes. */
  invalidCount(): number {
    const since = this.now() - INVALID_WINDOW_MS;
    while (this.invalid.length > 0 && this.invalid[0]! <= since) this.invalid.shift();
    if (this.invalid.length < this.invalidRequestLimit) this.invalidLogged = false;
    return this.invalid.length;
  }

  /** True once when the pause begins (the caller logs it loudly), then false. */
  firstPauseNotice(): boolean {
    if (this.invalidLogged) return false;
    this.invalidLogged = true;
    return true;
  }

  /** Learns from an answer's headers and status. */
  learn(
    route: string,
    major: string,
    status: number,
    headers: IncomingHttpHeaders,
    body: unknown,
  ): {
    retryAfterMs: number | null;
    global: boolean;
    scope: string | null;
  } {
    const now = this.now();
    const bucket = header(headers, 'x-ratelimit-bucket');
    if (bucket !== null) this.bucketOf.set(route, bucket);
    const remaining = Number(header(headers, 'x-ratelimit-remaining') ?? NaN);
    const resetAfter = Number(header(headers, 'x-ratelimit-reset-after') ?? NaN);
    if (Number.isFinite(remaining) && Number.isFinite(resetAfter)) {
      this.buckets.set(this.key(route, major), {
        remaining,
        resetAt: now + resetAfter * 1000 + RESET_SLACK_MS,
      });
    }
    const scope = header(headers, 'x-ratelimit-scope');
    if (status === 401 || status === 403 || (status === 429 && scope !== 'shared')) {
      this.invalid.push(now);
    }
    if (status !== 429) return { retryAfterMs: null, global: false, scope };
    const limited = rateLimitBody(body);
    const retryAfterMs = limited.retryAfterMs ?? retryAfterHeaderMs(headers, now);
    const global = limited.global || header(headers, 'x-ratelimit-global') !== null;
    // A 429 without a hint (a Cloudflare ban answers HTML): cool down for a minute.
    const waitMs = retryAfterMs ?? 60_000;
    if (global) this.globalUntil = Math.max(this.globalUntil, now + waitMs);
    else this.buckets.set(this.key(route, major), { remaining: 0, resetAt: now + waitMs });
    return { retryAfterMs: waitMs, global, scope };
  }
}

export class DiscordRest {
  private readonly http = new HttpClient();
  readonly limits: RateLimits;

  constructor(private readonly options: RestOptions) {
    this.limits = new RateLimits(options.globalPerSecond, options.invalidRequestLimit);
  }

  close(): void {
    this.http.close();
  }

  private headers(): Record<string, string> {
    return {
      authorization: `Bot ${this.options.token.reveal()}`,
      'user-agent': USER_AGENT,
      'content-type': 'application/json',
    };
  }

  /**
   * `GET /gateway/bot`: the URL and the session start limit. Rejects with
   * GW_ERR_DISCORD_UNAUTHORIZED (exit 78) on 401, GW_ERR_DISCORD_GATEWAY_FAILED otherwise, or
   * HttpFailureError `aborted` on a stop request.
   */
  async gatewayBot(signal?: AbortSignal): Promise<GatewayInfo> {
    let answer: HttpAnswer;
    try {
      answer = await this.http.request(
        `${this.options.apiBase}/gateway/bot`,
        { method: 'GET', headers: this.headers() },
        this.options.restMs,
        signal,
      );
    } catch (err) {
      if (err instanceof HttpFailureError && err.failure === 'aborted') throw err;
      const failure = err instanceof HttpFailureError ? err.failure : 'network';
      throw new GatewayError(
        'GW_ERR_DISCORD_GATEWAY_FAILED',
        `GET /gateway/bot: ${failure}: ${scrub((err as Error).message)}`,
        { details: { failure } },
      );
    }
    const { code, message } = apiErrorOf(answer.body);
    if (answer.status === 401) {
      throw new GatewayError(
        'GW_ERR_DISCORD_UNAUTHORIZED',
        `Discord refused the bot token (HTTP 401${code === null ? '' : `, code ${code}`}): copy the token again from the Bot page of the Developer Portal`,
        { details: { status: 401, platform_code: code } },
      );
    }
    const info = answer.status === 200 ? parseGatewayInfo(answer.body) : null;
    if (info === null) {
      const retryAfterMs = answer.status === 429 ? retryAfterHeaderMs(answer.headers) : null;
      throw new GatewayError(
        'GW_ERR_DISCORD_GATEWAY_FAILED',
        `GET /gateway/bot: HTTP ${answer.status}${message === '' ? '' : `: ${scrub(message)}`}`,
        { details: { status: answer.status, platform_code: code, retry_after_ms: retryAfterMs } },
      );
    }
    return info;
  }

  /**
   * `POST /channels/{id}/messages` with a prepared body. Resolves with any HTTP answer (the
   * limits learn from it); rejects with HttpFailureError when there is none.
   */
  async createMessage(channelId: string, body: string, signal: AbortSignal): Promise<CreateAnswer> {
    const route = ROUTE_CREATE_MESSAGE;
    this.limits.take(route, channelId);
    const answer = await this.http.request(
      `${this.options.apiBase}/channels/${channelId}/messages`,
      { method: 'POST', headers: this.headers(), body },
      this.options.restMs,
      signal,
    );
    const learnt = this.limits.learn(route, channelId, answer.status, answer.headers, answer.body);
    const { code, message } = apiErrorOf(answer.body);
    return {
      status: answer.status,
      body: answer.body,
      code,
      message: scrub(message),
      retryAfterMs: learnt.retryAfterMs,
      global: learnt.global,
      scope: learnt.scope,
    };
  }
}

/** The route template of message creation; the channel id is its major parameter. */
export const ROUTE_CREATE_MESSAGE = 'POST /channels/:channel/messages';

function header(headers: IncomingHttpHeaders, name: string): string | null {
  const value = headers[name];
  if (value === undefined) return null;
  return Array.isArray(value) ? (value[0] ?? null) : value;
}
