/**
 * `platforms.qqbot` in the config: a strict zod object with every endpoint and timing as a
 * key (production defaults in DEFAULTS), and its translation into the adapter's settings.
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
import { INTENT_NAMES, intentsMask, type IntentName } from './protocol.js';

/** Production defaults, in one place. */
export const DEFAULTS = {
  sandbox: false,
  /** The mask the official openclaw plugin uses in the field (1107300352). */
  intents: ['GROUP_AND_C2C_EVENT', 'PUBLIC_GUILD_MESSAGES', 'DIRECT_MESSAGE'] as IntentName[],
  shard: [0, 1] as [number, number],
  tokenUrl: 'https://bots.qq.com/app/getAppAccessToken',
  apiBase: 'https://api.sgroup.qq.com',
  sandboxApiBase: 'https://sandbox.api.sgroup.qq.com',
  reconnect: {
    backoffMs: [2_000, 5_000, 10_000, 30_000, 60_000],
    maxAttempts: 100,
    /** A connection must stay up this long after READY before the attempt count resets. */
    healthyAfterMs: 60_000,
    /** Wait after close 4008 (SDKs use 60 s). */
    rateLimitedWaitMs: 60_000,
    /** Refused or failed Resumes in a row before falling back to Identify. */
    maxResumeFailures: 2,
  },
  timeouts: {
    connectMs: 10_000,
    helloMs: 10_000,
    readyMs: 15_000,
    /** ACK slack after a heartbeat; capped at 0.45 × the interval (DESIGN §9: ≤ half). */
    heartbeatAckMs: 10_000,
    restMs: 10_000,
    tokenMs: 10_000,
    closeMs: 2_000,
  },
  maxPayloadBytes: 1024 * 1024,
  /**
   * Refresh this long before expiry. The platform only mints a new token in the last 60 s
   * (earlier requests return the same one), hence a margin under 60 s (DOC api-use.md).
   */
  tokenRefreshMarginMs: 50_000,
  send: {
    maxAttempts: 4,
    maxTextLength: 2_000,
    retryDelayMs: 1_000,
    /** A retry hint above this is not waited for: the send fails rate-limited at once. */
    maxRetryDelayMs: 30_000,
  },
  jitter: true,
  /** WebSocket today; webhook is where the platform steers new bots (fact sheet §8.6). */
  transport: 'websocket' as 'websocket' | 'webhook',
  webhook: {
    listen: INGRESS_DEFAULTS.listen,
    maxBodyBytes: INGRESS_DEFAULTS.maxBodyBytes,
    requestTimeoutMs: INGRESS_DEFAULTS.requestTimeoutMs,
    /**
     * No freshness window is documented (fact sheet §8.4); whether a retried callback carries
     * a new timestamp is not either, so the default is generous: a retry a few minutes late
     * must not be refused, and replays inside the window are dropped by the event-id dedupe.
     */
    timestampToleranceS: 600,
  },
} as const;

const ms = z.number().int().nonnegative().max(2_147_483_647);
const positiveMs = z.number().int().positive().max(2_147_483_647);
const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//i.test(u), 'must be an http(s) URL');

export const qqbotSchema = z
  .object({
    enabled: z.boolean().default(true),
    // YAML reads an unquoted numeric app id as a number: accept both.
    app_id: z
      .union([z.string().regex(/^\S+$/, 'must be a non-empty id'), z.number().int().nonnegative()])
      .transform(String),
    client_secret: z.instanceof(Secret, {
      message: 'required (client_secret, client_secret_file or client_secret_credential)',
    }),
    sandbox: z.boolean().default(DEFAULTS.sandbox),
    intents: z
      .array(z.enum(INTENT_NAMES))
      .min(1)
      .default([...DEFAULTS.intents]),
    shard: z
      .tuple([z.number().int().nonnegative(), z.number().int().positive()])
      .refine(([id, count]) => id < count, 'shard id must be below the shard count')
      .default([...DEFAULTS.shard]),
    token_url: httpUrl.default(DEFAULTS.tokenUrl),
    /** Default: production, or the sandbox base when `sandbox` is true. */
    api_base: httpUrl.optional(),
    /** Overrides the WebSocket URL `GET /gateway/bot` returns (still asked for its limits). */
    gateway_url: z
      .string()
      .url()
      .refine((u) => /^wss?:\/\//i.test(u), 'must be a ws(s) URL')
      .optional(),
    reconnect: z
      .object({
        backoff_ms: z
          .array(ms)
          .min(1)
          .default([...DEFAULTS.reconnect.backoffMs]),
        max_attempts: z.number().int().positive().default(DEFAULTS.reconnect.maxAttempts),
        healthy_after_ms: ms.default(DEFAULTS.reconnect.healthyAfterMs),
        rate_limited_wait_ms: ms.default(DEFAULTS.reconnect.rateLimitedWaitMs),
        max_resume_failures: z
          .number()
          .int()
          .positive()
          .default(DEFAULTS.reconnect.maxResumeFailures),
      })
      .strict()
      .default({}),
    timeouts: z
      .object({
        connect_ms: positiveMs.default(DEFAULTS.timeouts.connectMs),
        hello_ms: positiveMs.default(DEFAULTS.timeouts.helloMs),
        ready_ms: positiveMs.default(DEFAULTS.timeouts.readyMs),
        heartbeat_ack_ms: positiveMs.default(DEFAULTS.timeouts.heartbeatAckMs),
        rest_ms: positiveMs.default(DEFAULTS.timeouts.restMs),
        token_ms: positiveMs.default(DEFAULTS.timeouts.tokenMs),
        close_ms: positiveMs.default(DEFAULTS.timeouts.closeMs),
      })
      .strict()
      .default({}),
    max_payload_bytes: z
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(DEFAULTS.maxPayloadBytes),
    token_refresh_margin_ms: ms.max(60_000).default(DEFAULTS.tokenRefreshMarginMs),
    send: z
      .object({
        max_attempts: z.number().int().positive().max(20).default(DEFAULTS.send.maxAttempts),
        max_text_length: z.number().int().min(16).default(DEFAULTS.send.maxTextLength),
        retry_delay_ms: ms.default(DEFAULTS.send.retryDelayMs),
        max_retry_delay_ms: ms.default(DEFAULTS.send.maxRetryDelayMs),
      })
      .strict()
      .default({}),
    /** Jitter of backoff steps and of the first heartbeat; off only for deterministic tests. */
    jitter: z.boolean().default(DEFAULTS.jitter),
    transport: z.enum(['websocket', 'webhook']).default(DEFAULTS.transport),
    webhook: z
      .object({
        listen: listenSchema.default(DEFAULTS.webhook.listen),
        /** Default `/qqbot/<instance>`. */
        path: pathSchema.optional(),
        max_body_bytes: maxBodyBytesSchema,
        request_timeout_ms: requestTimeoutMsSchema,
        timestamp_tolerance_s: z
          .number()
          .int()
          .positive()
          .max(86_400)
          .default(DEFAULTS.webhook.timestampToleranceS),
      })
      .strict()
      .default({}),
  })
  .strict();

export type QQBotConfig = z.output<typeof qqbotSchema>;

/** The adapter's view of its config: camelCase, defaults resolved, intents as a mask. */
export interface QQBotSettings {
  appId: string;
  clientSecret: Secret;
  intents: number;
  intentNames: readonly IntentName[];
  shard: readonly [number, number];
  tokenUrl: string;
  apiBase: string;
  gatewayUrl: string | null;
  reconnect: {
    backoffMs: readonly number[];
    maxAttempts: number;
    healthyAfterMs: number;
    rateLimitedWaitMs: number;
    maxResumeFailures: number;
  };
  timeouts: {
    connectMs: number;
    helloMs: number;
    readyMs: number;
    heartbeatAckMs: number;
    restMs: number;
    tokenMs: number;
    closeMs: number;
  };
  maxPayloadBytes: number;
  tokenRefreshMarginMs: number;
  send: {
    maxAttempts: number;
    maxTextLength: number;
    retryDelayMs: number;
    maxRetryDelayMs: number;
  };
  jitter: boolean;
  transport: 'websocket' | 'webhook';
  webhook: {
    listen: ListenAddress;
    /** null: `/qqbot/<instance>`. */
    path: string | null;
    maxBodyBytes: number;
    requestTimeoutMs: number;
    timestampToleranceS: number;
  };
}

export function toSettings(config: QQBotConfig): QQBotSettings {
  const apiBase = (
    config.api_base ?? (config.sandbox ? DEFAULTS.sandboxApiBase : DEFAULTS.apiBase)
  ).replace(/\/+$/, '');
  return {
    appId: config.app_id,
    clientSecret: config.client_secret,
    intents: intentsMask(config.intents),
    intentNames: config.intents,
    shard: config.shard,
    tokenUrl: config.token_url,
    apiBase,
    gatewayUrl: config.gateway_url ?? null,
    reconnect: {
      backoffMs: config.reconnect.backoff_ms,
      maxAttempts: config.reconnect.max_attempts,
      healthyAfterMs: config.reconnect.healthy_after_ms,
      rateLimitedWaitMs: config.reconnect.rate_limited_wait_ms,
      maxResumeFailures: config.reconnect.max_resume_failures,
    },
    timeouts: {
      connectMs: config.timeouts.connect_ms,
      helloMs: config.timeouts.hello_ms,
      readyMs: config.timeouts.ready_ms,
      heartbeatAckMs: config.timeouts.heartbeat_ack_ms,
      restMs: config.timeouts.rest_ms,
      tokenMs: config.timeouts.token_ms,
      closeMs: config.timeouts.close_ms,
    },
    maxPayloadBytes: config.max_payload_bytes,
    tokenRefreshMarginMs: config.token_refresh_margin_ms,
    send: {
      maxAttempts: config.send.max_attempts,
      maxTextLength: config.send.max_text_length,
      retryDelayMs: config.send.retry_delay_ms,
      maxRetryDelayMs: config.send.max_retry_delay_ms,
    },
    jitter: config.jitter,
    transport: config.transport,
    webhook: {
      listen: config.webhook.listen,
      path: config.webhook.path ?? null,
      maxBodyBytes: config.webhook.max_body_bytes,
      requestTimeoutMs: config.webhook.request_timeout_ms,
      timestampToleranceS: config.webhook.timestamp_tolerance_s,
    },
  };
}
