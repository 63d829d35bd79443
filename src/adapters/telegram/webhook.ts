/**
 * Webhook mode (issue 18, item 4): the setWebhook / getWebhookInfo parameters and checks, and
 * the handling of one pushed update: the X-Telegram-Bot-Api-Secret-Token header compared in
 * constant time before the body is parsed (401 otherwise), the update handed to the pipeline,
 * 200 once it took it (Telegram retries anything else). The adapter owns the route and states.
 */
import type { Logger } from 'pino';
import type { IngressReply, IngressRequest } from '../../ingress/server.js';
import { secretDigest, secretMatches } from '../../util/secret-compare.js';
import type { TelegramSettings } from './config.js';
import { isObject, type TgUpdate } from './protocol.js';

/** The header Telegram sends with the secret_token of setWebhook (Bot API, setWebhook). */
export const SECRET_HEADER = 'x-telegram-bot-api-secret-token';

type WebhookSettings = NonNullable<TelegramSettings['webhook']>;

/** setWebhook's parameters: our URL, secret and limits; pending updates are kept. */
export function setWebhookParams(
  webhook: WebhookSettings,
  allowedUpdates: readonly string[],
): Record<string, unknown> {
  return {
    url: webhook.publicUrl,
    secret_token: webhook.secretToken.reveal(),
    allowed_updates: allowedUpdates,
    max_connections: webhook.maxConnections,
    drop_pending_updates: false,
  };
}

/** What getWebhookInfo tells about our webhook. */
export interface WebhookInfo {
  url: string;
  pendingUpdateCount: number | null;
  /** Telegram's last failed delivery to the URL, if any: the proof it cannot reach us. */
  lastErrorMessage: string | null;
  lastErrorDate: number | null;
}

export function parseWebhookInfo(result: unknown): WebhookInfo | null {
  if (!isObject(result) || typeof result.url !== 'string') return null;
  return {
    url: result.url,
    pendingUpdateCount:
      typeof result.pending_update_count === 'number' ? result.pending_update_count : null,
    lastErrorMessage:
      typeof result.last_error_message === 'string' ? result.last_error_message : null,
    lastErrorDate: typeof result.last_error_date === 'number' ? result.last_error_date : null,
  };
}

export interface UpdateReceiverOptions {
  secretToken: WebhookSettings['secretToken'];
  log: () => Logger;
  /** A request passed the secret check (last_event_at, the last-valid-callback metric). */
  valid(): void;
  /** Hands the update to the pipeline; returns once it took it (`ctx.emit` is synchronous). */
  take(update: TgUpdate): void;
}

export class UpdateReceiver {
  readonly rejected: Record<string, number> = {};
  private readonly expected: Buffer;

  constructor(private readonly options: UpdateReceiverOptions) {
    this.expected = secretDigest(options.secretToken.reveal());
  }

  /** Answers one pushed update; never rejects. */
  handle(request: IngressRequest): Promise<IngressReply> {
    return Promise.resolve(this.answer(request));
  }

  private answer(request: IngressRequest): IngressReply {
    const header = request.headers[SECRET_HEADER];
    if (!secretMatches(typeof header === 'string' ? header : undefined, this.expected)) {
      return this.reject(
        401,
        'secret',
        'GW_ERR_TELEGRAM_WEBHOOK_SECRET',
        'wrong or no secret token',
      );
    }
    this.options.valid();
    let update: unknown;
    try {
      update = JSON.parse(request.body.toString('utf8'));
    } catch {
      update = null;
    }
    if (!isObject(update) || !Number.isSafeInteger(update.update_id)) {
      // 400 tells Telegram to retry, which cannot help a body that is not an update; but a
      // 2xx would drop it silently. Refused and counted: getWebhookInfo shows the error.
      return this.reject(400, 'bad_json', 'GW_ERR_TELEGRAM_BAD_UPDATE', 'not an Update object');
    }
    this.options.take(update as unknown as TgUpdate);
    return { status: 200 };
  }

  private reject(status: number, reason: string, code: string, why: string): IngressReply {
    this.rejected[reason] = (this.rejected[reason] ?? 0) + 1;
    this.options.log().warn({ code, status }, `webhook request refused: ${why}`);
    return { status, reason, body: { error: { code } } };
  }
}
