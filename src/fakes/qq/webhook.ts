/**
 * The platform's side of the webhook transport (fact sheet §8): signs every callback with the
 * bot's key (derived from the secret, DOC sign.md), sends the op 13 address validation and
 * checks the answer, posts op 0 dispatches and retries those not acknowledged with a 2xx.
 * An implementation of its own (nothing from `src/`), like the rest of the fake.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { FakeContext } from './context.js';

const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** Retry policy of unacknowledged callbacks; the live platform's own is not documented. */
export interface CallbackRetry {
  /** Attempts in all, the first included. */
  attempts: number;
  delayMs: number;
}

/** What one HTTP attempt got back (status 0: no answer: refused, reset, timeout). */
export interface CallbackAttempt {
  status: number;
  body: string;
  /** The bot's answer when {@link FakeWebhook.loseAnswers} dropped it (status is then 0). */
  lost?: number;
}

/** How a {@link FakeWebhook.partial} request ends after the first bytes of its body. */
export type PartialEnd =
  /** The connection is reset (RST) right after them. */
  | 'reset'
  /** Nothing more is sent: the bot's request timeout must cut it. */
  | 'hang'
  /** One more byte every `trickleMs`, never the whole body (a slow-loris sender). */
  | 'trickle';

/** What a partial request got: the status (0: none), and how long after its headers. */
export interface PartialOutcome {
  status: number;
  ms: number;
}

/** One callback as the fake sent it, with every attempt. */
export interface CallbackRecord {
  id: string;
  op: number;
  t: string | null;
  body: string;
  attempts: CallbackAttempt[];
  /** True when an attempt got a 2xx. */
  acked: boolean;
}

/** A raw request for fault tests: anything may be wrong with it. */
export interface RawCallback {
  method?: string;
  path?: string;
  body: string | Buffer;
  headers?: Record<string, string>;
}

/** The bot's Ed25519 key: the secret repeated to 32 bytes is the seed (DOC sign.md). */
function signingKey(secret: string): KeyObject {
  let seed = secret;
  while (Buffer.byteLength(seed) < 32) seed += seed;
  const der = Buffer.concat([PKCS8_PREFIX, Buffer.from(seed).subarray(0, 32)]);
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}

export class FakeWebhook {
  /** Where callbacks go: the bot's callback URL (`http://127.0.0.1:PORT/qqbot/<instance>`). */
  target: string | null = null;
  /** Every callback sent, in order. */
  readonly callbacks: CallbackRecord[] = [];
  retry: CallbackRetry = { attempts: 3, delayMs: 200 };
  /** Per-attempt answer deadline (the platform's documented 3 s of older docs). */
  attemptTimeoutMs = 3_000;
  /**
   * The next this many answers to callbacks are lost on the way back (the connection is cut
   * as the answer arrives): the platform saw no acknowledgement and retries.
   */
  loseAnswers = 0;
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;
  private nextSeq = 1;
  /** Connections to the bot are kept alive and reused, as an HTTP client fleet does. */
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });

  constructor(private readonly ctx: FakeContext) {
    this.privateKey = signingKey(ctx.settings.clientSecret);
    this.publicKey = createPublicKey(this.privateKey);
  }

  /** The signature headers the platform sends with `body` at `timestamp` (unix seconds). */
  signedHeaders(
    body: string | Buffer,
    timestamp = Math.floor(Date.now() / 1000),
  ): Record<string, string> {
    return this.headersSignedWith(this.privateKey, body, timestamp);
  }

  /** Headers like {@link signedHeaders}, signed with the key of another secret: a forgery. */
  forgedHeaders(body: string | Buffer, otherSecret: string): Record<string, string> {
    return this.headersSignedWith(signingKey(otherSecret), body, Math.floor(Date.now() / 1000));
  }

  private headersSignedWith(
    key: KeyObject,
    body: string | Buffer,
    timestamp: number,
  ): Record<string, string> {
    const ts = String(timestamp);
    const message = Buffer.concat([Buffer.from(ts), Buffer.from(body)]);
    return {
      'content-type': 'application/json',
      'user-agent': 'QQBot-Callback',
      'x-bot-appid': this.ctx.settings.appId,
      'x-signature-ed25519': sign(null, message, key).toString('hex'),
      'x-signature-timestamp': ts,
      'x-signature-method': 'Ed25519',
    };
  }

  /**
   * Sends the op 13 address validation, as the console does when the URL is entered. Resolves
   * true when the answer is 200 with the same plain_token and a valid signature of
   * event_ts + plain_token; false (and a `webhook-bad-validation` violation) otherwise.
   */
  async validate(): Promise<boolean> {
    const { status, ok } = await this.validation();
    if (status === 0) {
      this.ctx.violation('webhook-bad-validation', 'op 13 got no answer');
    }
    return ok;
  }

  /**
   * {@link validate}, for a bot that may be restarting: no answer at all (status 0) is not a
   * violation, only a wrong answer is.
   */
  async validation(): Promise<{ status: number; ok: boolean }> {
    const plainToken = randomBytes(15).toString('base64url');
    const eventTs = String(Math.floor(Date.now() / 1000));
    const body = JSON.stringify({ op: 13, d: { plain_token: plainToken, event_ts: eventTs } });
    const answer = await this.post({ body, headers: this.signedHeaders(body) });
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(answer.body);
    } catch {
      // judged below
    }
    const fields = (parsed ?? {}) as { plain_token?: unknown; signature?: unknown };
    const signature = typeof fields.signature === 'string' ? fields.signature : '';
    const ok =
      answer.status === 200 &&
      fields.plain_token === plainToken &&
      /^[0-9a-f]{128}$/i.test(signature) &&
      verify(
        null,
        Buffer.from(eventTs + plainToken),
        this.publicKey,
        Buffer.from(signature, 'hex'),
      );
    if (!ok && answer.status !== 0) {
      this.ctx.violation(
        'webhook-bad-validation',
        `op 13 answered ${answer.status} ${answer.body.slice(0, 200)}`,
      );
    }
    return { status: answer.status, ok };
  }

  /**
   * Posts dispatch `t` with payload `d` (op 0, signed) and retries it until a 2xx or the retry
   * budget is spent. The message id becomes a valid reply target. Resolves with the record.
   */
  async dispatch(t: string, d: unknown): Promise<CallbackRecord> {
    return this.deliver(this.prepare(t, d));
  }

  /**
   * A dispatch callback built and signed now, to send later with {@link deliverPrepared} (a
   * load generator signs ahead so its own signing does not pace the run; the signature stays
   * valid while its timestamp is within the bot's tolerance).
   */
  prepare(t: string, d: unknown): CallbackRecord & { headers: Record<string, string> } {
    const id = `${t}:${randomBytes(12).toString('hex')}`;
    const body = JSON.stringify({ op: 0, id, d, s: this.nextSeq++, t });
    this.ctx.knownIds.add(id);
    if (typeof d === 'object' && d !== null && typeof (d as { id?: unknown }).id === 'string') {
      this.ctx.knownIds.add((d as { id: string }).id);
    }
    return { id, op: 0, t, body, attempts: [], acked: false, headers: this.signedHeaders(body) };
  }

  /** Sends a prepared callback with its signature of the moment it was prepared. */
  deliverPrepared(
    record: CallbackRecord & { headers: Record<string, string> },
  ): Promise<CallbackRecord> {
    return this.deliver(record, record.headers);
  }

  /** Sends a prepared callback, each attempt signed afresh (a platform retrying later). */
  deliverRecord(record: CallbackRecord): Promise<CallbackRecord> {
    return this.deliver(record);
  }

  /**
   * Posts an exact body again (a retry of an earlier callback, e.g. after an ack was lost),
   * signed with a fresh timestamp, with the same retry policy.
   */
  async redeliver(record: CallbackRecord): Promise<CallbackRecord> {
    return this.deliver({ ...record, attempts: [], acked: false });
  }

  /** Sends one request as given, for fault tests (no signing, no retry, not recorded). */
  raw(callback: RawCallback): Promise<CallbackAttempt> {
    return this.post(callback);
  }

  /**
   * Sends the headers of `callback` (its full Content-Length) and the first `sendBytes` of its
   * body, then ends as `end` says, on a connection of its own. Resolves with the answer's
   * status (0 when none came within `waitMs`, or after a reset) and its delay after the
   * headers were written; never rejects.
   */
  partial(
    callback: RawCallback,
    sendBytes: number,
    end: PartialEnd,
    waitMs: number,
    trickleMs = 100,
  ): Promise<PartialOutcome> {
    const target = this.target;
    if (target === null) throw new Error('fake webhook: no target URL set');
    const url = new URL(target);
    if (callback.path !== undefined) url.pathname = callback.path;
    const body = Buffer.from(callback.body);
    const started = Date.now();
    return new Promise((resolve) => {
      let trickle: NodeJS.Timeout | undefined;
      const finish = (status: number): void => {
        clearInterval(trickle);
        clearTimeout(deadline);
        req.destroy();
        resolve({ status, ms: Date.now() - started });
      };
      const req = httpRequest(url, {
        method: callback.method ?? 'POST',
        headers: { ...callback.headers, 'content-length': String(body.length) },
        agent: false,
      });
      const deadline = setTimeout(() => finish(0), waitMs);
      req.on('response', (res) => {
        res.resume();
        finish(res.statusCode ?? 0);
      });
      req.on('error', () => finish(0));
      let sent = Math.min(sendBytes, body.length - 1);
      req.write(body.subarray(0, sent), () => {
        if (end === 'reset') {
          req.socket?.resetAndDestroy();
          finish(0);
        } else if (end === 'trickle') {
          trickle = setInterval(() => {
            if (sent < body.length - 1) req.write(body.subarray(sent, (sent += 1)));
          }, trickleMs);
        }
      });
    });
  }

  /** Closes the kept-alive connections (the fake's close() calls it). */
  close(): void {
    this.agent.destroy();
  }

  private async deliver(
    record: CallbackRecord,
    signed?: Record<string, string>,
  ): Promise<CallbackRecord> {
    this.callbacks.push(record);
    for (let attempt = 1; attempt <= this.retry.attempts; attempt += 1) {
      const headers = signed ?? this.signedHeaders(record.body);
      const answer = await this.post({ body: record.body, headers }, true);
      record.attempts.push(answer);
      if (answer.status >= 200 && answer.status < 300) {
        record.acked = true;
        break;
      }
      if (attempt < this.retry.attempts) {
        await new Promise((resolve) => setTimeout(resolve, this.retry.delayMs));
      }
    }
    return record;
  }

  /**
   * One request. `mayLose`: a callback attempt, whose answer is cut off as it arrives (and
   * recorded as `lost`) while {@link loseAnswers} is above zero; an attempt that gets no
   * answer at all leaves it for the next.
   */
  private post(callback: RawCallback, mayLose = false): Promise<CallbackAttempt> {
    const target = this.target;
    if (target === null) throw new Error('fake webhook: no target URL set');
    const url = new URL(target);
    if (callback.path !== undefined) url.pathname = callback.path;
    return new Promise((resolve) => {
      const req = httpRequest(
        url,
        {
          method: callback.method ?? 'POST',
          headers: callback.headers ?? {},
          agent: this.agent,
          timeout: this.attemptTimeoutMs,
        },
        (res) => {
          if (mayLose && this.loseAnswers > 0) {
            this.loseAnswers -= 1;
            resolve({ status: 0, body: '', lost: res.statusCode ?? 0 });
            res.socket.destroy();
            return;
          }
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
          );
          res.on('error', () => resolve({ status: 0, body: '' }));
        },
      );
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve({ status: 0, body: '' }));
      req.end(callback.body);
    });
  }
}
