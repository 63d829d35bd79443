import type { JsMsg } from '@nats-io/jetstream';
import { headers, type MsgHdrs } from '@nats-io/transport-node';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { GatewayError, toGatewayError } from '../../errors.js';
import {
  apiErrorCode,
  durable,
  openBroker,
  retryWait,
  type Broker,
  type OpenBrokerOptions,
} from './broker.js';

/** JetStream API codes of a publish refused at a stream limit (messages, bytes, storage). */
const STREAM_FULL_CODES = new Set([10077, 10078, 10047, 10028]);

/** Whether a publish failed because the stream is at one of its limits. */
export function isStreamFull(err: unknown): boolean {
  const code = apiErrorCode(err);
  if (code !== undefined && STREAM_FULL_CODES.has(code)) return true;
  return (
    err instanceof Error &&
    /maximum (messages|bytes)|resource limits|insufficient/i.test(err.message)
  );
}

/** Publishes with `msgID` until the broker acks it; rejects only when `signal` aborts. */
export async function publishUntilAcked(
  broker: Broker,
  subject: string,
  data: Uint8Array,
  msgID: string,
  signal: AbortSignal,
  onRefused: (error: GatewayError) => void,
  extra: { headers?: MsgHdrs } = {},
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await broker.js.publish(subject, data, {
        msgID,
        timeout: broker.config.publish_timeout_ms,
        ...extra,
      });
      return;
    } catch (err) {
      if (signal.aborted)
        throw new GatewayError('GW_ERR_HANDLER_CANCELLED', 'publish cancelled: stopping');
      onRefused(
        isStreamFull(err)
          ? new GatewayError('GW_ERR_NATS_STREAM_FULL', `stream at its limit: ${String(err)}`, {
              details: { subject },
            })
          : toGatewayError(err, 'GW_ERR_NATS_PUBLISH'),
      );
    }
    try {
      await delay(retryWait(broker.config, attempt), undefined, { signal });
    } catch {
      throw new GatewayError('GW_ERR_HANDLER_CANCELLED', 'publish cancelled: stopping');
    }
  }
}

/**
 * Moves `m` to `<prefix>.dead.<instance>` with its reason (headers `Hermes-Reason`,
 * `Hermes-Code`, `Hermes-Subject`) and terminates it. A plain term(): nats-server 2.9 ignores
 * a term with a reason and keeps the message pending, which would stall a partition whose
 * consumer has max_ack_pending 1.
 */
export async function deadLetter(
  broker: Broker,
  instance: string,
  m: JsMsg,
  dead: { reason: string; code: string; what: 'event' | 'reply' },
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  const { reason, code } = dead;
  const h = headers();
  h.set('Hermes-Reason', reason);
  h.set('Hermes-Code', code);
  h.set('Hermes-Subject', m.subject);
  await publishUntilAcked(
    broker,
    broker.subjects.dead(instance),
    m.data,
    `dead:${m.seq}:${m.subject}`,
    signal,
    () => undefined,
    { headers: h },
  );
  m.term();
  log.warn(
    { code: 'GW_ERR_NATS_DEAD_LETTER', platform: instance, reason, stream_seq: m.seq },
    `${dead.what} sent to the dead letters (${reason})`,
  );
}

/**
 * Connects (openBroker) and then runs `start` (the consumers); a failure of either reaches
 * `onFatal` unless the side was closed meanwhile. `current()` is the broker once connected.
 */
export function connectAndStart(
  options: OpenBrokerOptions,
  start: (broker: Broker) => Promise<void>,
): { opened: Promise<Broker>; ready: Promise<void>; current: () => Broker | null } {
  let broker: Broker | null = null;
  const opened = openBroker(options).then((b) => {
    broker = b;
    return b;
  });
  const ready = opened.then(start);
  ready.catch((err: unknown) => {
    if (!options.signal.aborted) options.onFatal(toGatewayError(err, 'GW_ERR_NATS_UNREACHABLE'));
  });
  return { opened, ready, current: () => broker };
}

export interface Consuming {
  /** Stops pulling; resolves once the message in hand was handled. */
  stop(): Promise<void>;
}

/**
 * Adds (or checks) the durable consumer `name` on `stream` for `filter` and hands its
 * messages to `handle` one at a time, in order, until stopped. `handle` must not reject.
 */
export async function consumeDurable(
  broker: Broker,
  stream: string,
  name: string,
  filter: string,
  options: { maxAckPending: number; maxMessages: number },
  handle: (m: JsMsg) => Promise<void>,
  signal: AbortSignal,
  log: Logger,
): Promise<Consuming> {
  await broker.ensureConsumer(stream, durable(name, filter, broker.config, options.maxAckPending));
  const consumer = await broker.js.consumers.get(stream, name);
  const messages = await consumer.consume({ max_messages: options.maxMessages });
  const loop = (async () => {
    for await (const m of messages) {
      if (signal.aborted) break;
      await handle(m);
    }
  })().catch((err: unknown) => {
    if (!signal.aborted) {
      log.error({ code: 'GW_ERR_INTERNAL', consumer: name }, `consumer ended: ${String(err)}`);
    }
  });
  return {
    async stop() {
      messages.stop();
      await loop;
    },
  };
}
