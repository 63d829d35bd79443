import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { GatewayError } from '../errors.js';
import type { WebhookHandlerConfig } from './config.js';
import type { Handler, HandlerDeps, Reply } from './handler.js';
import { postWithRetry, safeUrl } from './http.js';

/** What a webhook answers with 200 (extra keys are ignored, for forward compatibility). */
const webhookAnswer = z.object({
  replies: z.array(z.object({ text: z.string() })),
});

/** `X-Hermes-Signature` for a body: HMAC-SHA256 of the exact bytes, hex, with a `sha256=` prefix. */
export function signBody(secret: string, body: Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * POSTs each event as JSON to `url`, signed with `secret`, and delivers the answer's
 * `replies`. 204 (or an empty 2xx body) means no reply.
 */
export function createWebhookHandler(config: WebhookHandlerConfig, deps: HandlerDeps): Handler {
  const url = new URL(config.url);
  const where = safeUrl(url);
  const log = deps.log.child({ handler: 'webhook' });
  return {
    type: 'webhook',
    async handle(event, signal): Promise<Reply[]> {
      const body = Buffer.from(JSON.stringify(event), 'utf8');
      const response = await postWithRetry(
        {
          url,
          body,
          headers: {
            'content-type': 'application/json',
            'user-agent': 'hermes-gateway',
            'x-hermes-event-id': event.id,
            'x-hermes-signature': signBody(config.secret.reveal(), body),
          },
          timeoutMs: config.timeout_ms,
          maxResponseBytes: config.max_response_bytes,
          signal,
          maxAttempts: config.max_attempts,
          retryBackoffMs: config.retry_backoff_ms,
          retryBackoffMaxMs: config.retry_backoff_max_ms,
        },
        (attempt, reason) =>
          log.info({ event_id: event.id, attempt, url: where }, `webhook retry: ${reason}`),
      );
      if (response.status === 204 || response.body.length === 0) return [];
      let parsed: unknown;
      try {
        parsed = JSON.parse(response.body.toString('utf8'));
      } catch {
        throw malformed(where, 'the body is not JSON');
      }
      const answer = webhookAnswer.safeParse(parsed);
      if (!answer.success) {
        throw malformed(where, 'expected {"replies": [{"text": "..."}]}');
      }
      return answer.data.replies.filter((reply) => reply.text.trim() !== '');
    },
  };
}

function malformed(where: string, why: string): GatewayError {
  return new GatewayError(
    'GW_ERR_HANDLER_MALFORMED_RESPONSE',
    `malformed answer from ${where}: ${why}`,
    { details: { url: where } },
  );
}
