import { z } from 'zod';
import { Secret } from '../config/secret.js';
import { brokerKeys, checkBrokerAuth } from './nats/config.js';

/** Production defaults of every handler key, in one place (README: "Handlers"). */
export const DEFAULTS = {
  /** Handler calls at the same time, over all platforms. */
  concurrency: 8,
  /**
   * Events whose replies are being sent at the same time, over all platforms. Apart from
   * `concurrency`: a reply waiting on the platform's API must not hold a handler slot (with
   * both one bound, 8 replies in flight capped the gateway at 8 / round trip events/s).
   */
  sendConcurrency: 64,
  /** Events waiting per conversation (the one being handled is not counted). */
  queueLimit: 100,
  /** Events waiting over all conversations: bounds memory when many chats flood at once. */
  maxQueuedEvents: 10_000,
  /** An event id seen again within this window is a redelivery and is dropped. */
  dedupeWindowMs: 10 * 60_000,
  /** At most this many event ids are remembered for the dedupe window (oldest go first). */
  dedupeMaxEntries: 10_000,
  /** One `adapter.send` (including the adapter's own retries) may take this long. */
  sendTimeoutMs: 30_000,
  webhook: {
    timeoutMs: 10_000,
    maxAttempts: 3,
    retryBackoffMs: 500,
    retryBackoffMaxMs: 5_000,
    maxResponseBytes: 1024 * 1024,
  },
  openai: {
    baseUrl: 'https://api.openai.com/v1',
    timeoutMs: 60_000,
    maxHistory: 10,
    maxConversations: 1_000,
    maxAttempts: 2,
    retryBackoffMs: 1_000,
    retryBackoffMaxMs: 5_000,
    maxResponseBytes: 1024 * 1024,
  },
  command: {
    timeoutMs: 30_000,
    killGraceMs: 2_000,
    maxOutputBytes: 64 * 1024,
    /**
     * After the command exits, its output is read for at most this long: a descendant that
     * inherited stdout and lives on must not turn a finished command into a timeout.
     */
    outputDrainMs: 1_000,
  },
} as const;

const ms = z.number().int().positive().max(2_147_483_647);
const count = z.number().int().positive().max(1_000_000_000);
const bytes = z
  .number()
  .int()
  .positive()
  .max(64 * 1024 * 1024);

const httpUrl = z
  .string()
  .url()
  .refine(
    (value) => /^https?:$/.test(new URL(value).protocol),
    'expected an http:// or https:// URL',
  );

const secret = (what: string): z.ZodType<Secret, z.ZodTypeDef, unknown> =>
  z.instanceof(Secret, {
    message: `expected ${what} from the environment ("\${VAR}"), a *_file or a *_credential key`,
  });

/** Keys every handler type has: how the pipeline schedules events and delivers replies. */
const common = {
  concurrency: count.default(DEFAULTS.concurrency),
  send_concurrency: count.default(DEFAULTS.sendConcurrency),
  queue_limit: count.default(DEFAULTS.queueLimit),
  max_queued_events: count.default(DEFAULTS.maxQueuedEvents),
  dedupe_window_ms: ms.default(DEFAULTS.dedupeWindowMs),
  dedupe_max_entries: count.default(DEFAULTS.dedupeMaxEntries),
  send_timeout_ms: ms.default(DEFAULTS.sendTimeoutMs),
};

const retry = (d: { maxAttempts: number; retryBackoffMs: number; retryBackoffMaxMs: number }) => ({
  max_attempts: z.number().int().min(1).max(100).default(d.maxAttempts),
  retry_backoff_ms: ms.default(d.retryBackoffMs),
  retry_backoff_max_ms: ms.default(d.retryBackoffMaxMs),
});

export const echoHandlerSchema = z.object({ type: z.literal('echo'), ...common }).strict();

export const webhookHandlerSchema = z
  .object({
    type: z.literal('webhook'),
    ...common,
    url: httpUrl,
    secret: secret('the webhook signing secret'),
    timeout_ms: ms.default(DEFAULTS.webhook.timeoutMs),
    ...retry(DEFAULTS.webhook),
    max_response_bytes: bytes.default(DEFAULTS.webhook.maxResponseBytes),
  })
  .strict();

export const openaiHandlerSchema = z
  .object({
    type: z.literal('openai'),
    ...common,
    base_url: httpUrl.default(DEFAULTS.openai.baseUrl),
    model: z.string().min(1),
    system_prompt: z.string().optional(),
    api_key: secret('the API key').optional(),
    max_history: z.number().int().min(0).max(1_000).default(DEFAULTS.openai.maxHistory),
    max_conversations: count.default(DEFAULTS.openai.maxConversations),
    max_tokens: z.number().int().positive().optional(),
    temperature: z.number().min(0).max(2).optional(),
    timeout_ms: ms.default(DEFAULTS.openai.timeoutMs),
    ...retry(DEFAULTS.openai),
    max_response_bytes: bytes.default(DEFAULTS.openai.maxResponseBytes),
  })
  .strict();

export const commandHandlerSchema = z
  .object({
    type: z.literal('command'),
    ...common,
    argv: z.array(z.string().min(1)).min(1),
    cwd: z.string().min(1).optional(),
    /** Added to the child's minimal environment; a value may be a secret (`X_file`). */
    env: z.record(z.union([z.string(), z.instanceof(Secret)])).default({}),
    timeout_ms: ms.default(DEFAULTS.command.timeoutMs),
    kill_grace_ms: ms.default(DEFAULTS.command.killGraceMs),
    max_output_bytes: bytes.default(DEFAULTS.command.maxOutputBytes),
    output_drain_ms: ms.default(DEFAULTS.command.outputDrainMs),
  })
  .strict();

/**
 * Hands every event to a NATS JetStream broker; workers (`hermes-gateway worker`) answer
 * through it (docs/scale-out.md).
 */
export const natsHandlerSchema = z
  .object({ type: z.literal('nats'), ...common, ...brokerKeys })
  .strict();

/** The handlers that answer by themselves: what a worker runs (`worker.yaml`'s `handler:`). */
export const localHandlerSchema = z.discriminatedUnion('type', [
  echoHandlerSchema,
  webhookHandlerSchema,
  openaiHandlerSchema,
  commandHandlerSchema,
]);

/** `handler:` in the config, chosen by `type`. */
export const handlerSchema = z
  .discriminatedUnion('type', [
    echoHandlerSchema,
    webhookHandlerSchema,
    openaiHandlerSchema,
    commandHandlerSchema,
    natsHandlerSchema,
  ])
  .superRefine((value, ctx) => {
    if (value.type === 'nats') checkBrokerAuth(value, ctx);
  });

export type HandlerConfig = z.infer<typeof handlerSchema>;
export type LocalHandlerConfig = z.infer<typeof localHandlerSchema>;
export type NatsHandlerConfig = z.infer<typeof natsHandlerSchema>;
export type EchoHandlerConfig = z.infer<typeof echoHandlerSchema>;
export type WebhookHandlerConfig = z.infer<typeof webhookHandlerSchema>;
export type OpenAiHandlerConfig = z.infer<typeof openaiHandlerSchema>;
export type CommandHandlerConfig = z.infer<typeof commandHandlerSchema>;

/** Parses a handler config the way the config loader does (defaults applied); for tests. */
export function parseHandlerConfig(input: unknown): HandlerConfig {
  return handlerSchema.parse(input);
}
