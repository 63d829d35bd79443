import { z } from 'zod';
import { Secret } from '../../config/secret.js';
// Registered wherever the config is: `check` and the docs test see the broker's codes too.
import './errors.js';

/** Production defaults of the broker keys (docs/scale-out.md, docs/configuration.md). */
export const DEFAULTS = {
  servers: ['nats://127.0.0.1:4222'],
  stream: 'HERMES',
  subjectPrefix: 'hermes',
  /** Fixed once chosen: events of a chat always land in the same partition (see subjects.ts). */
  partitions: 16,
  /** A message not acked within this long is delivered again (a worker that died). */
  ackWaitMs: 30_000,
  /** Deliveries of one message before the broker gives up on it. */
  maxDeliver: 5,
  /** A reply that reaches the gateway later than this after its event goes to the dead letters. */
  replyTimeoutMs: 60 * 60_000,
  /** One publish waits this long for the broker's ack before it is tried again. */
  publishTimeoutMs: 5_000,
  /** First reconnect / republish wait; doubles up to reconnectWaitMaxMs. */
  reconnectWaitMs: 250,
  reconnectWaitMaxMs: 5_000,
  /** A broker out of reach (or a stream full) this long ends the process: exit 1, systemd restarts. */
  unreachableBudgetMs: 5 * 60_000,
  /** Stream limits: what the broker keeps before it refuses new events (back-pressure). */
  maxMsgs: 1_000_000,
  maxBytes: 1024 * 1024 * 1024,
  maxAgeMs: 24 * 60 * 60_000,
  /** Nats-Msg-Id values seen within this window are dropped by the broker (redeliveries). */
  duplicateWindowMs: 10 * 60_000,
  /** Stream replicas: 1 on a single server, 3 on a 3-node cluster. */
  replicas: 1,
} as const;

const ms = z.number().int().positive().max(2_147_483_647);
const count = z.number().int().positive().max(1_000_000_000);

const secret = (what: string): z.ZodType<Secret, z.ZodTypeDef, unknown> =>
  z.instanceof(Secret, {
    message: `expected ${what} from the environment ("\${VAR}"), a *_file or a *_credential key`,
  });

/** A token usable inside a subject: letters, digits, `_` and `-` only. */
const subjectToken = z
  .string()
  .regex(/^[A-Za-z0-9_-]+$/, 'expected letters, digits, "_" or "-" (a subject token)');

/**
 * The broker keys the gateway's `handler: {type: nats}` and the worker's `broker:` share:
 * both sides must agree on stream, prefix and partitions.
 */
export const brokerKeys = {
  servers: z
    .array(z.string().min(1))
    .min(1)
    .default([...DEFAULTS.servers]),
  /** Auth: one of token, user + password, creds (`creds_file`); all secrets. */
  token: secret('the broker token').optional(),
  user: z.string().min(1).optional(),
  password: secret('the broker password').optional(),
  creds: secret('the broker credentials (creds_file)').optional(),
  stream: subjectToken.default(DEFAULTS.stream),
  subject_prefix: subjectToken.default(DEFAULTS.subjectPrefix),
  partitions: z.number().int().min(1).max(1024).default(DEFAULTS.partitions),
  ack_wait_ms: ms.default(DEFAULTS.ackWaitMs),
  max_deliver: z.number().int().min(1).max(1_000).default(DEFAULTS.maxDeliver),
  reply_timeout_ms: ms.default(DEFAULTS.replyTimeoutMs),
  publish_timeout_ms: ms.default(DEFAULTS.publishTimeoutMs),
  reconnect_wait_ms: ms.default(DEFAULTS.reconnectWaitMs),
  reconnect_wait_max_ms: ms.default(DEFAULTS.reconnectWaitMaxMs),
  unreachable_budget_ms: ms.default(DEFAULTS.unreachableBudgetMs),
  max_msgs: count.default(DEFAULTS.maxMsgs),
  max_bytes: z.number().int().positive().default(DEFAULTS.maxBytes),
  max_age_ms: ms.default(DEFAULTS.maxAgeMs),
  duplicate_window_ms: ms.default(DEFAULTS.duplicateWindowMs),
  replicas: z.number().int().min(1).max(5).default(DEFAULTS.replicas),
};

/** Only one way to authenticate; a user needs its password and the other way round. */
export function checkBrokerAuth(
  value: {
    token?: Secret | undefined;
    user?: string | undefined;
    password?: Secret | undefined;
    creds?: Secret | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  const ways = [value.token, value.user ?? value.password, value.creds].filter(
    (w) => w !== undefined,
  ).length;
  if (ways > 1) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: 'give only one of token, user + password and creds_file',
    });
  }
  if ((value.user === undefined) !== (value.password === undefined)) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: [value.user === undefined ? 'user' : 'password'],
      message: 'user and password go together',
    });
  }
}

export const brokerSchema = z.object(brokerKeys).strict().superRefine(checkBrokerAuth);
export type BrokerConfig = z.infer<typeof brokerSchema>;
