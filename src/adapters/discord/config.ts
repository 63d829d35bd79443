/**
 * `platforms.<name>` with `type: discord`: a strict zod object with every endpoint and timing
 * as a key (production defaults in DEFAULTS), and its translation into the adapter's settings.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { Secret } from '../../config/secret.js';
import { INTENT_NAMES, INTENTS, intentsMask, type IntentName } from './protocol.js';

/** Production defaults, in one place. */
export const DEFAULTS = {
  apiBase: 'https://discord.com/api/v10',
  intents: ['GUILDS', 'GUILD_MESSAGES', 'DIRECT_MESSAGES', 'MESSAGE_CONTENT'] as IntentName[],
  shard: [0, 1] as [number, number],
  respondTo: 'mentions' as const,
  ignoreBots: true,
  reconnect: {
    backoffMs: [1_000, 2_000, 5_000, 15_000, 60_000],
    maxAttempts: 50,
    /** A connection must stay up this long after READY before the attempt count resets. */
    healthyAfterMs: 60_000,
    /** Wait after close 4008 before resuming: the 120 / 60 s window must drain. */
    rateLimitedWaitMs: 60_000,
    /** Refused Resumes in a row before a new session (never a Resume loop). */
    maxResumeFailures: 2,
    /** Random wait before Identify after op 9 false / 4007 / 4009 (old docs: 1-5 s). */
    invalidSessionWaitMs: [1_000, 5_000] as [number, number],
    /** Identifies of one shard no closer than this (max_concurrency per 5 s). */
    identifyIntervalMs: 5_000,
  },
  timeouts: {
    connectMs: 30_000,
    helloMs: 20_000,
    readyMs: 15_000,
    /** ACK slack after a heartbeat; capped at 0.45 × the interval (DESIGN §9). */
    heartbeatAckMs: 10_000,
    restMs: 15_000,
    closeMs: 2_000,
  },
  /** Gateway commands per window per connection, heartbeats included (docs: 120 / 60 s). */
  gatewayLimit: { commands: 120, windowMs: 60_000 },
  maxPayloadBytes: 4 * 1024 * 1024,
  send: {
    maxAttempts: 4,
    /** Discord's limit; UTF-16 units are never fewer than code points, so this is safe. */
    maxTextLength: 2_000,
    retryDelayMs: 1_000,
    maxRetryDelayMs: 30_000,
    allowedMentions: [] as ('users' | 'roles' | 'everyone')[],
    /** Global REST limit per bot (docs: 50 / s). */
    globalPerSecond: 50,
    /** 401/403/429 answers per 10 min before sends pause (the IP ban comes at 10,000). */
    invalidRequestLimit: 2_500,
  },
  jitter: true,
} as const;

const ms = z.number().int().nonnegative().max(2_147_483_647);
const positiveMs = z.number().int().positive().max(2_147_483_647);
const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//i.test(u), 'must be an http(s) URL');

/**
 * A bot token is three dot-separated parts today; only whitespace (a pasted line break, a
 * `Bot ` prefix) is refused here, so a future token format still loads. Discord's 4004 or
 * 401 is the real check.
 */
const TOKEN_SHAPE = /^\S+$/;

export const discordSchema = z
  .object({
    enabled: z.boolean().default(true),
    type: z.literal('discord').optional(),
    token: z
      .instanceof(Secret, { message: 'required (token, token_file or token_credential)' })
      .refine(
        (s) => TOKEN_SHAPE.test(s.reveal()),
        'must be the bare token, without spaces or a "Bot " prefix',
      ),
    api_base: httpUrl.default(DEFAULTS.apiBase),
    /** Overrides the URL `GET /gateway/bot` returns (its limits are still read). */
    gateway_url: z
      .string()
      .url()
      .refine((u) => /^wss?:\/\//i.test(u), 'must be a ws(s) URL')
      .optional(),
    intents: z
      .array(z.enum(INTENT_NAMES))
      .min(1)
      .default([...DEFAULTS.intents]),
    shard: z
      .tuple([z.number().int().nonnegative(), z.number().int().positive()])
      .refine(([id, count]) => id < count, 'shard id must be below the shard count')
      .default([...DEFAULTS.shard]),
    respond_to: z.enum(['mentions', 'all']).default(DEFAULTS.respondTo),
    ignore_bots: z.boolean().default(DEFAULTS.ignoreBots),
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
        invalid_session_wait_ms: z
          .tuple([ms, ms])
          .refine(([lo, hi]) => lo <= hi, 'the first bound must not exceed the second')
          .default([...DEFAULTS.reconnect.invalidSessionWaitMs]),
        identify_interval_ms: ms.default(DEFAULTS.reconnect.identifyIntervalMs),
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
        close_ms: positiveMs.default(DEFAULTS.timeouts.closeMs),
      })
      .strict()
      .default({}),
    gateway_limit: z
      .object({
        commands: z.number().int().min(3).max(120).default(DEFAULTS.gatewayLimit.commands),
        window_ms: positiveMs.default(DEFAULTS.gatewayLimit.windowMs),
      })
      .strict()
      .default({}),
    max_payload_bytes: z
      .number()
      .int()
      .min(4096)
      .max(64 * 1024 * 1024)
      .default(DEFAULTS.maxPayloadBytes),
    send: z
      .object({
        max_attempts: z.number().int().positive().max(20).default(DEFAULTS.send.maxAttempts),
        max_text_length: z.number().int().min(16).max(2_000).default(DEFAULTS.send.maxTextLength),
        retry_delay_ms: ms.default(DEFAULTS.send.retryDelayMs),
        max_retry_delay_ms: ms.default(DEFAULTS.send.maxRetryDelayMs),
        allowed_mentions: z
          .array(z.enum(['users', 'roles', 'everyone']))
          .default([...DEFAULTS.send.allowedMentions]),
        global_per_second: z.number().int().positive().default(DEFAULTS.send.globalPerSecond),
        invalid_request_limit: z
          .number()
          .int()
          .positive()
          .max(9_000)
          .default(DEFAULTS.send.invalidRequestLimit),
      })
      .strict()
      .default({}),
    jitter: z.boolean().default(DEFAULTS.jitter),
  })
  .strict();

export type DiscordConfig = z.output<typeof discordSchema>;

export interface DiscordSettings {
  token: Secret;
  apiBase: string;
  gatewayUrl: string | null;
  intents: number;
  shard: readonly [number, number];
  respondTo: 'mentions' | 'all';
  ignoreBots: boolean;
  reconnect: {
    backoffMs: readonly number[];
    maxAttempts: number;
    healthyAfterMs: number;
    rateLimitedWaitMs: number;
    maxResumeFailures: number;
    invalidSessionWaitMs: readonly [number, number];
    identifyIntervalMs: number;
  };
  timeouts: {
    connectMs: number;
    helloMs: number;
    readyMs: number;
    heartbeatAckMs: number;
    restMs: number;
    closeMs: number;
  };
  gatewayLimit: { commands: number; windowMs: number };
  maxPayloadBytes: number;
  send: {
    maxAttempts: number;
    maxTextLength: number;
    retryDelayMs: number;
    maxRetryDelayMs: number;
    allowedMentions: readonly ('users' | 'roles' | 'everyone')[];
    globalPerSecond: number;
    invalidRequestLimit: number;
  };
  jitter: boolean;
}

/** The bot's user id: the first token part is the decimal id in base64 (public, not secret). */
export function botIdOf(token: Secret): string | null {
  const head = token.reveal().split('.')[0] ?? '';
  const id = Buffer.from(head, 'base64url').toString('utf8');
  return /^\d{5,20}$/.test(id) ? id : null;
}

/**
 * The non-secret identity of the token for the credential lock: the bot id, or for a token
 * of another shape a short one-way fingerprint (12 hex digits of SHA-256 reveal nothing).
 */
export function credentialIdentity(token: Secret): string {
  const id = botIdOf(token);
  if (id !== null) return `discord:${id}`;
  return `discord:sha256:${createHash('sha256').update(token.reveal()).digest('hex').slice(0, 12)}`;
}

export function hasIntent(settings: DiscordSettings, name: keyof typeof INTENTS): boolean {
  return (settings.intents & INTENTS[name]) !== 0;
}

export function toSettings(config: DiscordConfig): DiscordSettings {
  return {
    token: config.token,
    apiBase: config.api_base.replace(/\/+$/, ''),
    gatewayUrl: config.gateway_url ?? null,
    intents: intentsMask(config.intents),
    shard: config.shard,
    respondTo: config.respond_to,
    ignoreBots: config.ignore_bots,
    reconnect: {
      backoffMs: config.reconnect.backoff_ms,
      maxAttempts: config.reconnect.max_attempts,
      healthyAfterMs: config.reconnect.healthy_after_ms,
      rateLimitedWaitMs: config.reconnect.rate_limited_wait_ms,
      maxResumeFailures: config.reconnect.max_resume_failures,
      invalidSessionWaitMs: config.reconnect.invalid_session_wait_ms,
      identifyIntervalMs: config.reconnect.identify_interval_ms,
    },
    timeouts: {
      connectMs: config.timeouts.connect_ms,
      helloMs: config.timeouts.hello_ms,
      readyMs: config.timeouts.ready_ms,
      heartbeatAckMs: config.timeouts.heartbeat_ack_ms,
      restMs: config.timeouts.rest_ms,
      closeMs: config.timeouts.close_ms,
    },
    gatewayLimit: {
      commands: config.gateway_limit.commands,
      windowMs: config.gateway_limit.window_ms,
    },
    maxPayloadBytes: config.max_payload_bytes,
    send: {
      maxAttempts: config.send.max_attempts,
      maxTextLength: config.send.max_text_length,
      retryDelayMs: config.send.retry_delay_ms,
      maxRetryDelayMs: config.send.max_retry_delay_ms,
      allowedMentions: config.send.allowed_mentions,
      globalPerSecond: config.send.global_per_second,
      invalidRequestLimit: config.send.invalid_request_limit,
    },
    jitter: config.jitter,
  };
}
