import {
  AckPolicy,
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type ConsumerConfig,
  type JetStreamClient,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import {
  AuthorizationError,
  connect,
  credsAuthenticator,
  nanos,
  type NatsConnection,
} from '@nats-io/transport-node';
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { GatewayError } from '../../errors.js';
import type { BrokerConfig } from './config.js';
import './errors.js';

import type { BrokerStatus } from '../../state/schema.js';

export type { BrokerStatus };

/**
 * Subjects and names on the broker. Events go to `<prefix>.ev.<partition>`: the partition is
 * a hash of instance + chat, so one chat always lands in one partition (its order holds) while
 * chats spread over all of them. Chat ids never appear in a subject (they may hold `.`, `*`,
 * `>` or spaces); instance names are subject tokens already ([a-z0-9_-]).
 */
export class Subjects {
  constructor(private readonly config: BrokerConfig) {}

  partitionOf(instance: string, chat: { type: string; id: string }): number {
    const digest = createHash('sha1').update(`${instance}\0${chat.type}\0${chat.id}`).digest();
    return digest.readUInt32BE(0) % this.config.partitions;
  }

  event(partition: number): string {
    return `${this.config.subject_prefix}.ev.${partition}`;
  }

  reply(instance: string): string {
    return `${this.config.subject_prefix}.reply.${instance}`;
  }

  dead(instance: string): string {
    return `${this.config.subject_prefix}.dead.${instance}`;
  }

  get eventStream(): string {
    return this.config.stream;
  }

  get replyStream(): string {
    return `${this.config.stream}_REPLIES`;
  }

  /** The durable consumer of partition `p`, shared by every worker. */
  workerConsumer(partition: number): string {
    return `${this.config.stream}_p${partition}`;
  }

  /** The durable consumer of one instance's replies, kept by its gateway across restarts. */
  replyConsumer(instance: string): string {
    return `${this.config.stream}_gw_${instance}`;
  }
}

export interface Broker {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly subjects: Subjects;
  readonly config: BrokerConfig;
  /** Adds (or checks) the durable consumer `config` names on `stream`. */
  ensureConsumer(
    stream: string,
    config: Partial<ConsumerConfig> & { durable_name: string },
  ): Promise<void>;
  /**
   * Marks the hop degraded (a full stream: events wait) with a reason, or clears it (null);
   * shown while the connection is up.
   */
  setDegraded(reason: string | null): void;
  /** Closes the connection (pending acks flushed); idempotent. */
  close(): Promise<void>;
}

export interface OpenBrokerOptions {
  config: BrokerConfig;
  log: Logger;
  /** The connection's name as the server lists it (`hermes-gateway`, `hermes-gateway-worker`). */
  name: string;
  /** A failure that ends the process: credentials refused (78), budget spent (1). */
  onFatal: (error: GatewayError) => void;
  /** Every change of the connection's state. */
  onStatus?: (status: BrokerStatus) => void;
  signal: AbortSignal;
}

/** Doubling wait of `attempt` (1-based), capped: reconnects, republishes, redeliveries. */
export function retryWait(
  config: { reconnect_wait_ms: number; reconnect_wait_max_ms: number },
  attempt: number,
): number {
  return Math.min(
    config.reconnect_wait_max_ms,
    config.reconnect_wait_ms * 2 ** Math.min(attempt - 1, 20),
  );
}

/** Whether `err` is the broker refusing our credentials. */
export function isAuthError(err: unknown): boolean {
  if (err instanceof AuthorizationError) return true;
  const text = err instanceof Error ? `${err.name} ${err.message}` : String(err);
  return /authorization|authentication/i.test(text);
}

function authError(config: BrokerConfig): GatewayError {
  return new GatewayError(
    'GW_ERR_NATS_AUTH',
    'the broker refused the credentials (token, user + password or creds_file)',
    { details: { servers: config.servers } },
  );
}

/** A JetStream API error code, if `err` is one (10077: stream full, 10059: not found...). */
export function apiErrorCode(err: unknown): number | undefined {
  if (err instanceof JetStreamApiError) return err.code;
  return undefined;
}

/**
 * Connects to the broker and makes sure both streams exist. Reconnects forever with a
 * doubling wait (the client's own default stops after 10 tries); the budget turns a broker
 * out of reach for `unreachable_budget_ms` into `GW_ERR_NATS_UNREACHABLE` through onFatal.
 * Rejects with `GW_ERR_NATS_AUTH` (wrong credentials), `GW_ERR_NATS_UNREACHABLE` (budget spent
 * before the first connection) or `GW_ERR_NATS_SETUP`.
 */
export async function openBroker(options: OpenBrokerOptions): Promise<Broker> {
  const { config, log } = options;
  const blog = log.child({ component: 'broker' });
  let status: BrokerStatus = { state: 'connecting', since: new Date().toISOString(), reason: null };
  let connected = false;
  let degraded: string | null = null;
  const setStatus = (wanted: BrokerStatus['state'], why: string | null): void => {
    connected = wanted === 'connected';
    const [state, reason] =
      connected && degraded !== null ? ['degraded' as const, degraded] : [wanted, why];
    if (status.state === state && status.reason === reason) return;
    status = { state, since: new Date().toISOString(), reason };
    options.onStatus?.(status);
  };
  options.onStatus?.(status);

  let budgetTimer: NodeJS.Timeout | null = null;
  let rejectStart: ((error: GatewayError) => void) | null = null;
  const armBudget = (): void => {
    if (budgetTimer !== null) return;
    budgetTimer = setTimeout(() => {
      budgetTimer = null;
      const error = new GatewayError(
        'GW_ERR_NATS_UNREACHABLE',
        `the broker was out of reach for ${config.unreachable_budget_ms} ms`,
        { details: { servers: config.servers, budget_ms: config.unreachable_budget_ms } },
      );
      if (rejectStart) rejectStart(error);
      else options.onFatal(error);
    }, config.unreachable_budget_ms);
  };
  const clearBudget = (): void => {
    if (budgetTimer !== null) clearTimeout(budgetTimer);
    budgetTimer = null;
  };

  let attempt = 0;
  const auth: Record<string, unknown> = {};
  if (config.token) auth.token = config.token.reveal();
  if (config.user !== undefined && config.password) {
    auth.user = config.user;
    auth.pass = config.password.reveal();
  }
  if (config.creds)
    auth.authenticator = credsAuthenticator(new TextEncoder().encode(config.creds.reveal()));

  armBudget();
  let nc: NatsConnection;
  try {
    nc = await new Promise<NatsConnection>((resolve, reject) => {
      rejectStart = reject;
      options.signal.addEventListener(
        'abort',
        () =>
          reject(
            new GatewayError('GW_ERR_HANDLER_CANCELLED', 'stopping before the broker answered'),
          ),
        { once: true },
      );
      connect({
        servers: config.servers,
        name: options.name,
        ...auth,
        // Forever: the budget above decides when out of reach is too long, not a try count.
        maxReconnectAttempts: -1,
        waitOnFirstConnect: true,
        reconnectDelayHandler: () => retryWait(config, ++attempt),
        timeout: config.publish_timeout_ms,
      }).then(resolve, (err: unknown) => {
        reject(
          isAuthError(err)
            ? authError(config)
            : new GatewayError(
                'GW_ERR_NATS_UNREACHABLE',
                `cannot connect to the broker: ${String(err)}`,
                {
                  details: { servers: config.servers },
                  cause: err,
                },
              ),
        );
      });
    });
  } catch (err) {
    clearBudget();
    if (err instanceof GatewayError) throw err;
    throw new GatewayError(
      'GW_ERR_NATS_UNREACHABLE',
      `cannot connect to the broker: ${String(err)}`,
      {
        details: { servers: config.servers },
        cause: err,
      },
    );
  } finally {
    rejectStart = null;
  }
  clearBudget();
  attempt = 0;
  setStatus('connected', null);
  blog.info({ server: nc.getServer() }, 'connected to the broker');

  let closing = false;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        blog.warn({ code: 'GW_ERR_NATS_PUBLISH' }, 'broker connection lost: reconnecting');
        setStatus('disconnected', 'GW_ERR_NATS_PUBLISH: broker connection lost');
        armBudget();
      } else if (s.type === 'reconnect') {
        attempt = 0;
        clearBudget();
        blog.info({ server: nc.getServer() }, 'reconnected to the broker');
        setStatus('connected', null);
      } else if (s.type === 'error' && isAuthError(s.error)) {
        options.onFatal(authError(config));
      }
    }
  })().catch(() => undefined);
  void nc.closed().then((err) => {
    clearBudget();
    if (closing) return;
    if (err && isAuthError(err)) options.onFatal(authError(config));
    else
      options.onFatal(
        new GatewayError('GW_ERR_NATS_UNREACHABLE', `the broker connection closed: ${String(err)}`),
      );
  });

  const jsm = await jetstreamManager(nc, { timeout: config.publish_timeout_ms });
  const js = jetstream(nc, { timeout: config.publish_timeout_ms });
  const subjects = new Subjects(config);
  const broker: Broker = {
    nc,
    js,
    jsm,
    subjects,
    config,
    setDegraded(reason) {
      if (degraded === reason) return;
      degraded = reason;
      if (connected) setStatus('connected', null);
    },
    ensureConsumer: async (stream, consumer) => {
      try {
        await jsm.consumers.add(stream, consumer);
      } catch (err) {
        throw setupError(`consumer ${consumer.durable_name} on stream ${stream}`, err);
      }
    },
    async close() {
      if (closing) return;
      closing = true;
      clearBudget();
      await nc.drain().catch(() => nc.close());
    },
  };
  try {
    // Work queues: a message is gone once acked; the limits bound what waits.
    await ensureStream(jsm, streamConfig(config, subjects.eventStream, ['ev']));
    await ensureStream(jsm, streamConfig(config, subjects.replyStream, ['reply', 'dead']));
  } catch (err) {
    await broker.close();
    if (isAuthError(err)) throw authError(config);
    throw err;
  }
  return broker;
}

function setupError(what: string, err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  return new GatewayError(
    'GW_ERR_NATS_SETUP',
    `${what}: ${err instanceof Error ? err.message : String(err)}`,
    {
      details: { api_code: apiErrorCode(err) },
      cause: err,
    },
  );
}

/** One of our streams: file storage, work queue, refusing new messages at its limits. */
function streamConfig(
  config: BrokerConfig,
  name: string,
  kinds: string[],
): Partial<StreamConfig> & { name: string } {
  return {
    name,
    subjects: kinds.map((kind) => `${config.subject_prefix}.${kind}.*`),
    retention: RetentionPolicy.Workqueue,
    discard: DiscardPolicy.New,
    storage: StorageType.File,
    max_msgs: config.max_msgs,
    max_bytes: config.max_bytes,
    max_age: nanos(config.max_age_ms),
    duplicate_window: nanos(Math.min(config.duplicate_window_ms, config.max_age_ms)),
    num_replicas: config.replicas,
  };
}

/** Adds the stream when it is missing; an existing one is left as its operator set it. */
async function ensureStream(
  jsm: JetStreamManager,
  config: Partial<StreamConfig> & { name: string },
): Promise<void> {
  try {
    await jsm.streams.info(config.name);
    return;
  } catch (err) {
    // 10059: stream not found. Anything else (timeout, permissions) is a setup failure.
    if (apiErrorCode(err) !== 10059) throw setupError(`stream ${config.name}`, err);
  }
  try {
    await jsm.streams.add(config);
  } catch (err) {
    throw setupError(`stream ${config.name}`, err);
  }
}

/** Consumer settings every durable of ours has. */
export function durable(
  name: string,
  filter: string,
  config: BrokerConfig,
  maxAckPending: number,
): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    durable_name: name,
    filter_subject: filter,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(config.ack_wait_ms),
    max_deliver: -1,
    max_ack_pending: maxAckPending,
  };
}
