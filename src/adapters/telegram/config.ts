/**
 * `platforms.<name>` with `type: telegram`: a strict zod object with every endpoint and timing
 * as a key (production defaults in DEFAULTS), and its translation into the adapter's settings.
 */
import { z } from 'zod';
import { Secret } from '../../config/secret.js';
import {
  listenSchema,
  maxBodyBytesSchema,
  pathSchema,
  requestTimeoutMsSchema,
} from '../../ingress/config.js';
import { DEFAULTS as INGRESS_DEFAULTS } from '../../ingress/server.js';
import type { ListenAddress } from '../../net/listen.js';
import { UPDATE_KINDS, type UpdateKind } from './protocol.js';

/** Production defaults, in one place. */
export const DEFAULTS = {
  apiBase: 'https://api.telegram.org',
  mode: 'polling' as 'polling' | 'webhook',
  webhook: {
    listen: INGRESS_DEFAULTS.listen,
    /** Telegram's own default (setWebhook max_connections). */
    maxConnections: 40,
    maxBodyBytes: INGRESS_DEFAULTS.maxBodyBytes,
    requestTimeoutMs: INGRESS_DEFAULTS.requestTimeoutMs,
  },
  polling: {
    /** Long-poll seconds; the server clamps to 0-50, grammY and its runner use 30. */
    timeoutS: 30,
    limit: 100,
    /**
     * How long the next getUpdates waits for the updates handed on to be handled (only those
     * are confirmed; asking sooner returns them again). Above 0.5 s: the server throttles a
     * repeated offset within 0.5 s to limit 1 (fact sheet §3.3 rule 2).
     */
    handledWaitMs: 1_000,
  },
  allowedUpdates: ['message', 'edited_message', 'channel_post', 'callback_query'] as UpdateKind[],
  deleteWebhookOnStart: false,
  reconnect: {
    backoffMs: [1_000, 2_000, 5_000, 10_000, 30_000, 60_000],
    /** About 55 min of failed polls at the last step before the process exits 1. */
    maxAttempts: 60,
    /** Polls must keep succeeding this long before the failure count resets. */
    healthyAfterMs: 60_000,
  },
  timeouts: {
    restMs: 10_000,
    /**
     * A poll's deadline is timeout_s + this: the server answers an idle long poll after
     * timeout_s, so anything later is a dead link (fact sheet §3.4: timeout + 10-15 s).
     */
    pollSlackMs: 10_000,
  },
  send: {
    maxAttempts: 3,
    /** UTF-16 units; the server counts 4096 code points, so this is never over. */
    maxTextLength: 4_096,
    retryDelayMs: 1_000,
    /** A 429 retry_after above this is not waited for: the message fails rate limited. */
    maxRetryAfterMs: 30_000,
    /** Pacing from the Bot API FAQ: about 1/s per chat, 20/min per group, 30/s overall. */
    privateIntervalMs: 1_000,
    groupIntervalMs: 3_000,
    globalIntervalMs: 34,
  },
  jitter: true,
} as const;

const ms = z.number().int().nonnegative().max(2_147_483_647);
const positiveMs = z.number().int().positive().max(2_147_483_647);
const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//i.test(u), 'must be an http(s) URL');

/** `<bot id>:<secret>` as BotFather issues it; the bot id has no leading zero. */
const TOKEN_SHAPE = /^[1-9]\d{0,17}:[A-Za-z0-9_-]+$/;

export const telegramSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** The adapter type when the instance name is not `telegram` (instances issue). */
    type: z.literal('telegram').optional(),
    token: z
      .instanceof(Secret, { message: 'required (token, token_file or token_credential)' })
      .refine((s) => TOKEN_SHAPE.test(s.reveal()), 'is not a bot token (<bot id>:<secret>)'),
    api_base: httpUrl.default(DEFAULTS.apiBase),
    mode: z.enum(['polling', 'webhook']).default(DEFAULTS.mode),
    webhook: z
      .object({
        /** What Telegram calls: HTTPS on 443, 80, 88 or 8443 in production. */
        public_url: httpUrl.optional(),
        listen: listenSchema.default(DEFAULTS.webhook.listen),
        /** Default: the path of public_url (a reverse proxy that passes the path unchanged). */
        path: pathSchema.optional(),
        secret_token: z
          .instanceof(Secret, {
            message: 'required (secret_token, secret_token_file or secret_token_credential)',
          })
          .refine(
            (s) => /^[A-Za-z0-9_-]{1,256}$/.test(s.reveal()),
            'must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Bot API setWebhook)',
          )
          .optional(),
        max_connections: z.number().int().min(1).max(100).default(DEFAULTS.webhook.maxConnections),
        max_body_bytes: maxBodyBytesSchema,
        request_timeout_ms: requestTimeoutMsSchema,
      })
      .strict()
      .default({}),
    polling: z
      .object({
        timeout_s: z.number().int().min(0).max(50).default(DEFAULTS.polling.timeoutS),
        limit: z.number().int().min(1).max(100).default(DEFAULTS.polling.limit),
        handled_wait_ms: ms.default(DEFAULTS.polling.handledWaitMs),
      })
      .strict()
      .default({}),
    allowed_updates: z.array(z.enum(UPDATE_KINDS)).default([...DEFAULTS.allowedUpdates]),
    delete_webhook_on_start: z.boolean().default(DEFAULTS.deleteWebhookOnStart),
    reconnect: z
      .object({
        backoff_ms: z
          .array(ms)
          .min(1)
          .default([...DEFAULTS.reconnect.backoffMs]),
        max_attempts: z.number().int().positive().default(DEFAULTS.reconnect.maxAttempts),
        healthy_after_ms: ms.default(DEFAULTS.reconnect.healthyAfterMs),
      })
      .strict()
      .default({}),
    timeouts: z
      .object({
        rest_ms: positiveMs.default(DEFAULTS.timeouts.restMs),
        poll_slack_ms: positiveMs.default(DEFAULTS.timeouts.pollSlackMs),
      })
      .strict()
      .default({}),
    send: z
      .object({
        max_attempts: z.number().int().positive().max(20).default(DEFAULTS.send.maxAttempts),
        max_text_length: z.number().int().min(16).max(4_096).default(DEFAULTS.send.maxTextLength),
        retry_delay_ms: ms.default(DEFAULTS.send.retryDelayMs),
        max_retry_after_ms: ms.default(DEFAULTS.send.maxRetryAfterMs),
        private_interval_ms: ms.default(DEFAULTS.send.privateIntervalMs),
        group_interval_ms: ms.default(DEFAULTS.send.groupIntervalMs),
        global_interval_ms: ms.default(DEFAULTS.send.globalIntervalMs),
      })
      .strict()
      .default({}),
    /** Jitter of backoff steps; off only for deterministic tests. */
    jitter: z.boolean().default(DEFAULTS.jitter),
  })
  .strict()
  .superRefine((value, ctx) => {
    if (value.mode !== 'webhook') return;
    for (const key of ['public_url', 'secret_token'] as const) {
      if (value.webhook[key] !== undefined) continue;
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['webhook', key],
        message: 'required when mode is webhook',
      });
    }
  });

export type TelegramConfig = z.output<typeof telegramSchema>;

/** The adapter's view of its config: camelCase, defaults resolved. */
export interface TelegramSettings {
  token: Secret;
  /** The token's non-secret part: the bot's user id. */
  botId: string;
  apiBase: string;
  polling: { timeoutS: number; limit: number; handledWaitMs: number };
  allowedUpdates: readonly UpdateKind[];
  deleteWebhookOnStart: boolean;
  mode: 'polling' | 'webhook';
  /** Null in polling mode. */
  webhook: {
    publicUrl: string;
    listen: ListenAddress;
    path: string;
    secretToken: Secret;
    maxConnections: number;
    maxBodyBytes: number;
    requestTimeoutMs: number;
  } | null;
  reconnect: { backoffMs: readonly number[]; maxAttempts: number; healthyAfterMs: number };
  timeouts: { restMs: number; pollSlackMs: number };
  send: {
    maxAttempts: number;
    maxTextLength: number;
    retryDelayMs: number;
    maxRetryAfterMs: number;
    privateIntervalMs: number;
    groupIntervalMs: number;
    globalIntervalMs: number;
  };
  jitter: boolean;
}

/** The bot id of a token: the part before `:`, which is not secret (it is the bot's user id). */
export function botIdOf(token: Secret): string {
  return token.reveal().split(':', 1)[0] ?? '';
}

export function toSettings(config: TelegramConfig): TelegramSettings {
  return {
    token: config.token,
    botId: botIdOf(config.token),
    apiBase: config.api_base.replace(/\/+$/, ''),
    polling: {
      timeoutS: config.polling.timeout_s,
      limit: config.polling.limit,
      handledWaitMs: config.polling.handled_wait_ms,
    },
    allowedUpdates: config.allowed_updates,
    deleteWebhookOnStart: config.delete_webhook_on_start,
    mode: config.mode,
    webhook: webhookSettings(config),
    reconnect: {
      backoffMs: config.reconnect.backoff_ms,
      maxAttempts: config.reconnect.max_attempts,
      healthyAfterMs: config.reconnect.healthy_after_ms,
    },
    timeouts: { restMs: config.timeouts.rest_ms, pollSlackMs: config.timeouts.poll_slack_ms },
    send: {
      maxAttempts: config.send.max_attempts,
      maxTextLength: config.send.max_text_length,
      retryDelayMs: config.send.retry_delay_ms,
      maxRetryAfterMs: config.send.max_retry_after_ms,
      privateIntervalMs: config.send.private_interval_ms,
      groupIntervalMs: config.send.group_interval_ms,
      globalIntervalMs: config.send.global_interval_ms,
    },
    jitter: config.jitter,
  };
}

function webhookSettings(config: TelegramConfig): TelegramSettings['webhook'] {
  const { webhook } = config;
  if (config.mode !== 'webhook' || !webhook.public_url || !webhook.secret_token) return null;
  return {
    publicUrl: webhook.public_url,
    listen: webhook.listen,
    path: webhook.path ?? (new URL(webhook.public_url).pathname || '/'),
    secretToken: webhook.secret_token,
    maxConnections: webhook.max_connections,
    maxBodyBytes: webhook.max_body_bytes,
    requestTimeoutMs: webhook.request_timeout_ms,
  };
}
