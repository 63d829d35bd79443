import type { JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { GatewayError, toGatewayError } from '../../errors.js';
import type { BrokerConfig } from './config.js';
import type { Handler } from '../handler.js';
import type { Broker, BrokerStatus } from './broker.js';
import {
  connectAndStart,
  consumeDurable,
  deadLetter as moveToDeadLetters,
  publishUntilAcked,
  type Consuming,
} from './messaging.js';
import { decodeEvent, encodeReply, replyId, type EventMessage } from './wire.js';

export interface WorkerOptions {
  broker: BrokerConfig;
  handler: Handler;
  log: Logger;
  /** Ends the worker: credentials refused (78), broker out of reach for its budget (1). */
  onFatal: (error: GatewayError) => void;
  onStatus?: (status: BrokerStatus) => void;
}

export interface Worker {
  /** Resolves once connected and consuming every partition; rejects like openBroker. */
  readonly ready: Promise<void>;
  /** Events handled (acked) by this process. */
  readonly handled: number;
  /** Stops taking events; the one in hand per partition is cancelled and left to redelivery. */
  close(): Promise<void>;
}

/**
 * `hermes-gateway worker` (docs/scale-out.md): runs a local handler for the events of every
 * partition. Each partition has one durable consumer, shared by all workers, with
 * `max_ack_pending: 1`: at most one event of a partition is out at any time, so the events
 * of a chat (always in one partition) are handled one after the other, in order, however
 * many workers there are; different partitions run in parallel, in this worker and across
 * workers. An event is acked after its replies were published (each with the id
 * `<event id>#<ordinal>`, which the broker's duplicate window dedupes): a worker killed in
 * between leaves it unacked, another worker gets it after `ack_wait_ms`, runs the handler
 * again and its replies are dropped as duplicates by the broker. While the handler runs, the
 * worker tells the broker it is still working every half `ack_wait_ms`, so a slow handler is
 * not mistaken for a dead worker.
 */
export function createWorker(options: WorkerOptions): Worker {
  const { broker: config, handler } = options;
  const log = options.log.child({ component: 'worker' });
  const controller = new AbortController();
  const signal = controller.signal;
  const consumers: Consuming[] = [];
  let handled = 0;
  const { opened, ready, current } = connectAndStart(
    {
      config,
      log: options.log,
      name: 'hermes-gateway-worker',
      onFatal: options.onFatal,
      ...(options.onStatus ? { onStatus: options.onStatus } : {}),
      signal,
    },
    async (b) => {
      for (let p = 0; p < config.partitions; p++) {
        consumers.push(
          await consumeDurable(
            b,
            b.subjects.eventStream,
            b.subjects.workerConsumer(p),
            b.subjects.event(p),
            // One event of a partition out at a time, over all workers: per-chat order.
            { maxAckPending: 1, maxMessages: 1 },
            (m) => handleEvent(b, m),
            signal,
            log,
          ),
        );
      }
      log.info({ partitions: config.partitions, handler: handler.type }, 'worker consuming');
    },
  );

  const deadLetter = (b: Broker, instance: string, m: JsMsg, reason: string, code: string) =>
    moveToDeadLetters(b, instance, m, { reason, code, what: 'event' }, signal, log);

  async function handleEvent(b: Broker, m: JsMsg): Promise<void> {
    let message: EventMessage;
    try {
      message = decodeEvent(m.data);
    } catch {
      return deadLetter(b, 'unknown', m, 'malformed', 'GW_ERR_NATS_MALFORMED');
    }
    const { event } = message;
    if (m.info.deliveryCount > config.max_deliver) {
      // Delivered max_deliver times without an ack: it kills workers (or outlives ack_wait).
      return deadLetter(b, safeToken(event.platform), m, 'max_deliver', 'GW_ERR_NATS_DEAD_LETTER');
    }
    const heartbeat = setInterval(
      () => m.working(),
      Math.max(1, Math.floor(config.ack_wait_ms / 2)),
    );
    try {
      let replies: Array<{ text: string }>;
      try {
        replies = await handler.handle(event, signal);
      } catch (err) {
        const error = toGatewayError(err, 'GW_ERR_HANDLER_FAILED');
        if (error.code === 'GW_ERR_HANDLER_CANCELLED' || signal.aborted) {
          // Stopping: left for another worker, at once.
          m.nak();
          return;
        }
        // Like the in-process pipeline: a failed event is logged and ends unanswered.
        log.warn(
          { ...error.details, code: error.code, event_id: event.id, platform: event.platform },
          `event not answered: ${error.message}`,
        );
        replies = [];
      }
      const subject = b.subjects.reply(safeToken(event.platform));
      for (let ordinal = 0; ordinal < replies.length; ordinal++) {
        await publishUntilAcked(
          b,
          subject,
          encodeReply({
            event_id: event.id,
            instance: event.platform,
            chat: event.chat,
            reply: event.reply,
            ordinal,
            text: replies[ordinal]!.text,
            event_published_at: message.published_at,
          }),
          replyId(event.id, ordinal),
          signal,
          (error) =>
            log.warn(
              { code: error.code, event_id: event.id },
              `reply publish refused, retrying: ${error.message}`,
            ),
        );
      }
      await m.ackAck();
      handled += 1;
    } catch (err) {
      // Cancelled (stopping) or the ack was lost: the event comes again, its replies dedupe.
      if (!signal.aborted)
        log.warn(
          { code: toGatewayError(err, 'GW_ERR_NATS_PUBLISH').code, event_id: event.id },
          'event left for redelivery',
        );
    } finally {
      clearInterval(heartbeat);
    }
  }

  return {
    ready,
    get handled() {
      return handled;
    },
    async close() {
      controller.abort();
      await Promise.all(consumers.map((c) => c.stop()));
      const b = current() ?? (await opened.catch(() => null));
      await b?.close();
      await handler.close?.();
    },
  };
}

/** Instance names are subject tokens already; anything else (a foreign message) is not. */
function safeToken(value: string): string {
  return /^[A-Za-z0-9_-]+$/.test(value) ? value : 'unknown';
}
