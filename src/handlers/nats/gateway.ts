import type { JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { Adapter } from '../../adapters/contract.js';
import { GatewayError, toGatewayError } from '../../errors.js';
import type { GatewayMetrics } from '../../metrics.js';
import { RecentMap } from '../../util/recent.js';
import type { NatsHandlerConfig } from '../config.js';
import { deliver } from '../deliver.js';
import type { Handler } from '../handler.js';
import { retryWait, type Broker, type BrokerStatus } from './broker.js';
import {
  connectAndStart,
  consumeDurable,
  deadLetter as moveToDeadLetters,
  publishUntilAcked,
  type Consuming,
} from './messaging.js';
import { decodeReply, encodeEvent, replyId, type ReplyMessage } from './wire.js';

export interface NatsGatewayOptions {
  config: NatsHandlerConfig;
  adapters: Iterable<Adapter>;
  log: Logger;
  metrics: GatewayMetrics;
  /** Ends the gateway: credentials refused (78), broker out of reach for its budget (1). */
  onFatal: (error: GatewayError) => void;
  /** The broker hop's status for the state file (`broker`). */
  onStatus: (status: BrokerStatus) => void;
  now?: () => number;
}

export interface NatsGateway {
  /** The pipeline's handler: publishes each event, resolves (with no reply) once acked. */
  readonly handler: Handler;
  /** Resolves once connected and the reply consumers run; rejects like openBroker. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * The gateway's side of the broker hop (docs/scale-out.md): events out, replies in.
 *
 * - Each event is published to its chat's partition with `Nats-Msg-Id` = event id and the
 *   handler resolves only once the broker acked it: the event then counts as taken (the
 *   adapter's watermark covers the hop). A refused publish (broker down, stream full) is
 *   tried again with a doubling wait; a full stream marks the hop `degraded`, and the event
 *   holds its conversation (and its platform acknowledgement) until the broker takes it.
 * - Replies of each instance are consumed by a durable consumer named after the instance, one
 *   at a time, in stream order; each is acked only after the adapter delivered it (with its
 *   idempotency key `<event id>#<ordinal>`), so a gateway killed before the ack re-sends it
 *   after the restart and the platform drops the copy where it honours the key.
 */
export function createNatsGateway(options: NatsGatewayOptions): NatsGateway {
  const { config, metrics } = options;
  const log = options.log.child({ component: 'nats' });
  const now = options.now ?? Date.now;
  const adapters = new Map([...options.adapters].map((a) => [a.name, a]));
  const controller = new AbortController();
  const signal = controller.signal;
  /** Reply ids delivered by this process: a redelivery (ack lost) is acked, not re-sent. */
  const delivered = new RecentMap<string, true>(config.dedupe_max_entries);
  const consumers: Consuming[] = [];
  const { opened, ready, current } = connectAndStart(
    {
      config,
      log: options.log,
      name: 'hermes-gateway',
      onFatal: options.onFatal,
      onStatus: options.onStatus,
      signal,
    },
    async (b) => {
      for (const instance of adapters.keys()) {
        consumers.push(
          await consumeDurable(
            b,
            b.subjects.replyStream,
            b.subjects.replyConsumer(instance),
            b.subjects.reply(instance),
            // Prefetched in order, handled one at a time: the instance's replies keep their order.
            { maxAckPending: 1_000, maxMessages: 100 },
            (m) => handleReply(b, instance, m),
            signal,
            log,
          ),
        );
      }
    },
  );

  async function deadLetter(
    b: Broker,
    instance: string,
    m: JsMsg,
    reason: string,
    code: string,
  ): Promise<void> {
    await moveToDeadLetters(b, instance, m, { reason, code, what: 'reply' }, signal, log);
    metrics.brokerDeadLettersTotal.inc({ platform: instance, reason });
  }

  async function handleReply(b: Broker, instance: string, m: JsMsg): Promise<void> {
    let reply: ReplyMessage;
    try {
      reply = decodeReply(m.data);
    } catch {
      return deadLetter(b, instance, m, 'malformed', 'GW_ERR_NATS_MALFORMED');
    }
    const adapter = adapters.get(reply.instance);
    if (adapter === undefined || reply.instance !== instance) {
      return deadLetter(b, instance, m, 'unknown_instance', 'GW_ERR_NATS_DEAD_LETTER');
    }
    const id = replyId(reply.event_id, reply.ordinal);
    if (delivered.get(id) !== undefined) {
      await m.ackAck().catch(() => undefined);
      return;
    }
    if (now() - reply.event_published_at > config.reply_timeout_ms) {
      return deadLetter(b, instance, m, 'late', 'GW_ERR_NATS_DEAD_LETTER');
    }
    try {
      await deliver(
        adapter,
        {
          chat: reply.chat,
          text: reply.text,
          reply: reply.reply,
          idempotency: { key: id, ordinal: reply.ordinal },
        },
        { timeoutMs: config.send_timeout_ms, signal, metrics },
      );
    } catch (err) {
      const error = toGatewayError(err, 'GW_ERR_DELIVERY_FAILED');
      if (signal.aborted) return; // Stopping: not acked, redelivered to the next process.
      const deliveries = m.info.deliveryCount;
      log.warn(
        { code: error.code, event_id: reply.event_id, platform: instance, attempt: deliveries },
        `reply not delivered: ${error.message}`,
      );
      if (deliveries >= config.max_deliver) {
        return deadLetter(b, instance, m, 'delivery_failed', error.code);
      }
      m.nak(retryWait(config, deliveries));
      return;
    }
    delivered.set(id, true);
    // Acked only now, and the broker's confirmation awaited: a crash before it re-sends.
    await m.ackAck().catch(() => undefined);
  }

  const handler: Handler = {
    type: 'nats',
    async handle(event, callerSignal) {
      const b = current() ?? (await abortable(opened, callerSignal));
      const subject = b.subjects.event(b.subjects.partitionOf(event.platform, event.chat));
      let refused = false;
      await publishUntilAcked(
        b,
        subject,
        encodeEvent(event, now()),
        event.id,
        anySignal(callerSignal, signal),
        (error) => {
          if (!refused)
            log.warn(
              { code: error.code, event_id: event.id, platform: event.platform },
              `publish refused, retrying: ${error.message}`,
            );
          refused = true;
          if (error.code === 'GW_ERR_NATS_STREAM_FULL')
            b.setDegraded(`${error.code}: events wait for the workers`);
        },
      );
      if (refused) b.setDegraded(null);
      return [];
    },
  };

  return {
    handler,
    ready,
    async close() {
      controller.abort();
      await Promise.all(consumers.map((c) => c.stop()));
      const b = current() ?? (await opened.catch(() => null));
      await b?.close();
    },
  };
}

function anySignal(a: AbortSignal, b: AbortSignal): AbortSignal {
  return AbortSignal.any([a, b]);
}

async function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) throw new GatewayError('GW_ERR_HANDLER_CANCELLED', 'cancelled: stopping');
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void =>
      reject(new GatewayError('GW_ERR_HANDLER_CANCELLED', 'cancelled: stopping'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(toGatewayError(err, 'GW_ERR_NATS_UNREACHABLE'));
      },
    );
  });
}
