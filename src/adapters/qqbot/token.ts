/**
 * The access token (fact sheet §1.1): fetched on demand with singleflight, refreshed ahead
 * of expiry by a background loop the adapter hands to `ctx.track`, and dropped on an
 * expired-token answer so the next user fetches a new one.
 */
import type { Logger } from 'pino';
import { Secret } from '../../config/secret.js';
import { toGatewayError } from '../../errors.js';
import { sleep } from '../../util/backoff.js';
import { HttpFailureError, type QQRest } from './rest.js';

/**
 * A token the platform handed out twice in a row stays in use this long before it is asked
 * for again: before its last 60 s the platform returns the same token, so asking again at
 * once would only spin.
 */
const MIN_REFETCH_MS = 1_000;
/** A replaced token is still scrubbed from outside text this long after its expiry. */
const RETIRED_SCRUB_MS = 10 * 60_000;
/** Longest pause between attempts of a failing background refresh. */
const MAX_REFRESH_RETRY_MS = 30_000;

export interface AccessToken {
  readonly value: Secret;
  /** Epoch ms at which the platform stops accepting it. */
  readonly expiresAt: number;
  /** Epoch ms from which it is replaced (expiry minus the configured margin, jittered). */
  readonly refreshAt: number;
  readonly fetchedAt: number;
}

export interface TokenSourceOptions {
  rest: QQRest;
  secret: Secret;
  marginMs: number;
  jitter: boolean;
  /** The adapter's logger of the moment (the runner's child logger once running). */
  log: () => Logger;
  now?: () => number;
  random?: () => number;
}

export class TokenSource {
  private current: AccessToken | null = null;
  private inflight: Promise<AccessToken> | null = null;
  /** Ends a shared fetch when the adapter's life ends, whoever started it. */
  private readonly life = new AbortController();
  private readonly now: () => number;
  private readonly random: () => number;
  private fetches = 0;

  constructor(private readonly options: TokenSourceOptions) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  /** Number of token requests made (for tests and the log). */
  get fetchCount(): number {
    return this.fetches;
  }

  /**
   * Resolves with a token that is not due for refresh (or the freshest the platform will give
   * right now). Concurrent callers share one request. Rejects with the GatewayError of the
   * token endpoint (GW_ERR_QQ_CREDENTIALS_REJECTED, GW_ERR_QQ_TOKEN_FAILED) or, when `signal`
   * aborts, HttpFailureError `aborted`.
   */
  async get(signal?: AbortSignal): Promise<AccessToken> {
    const current = this.current;
    if (current !== null && this.usable(current)) return current;
    this.inflight ??= this.fetch().finally(() => {
      this.inflight = null;
    });
    return raceAbort(this.inflight, signal);
  }

  /**
   * Drops the cached token after the platform refused it (REST 401 / 11244, close 4004), so
   * the next `get()` fetches a new one. With `refused`, only that token is dropped: a token
   * fetched meanwhile by someone else stays.
   */
  invalidate(refused?: AccessToken): void {
    const dropped = this.current;
    if (dropped === null || (refused !== undefined && dropped !== refused)) return;
    dropped.value.retire(dropped.expiresAt + RETIRED_SCRUB_MS);
    this.current = null;
  }

  /**
   * Keeps the token fresh until `signal` aborts, then resolves. Rejects only when the
   * platform rejects the credentials (non-retryable): tracked by the runner, that is fatal.
   * Other failures are retried with a growing pause; users still fetch on demand meanwhile.
   */
  async refreshLoop(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      let token: AccessToken;
      try {
        token = await this.get(signal);
        failures = 0;
      } catch (err) {
        if (signal.aborted) return;
        const error = toGatewayError(err, 'GW_ERR_QQ_TOKEN_FAILED');
        if (!error.retryable) throw error;
        failures += 1;
        const pauseMs = Math.min(MAX_REFRESH_RETRY_MS, 1_000 * 2 ** (failures - 1));
        this.options
          .log()
          .warn(
            { code: error.code, failures, retry_in_ms: pauseMs },
            `background token refresh failed: ${error.message}`,
          );
        await sleep(pauseMs, signal);
        continue;
      }
      const now = this.now();
      // +1: wake just after the refresh point, not a timer tick before it.
      const waitMs = Math.max(token.refreshAt - now, token.fetchedAt + MIN_REFETCH_MS - now) + 1;
      await sleep(waitMs, signal);
    }
  }

  /** Ends any shared fetch in flight; call when the adapter's life ends. */
  close(): void {
    this.life.abort();
  }

  private usable(token: AccessToken): boolean {
    const now = this.now();
    if (now >= token.expiresAt) return false;
    return now < token.refreshAt || now - token.fetchedAt < MIN_REFETCH_MS;
  }

  private async fetch(): Promise<AccessToken> {
    const { rest, secret, marginMs, jitter, log } = this.options;
    this.fetches += 1;
    const started = this.now();
    const grant = await rest.fetchToken(secret, this.life.signal);
    const expiresAt = started + grant.expiresInMs;
    // Jitter moves the refresh later, never earlier: within the platform's renew window.
    const margin = jitter ? marginMs * (1 - 0.2 * this.random()) : marginMs;
    const previous = this.current;
    const token: AccessToken = {
      value: new Secret(grant.accessToken),
      expiresAt,
      refreshAt: expiresAt - margin,
      fetchedAt: this.now(),
    };
    const renewed = previous === null || previous.value.reveal() !== grant.accessToken;
    // The replaced token may still be echoed by answers to requests that carried it.
    if (renewed && previous !== null) previous.value.retire(previous.expiresAt + RETIRED_SCRUB_MS);
    this.current = token;
    log().info(
      { expires_in_ms: grant.expiresInMs, renewed },
      renewed ? 'access token obtained' : 'access token unchanged (not yet in its renew window)',
    );
    return token;
  }
}

/**
 * Resolves or rejects like `promise`, or rejects with HttpFailureError `aborted` as soon as
 * `signal` aborts. The promise itself keeps running for its other users.
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) {
    // Still observe the promise: a shared fetch may be abandoned by everyone.
    promise.catch(() => undefined);
    return Promise.reject(new HttpFailureError('aborted', 'aborted'));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new HttpFailureError('aborted', 'aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

export function isAbort(err: unknown): boolean {
  return err instanceof HttpFailureError && err.failure === 'aborted';
}
