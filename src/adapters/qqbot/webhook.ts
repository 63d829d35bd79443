/**
 * The webhook transport's request handling (fact sheet §8): every callback is verified
 * (timestamp within the tolerance, Ed25519 signature over timestamp + raw body) before its
 * body is parsed; op 13 is answered with the signed plain_token, op 0 is handed on and
 * acknowledged with op 12 once the pipeline took it. The adapter owns the route and the states.
 */
import type { Logger } from 'pino';
import type { IngressReply, IngressRequest } from '../../ingress/server.js';
import { validationAnswer, verifyCallback, type SigningKeys } from './signature.js';
import {
  CALLBACK_ACK,
  Op,
  WEBHOOK_HEADERS,
  parseFrame,
  parseValidation,
  type GatewayFrame,
} from './protocol.js';

export interface CallbackReceiverOptions {
  appId: string;
  keys: SigningKeys;
  timestampToleranceS: number;
  log: () => Logger;
  /** A request passed verification (last_event_at, the last-valid-callback metric). */
  valid(): void;
  /** A dispatch (op 0); returns once the pipeline took it (`ctx.emit` is synchronous). */
  dispatch(frame: GatewayFrame & { t: string }): void;
  now?: () => number;
}

/** Counters for operators and tests; never persisted. */
export interface CallbackStats {
  accepted: number;
  validations: number;
  rejected: Record<string, number>;
}

function header(request: IngressRequest, name: string): string | null {
  const value = request.headers[name];
  return typeof value === 'string' ? value : null;
}

export class CallbackReceiver {
  readonly stats: CallbackStats = { accepted: 0, validations: 0, rejected: {} };
  private readonly now: () => number;

  constructor(private readonly options: CallbackReceiverOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Answers one callback; never rejects. */
  handle(request: IngressRequest): Promise<IngressReply> {
    return Promise.resolve(this.answer(request));
  }

  private answer(request: IngressRequest): IngressReply {
    const { options } = this;
    const appId = header(request, WEBHOOK_HEADERS.appId);
    if (appId !== null && appId !== options.appId) {
      return this.reject(403, 'appid', 'GW_ERR_QQ_WEBHOOK_APPID', 'callback for another app id');
    }
    // Cheap checks first: a flood of unsigned requests costs no signature verification.
    const timestamp = header(request, WEBHOOK_HEADERS.timestamp);
    if (timestamp === null || !/^\d{1,12}$/.test(timestamp)) {
      return this.reject(401, 'timestamp', 'GW_ERR_QQ_WEBHOOK_TIMESTAMP', 'no valid timestamp');
    }
    const skewS = Math.abs(this.now() / 1000 - Number(timestamp));
    if (skewS > options.timestampToleranceS) {
      return this.reject(
        401,
        'timestamp',
        'GW_ERR_QQ_WEBHOOK_TIMESTAMP',
        `timestamp ${Math.round(skewS)} s away from now (tolerance ${options.timestampToleranceS} s)`,
      );
    }
    const signature = header(request, WEBHOOK_HEADERS.signature);
    if (signature === null || !verifyCallback(options.keys, timestamp, request.body, signature)) {
      return this.reject(401, 'signature', 'GW_ERR_QQ_WEBHOOK_SIGNATURE', 'bad or no signature');
    }
    options.valid();
    const frame = parseFrame(request.body.toString('utf8'));
    if (frame === null) {
      return this.reject(400, 'bad_json', 'GW_ERR_QQ_WEBHOOK_BAD_BODY', 'not a JSON envelope');
    }
    switch (frame.op) {
      case Op.CallbackValidation: {
        // Signed like every callback (the official Go SDK verifies before looking at op):
        // answering an unsigned op 13 would sign any text a stranger sends, and a signed
        // "event_ts + plain_token" can be replayed as the timestamp + body of a forged dispatch.
        const validation = parseValidation(frame.d);
        if (validation === null) {
          return this.reject(400, 'bad_json', 'GW_ERR_QQ_WEBHOOK_BAD_BODY', 'op 13 without fields');
        }
        this.stats.validations += 1;
        options.log().info('callback address validation (op 13) answered');
        return {
          status: 200,
          body: validationAnswer(options.keys, validation.plainToken, validation.eventTs),
        };
      }
      case Op.Dispatch:
        this.stats.accepted += 1;
        if (frame.t !== null) options.dispatch({ ...frame, t: frame.t });
        return { status: 200, body: CALLBACK_ACK };
      default:
        // Not documented for webhooks: acknowledged so it is not retried, and left at that.
        options.log().debug({ op: frame.op }, 'callback with an unknown op acknowledged');
        return { status: 200, body: CALLBACK_ACK };
    }
  }

  private reject(status: number, reason: string, code: string, why: string): IngressReply {
    this.stats.rejected[reason] = (this.stats.rejected[reason] ?? 0) + 1;
    this.options.log().warn({ code, status }, `webhook callback refused: ${why}`);
    return { status, reason, body: { error: { code } } };
  }
}
