import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { Adapter, InboundEvent } from '../adapters/contract.js';
import { toGatewayError } from '../errors.js';
import { metrics as sharedMetrics, type GatewayMetrics } from '../metrics.js';
import type { HandlerConfig } from './config.js';
import { createHandler } from './create.js';
import { deliver } from './deliver.js';
import './errors.js';
import { conversationKey, type Handler } from './handler.js';
import { IdWindow } from '../util/id-window.js';
import type { DeliveryStore, PendingReply } from '../delivery/store.js';

const OVERFLOW = 'GW_ERR_HANDLER_QUEUE_OVERFLOW';

export interface PipelineOptions {
  /** The gateway config, or just its `handler` section. */
  config: { handler: HandlerConfig; platforms?: Record<string, { type: string } | undefined> };
  adapters: Iterable<Adapter>;
  log: Logger;
  /** Where to count; the process's shared set by default. */
  metrics?: GatewayMetrics;
  /** Replaces the handler `config.handler.type` names (embedding, tests of the scheduling). */
  handler?: Handler;
  /** Clock of the dedupe window; Date.now by default. */
  now?: () => number;
  /** At most one overflow summary line per this many ms (after the first drop's own line). */
  overflowLogIntervalMs?: number;
  /**
   * The delivery store (docs/delivery.md): answered events are not handled again, replies are
   * written before their first send attempt, and those a previous process left in flight are
   * re-sent (with their idempotency keys) before anything else of their conversation.
   */
  delivery?: DeliveryStore | null;
}

export interface Pipeline {
  /**
   * Accepts one inbound event; never throws, never blocks the adapter. `done` is called once
   * the event has ended: answered, failed with a logged code, or dropped on purpose (a
   * duplicate's once the original has ended). It is never called for an event cut short by
   * a stop: that one must come again after the restart.
   */
  dispatch(event: InboundEvent, done?: () => void): void;
  /**
   * Stops accepting events (later ones are dropped without `done`: the platform replays them
   * after the restart) and waits up to `timeoutMs` for those accepted to end. Resolves true
   * when all ended.
   */
  drain(timeoutMs: number): Promise<boolean>;
  /** Resolves once no event is waiting or being handled. */
  idle(): Promise<void>;
  /** Events waiting and events being handled, right now. */
  readonly load: { waiting: number; running: number };
  /** Drops waiting events, cancels the handler calls in flight and waits for them to settle. */
  close(): Promise<void>;
}

/** Overflow drops after the first are summed up in at most one log line per this long. */
const OVERFLOW_LOG_INTERVAL_MS = 1_000;

interface Conversation {
  readonly key: string;
  readonly queue: InboundEvent[];
  running: boolean;
}

/** Event ids seen recently, bounded both by age and by count (oldest forgotten first). */
class RecentIds {
  private readonly seen: IdWindow;

  constructor(
    private readonly windowMs: number,
    maxEntries: number,
  ) {
    this.seen = new IdWindow(maxEntries);
  }

  /** Whether `id` was added within the window before `now`. */
  has(id: string, now: number): boolean {
    const at = this.seen.addedAt(id);
    return at !== undefined && now - at < this.windowMs;
  }

  add(id: string, now: number): void {
    this.seen.add(id, now);
    this.seen.dropAddedUpTo(now - this.windowMs);
  }
}

/**
 * Carries events from adapters to the handler and replies back (README: "Message flow").
 *
 * - Events of one conversation (platform + chat) are handled one at a time, in arrival
 *   order, replies included; different conversations run concurrently, at most
 *   `handler.concurrency` handler calls at once, taking turns (a busy chat cannot starve the
 *   others). An event whose replies are being sent hands its handler slot on, up to
 *   `handler.send_concurrency` such events at once (beyond that it keeps its slot: the
 *   platform's pace then holds the handler back).
 * - At most `queue_limit` events wait per conversation and `max_queued_events` in all; an
 *   event beyond either is dropped and counted. The first drop is logged at once
 *   (`GW_ERR_HANDLER_QUEUE_OVERFLOW`, with the event); while drops go on, one summary line
 *   per second gives their count, so an overload cannot become a flood of synchronous logs.
 * - An event id accepted within `dedupe_window_ms` is a redelivery: dropped, logged at debug
 *   and counted.
 * - Each reply goes through `adapter.send` under `send_timeout_ms`; a failure is logged with
 *   its code and counted, and the conversation moves on.
 */
export function createPipeline(options: PipelineOptions): Pipeline {
  const config = options.config.handler;
  const metrics = options.metrics ?? sharedMetrics;
  const log = options.log.child({ component: 'pipeline' });
  const handler = options.handler ?? createHandler(config, { log: options.log });
  const adapters = new Map([...options.adapters].map((a) => [a.name, a]));
  const clock = options.now ?? Date.now;
  const conversations = new Map<string, Conversation>();
  const store = options.delivery ?? null;
  /**
   * The dedupe window of accepted ids. Not kept when the store's answered set covers it: an
   * accepted event is then in `endings` until it ends and in the answered set from then on
   * (an event that did not end is cut short by a stop and must come again). Covering means
   * remembering as long, and as many ids as this window plus every event that can be in
   * flight (those may end after newer ones).
   */
  const recent =
    store !== null &&
    store.covers(
      config.dedupe_window_ms,
      config.dedupe_max_entries +
        config.max_queued_events +
        config.concurrency +
        config.send_concurrency,
    )
      ? null
      : new RecentIds(config.dedupe_window_ms, config.dedupe_max_entries);
  /**
   * `done` callbacks of accepted events by event id, duplicates' included (see dispatch);
   * without `recent`, every accepted event is here until it ends.
   */
  const endings = new Map<string, Array<() => void>>();
  /** Replies a previous process left in flight, by event id: sent instead of the handler's. */
  const recovered = new Map<string, PendingReply[]>();
  /** Whether the previous process left replies to re-send (only then can a replay queue behind one). */
  let resent = false;
  let draining = false;
  /** Conversations with waiting events and nothing running, in the order they became ready. */
  const ready: Conversation[] = [];
  const controller = new AbortController();
  // Every handler call and every send in flight listens on this signal: up to concurrency +
  // send_concurrency at once by design (a few listeners per handler call). Node's default of
  // 10 would print a leak warning for what is the bounded, intended number.
  setMaxListeners(4 * (config.concurrency + config.send_concurrency), controller.signal);
  let waiting = 0;
  /** Events holding a handler slot. */
  let running = 0;
  /** Events sending their replies after handing their handler slot on. */
  let sending = 0;
  let closed = false;
  let idleWaiters: Array<() => void> = [];

  const latency = metrics.handlerLatencySeconds.labels(handler.type);
  const unbindLoad = metrics.bindPipelineLoad(() => waiting + running + sending);

  /** Wakes idle() (and close()) once nothing is waiting or running. */
  function settled(): void {
    if (waiting + running + sending === 0 && idleWaiters.length > 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  const overflowLogIntervalMs = options.overflowLogIntervalMs ?? OVERFLOW_LOG_INTERVAL_MS;
  /** Set while drops are being summed up instead of logged one by one. */
  let overflowTimer: NodeJS.Timeout | null = null;
  const unlogged = { conversation: 0, pipeline: 0 };

  function overflow(event: InboundEvent, conversationWaiting: number): void {
    metrics.queueOverflowTotal.inc({ platform: event.platform });
    const conversationFull = conversationWaiting >= config.queue_limit;
    if (overflowTimer !== null) {
      if (conversationFull) unlogged.conversation += 1;
      else unlogged.pipeline += 1;
      return;
    }
    log.warn(
      {
        code: OVERFLOW,
        event_id: event.id,
        platform: event.platform,
        chat_type: event.chat.type,
        chat_id: event.chat.id,
      },
      conversationFull
        ? `conversation queue full (${config.queue_limit} waiting): event dropped`
        : `pipeline queue full (${config.max_queued_events} waiting): event dropped`,
    );
    armOverflowTimer();
  }

  function armOverflowTimer(): void {
    overflowTimer = setTimeout(() => {
      overflowTimer = null;
      // Drops went on: sum them up and keep summing. None: the next drop is logged at once.
      if (logUnlogged()) armOverflowTimer();
    }, overflowLogIntervalMs);
    overflowTimer.unref();
  }

  /** Logs the drops not logged yet, if any; false when there were none. */
  function logUnlogged(): boolean {
    const dropped = unlogged.conversation + unlogged.pipeline;
    if (dropped === 0) return false;
    log.warn(
      {
        code: OVERFLOW,
        dropped,
        conversation_full: unlogged.conversation,
        pipeline_full: unlogged.pipeline,
      },
      `queues full: ${dropped} more events dropped`,
    );
    unlogged.conversation = 0;
    unlogged.pipeline = 0;
    return true;
  }

  /**
   * Handles one event of `conversation` and delivers its replies, then hands the slot on.
   * Never rejects: every failure is logged and counted here (one promise per event: this is
   * the per-event path, bench section 1).
   */
  async function handleEvent(conversation: Conversation, event: InboundEvent): Promise<void> {
    /** Whether the event ended (answered, failed with a code); false when cut short. */
    let ended = true;
    /** Whether the event has outbox rows (replies written, or left by the previous process). */
    let outbox = false;
    /** Whether the event handed its handler slot on to send its replies. */
    let handedOn = false;
    try {
      const adapter = adapters.get(event.platform);
      if (!adapter) {
        log.error(
          { event_id: event.id, platform: event.platform },
          'event from an unknown platform',
        );
        return;
      }
      if (resent && store?.isAnswered(event.id)) {
        // A replay queued behind the re-send of its own in-flight replies.
        metrics.duplicatesDroppedTotal.inc(event.platform);
        return;
      }
      const started = performance.now();
      let replies: Array<{ text: string }>;
      const left = recovered.get(event.id);
      try {
        if (left !== undefined) {
          recovered.delete(event.id);
          replies = left;
          outbox = true;
          const fields = { event_id: event.id, platform: event.platform, replies: left.length };
          if (adapter.idempotentSends === true) {
            log.info(fields, 're-sending replies left in flight by the previous process');
          } else {
            // No idempotency key on this platform: whatever arrived before the crash arrives
            // again (at-least-once, docs/delivery.md), so it is counted and said.
            metrics.possibleDuplicateRepliesTotal.inc({ platform: event.platform }, left.length);
            log.warn(
              fields,
              're-sending replies left in flight by the previous process without an idempotency key: the chat may see them twice',
            );
          }
        } else {
          replies = await handler.handle(event, controller.signal);
          latency.observe((performance.now() - started) / 1000);
        }
      } catch (err) {
        latency.observe((performance.now() - started) / 1000);
        const error = toGatewayError(err, 'GW_ERR_HANDLER_FAILED');
        metrics.handlerErrorsTotal.inc({ handler: handler.type, code: error.code });
        const fields = {
          ...error.details,
          code: error.code,
          event_id: event.id,
          platform: event.platform,
        };
        // Cut short by close(): not handled, whatever the handler made of the abort.
        if (error.code === 'GW_ERR_HANDLER_CANCELLED' || controller.signal.aborted) {
          ended = false;
          log.debug(fields, error.message);
        } else log.warn(fields, `event not answered: ${error.message}`);
        return;
      }
      if (store !== null && left === undefined && replies.length > 0) {
        // The idempotency keys are on disk before the first attempt: a crash from here on
        // re-sends these very replies, which the platform drops if they arrived.
        outbox = true;
        try {
          await store.writeIntents(
            replies.map((reply, ordinal) => ({
              eventId: event.id,
              instance: event.platform,
              chat: event.chat,
              reply: event.reply,
              ordinal,
              text: reply.text,
            })),
          );
        } catch {
          // The store is broken: the gateway is ending (exit 70); nothing is sent unrecorded.
          ended = false;
          return;
        }
      }
      if (replies.length > 0 && sending < config.send_concurrency) {
        // The conversation stays busy until its replies are sent (order); the handler slot
        // goes to the next event now.
        handedOn = true;
        running -= 1;
        sending += 1;
        if (!closed) pump();
      }
      for (let ordinal = 0; ordinal < replies.length; ordinal++) {
        const message = {
          chat: event.chat,
          text: replies[ordinal]!.text,
          reply: event.reply,
          idempotency: { key: `${event.id}#${ordinal}`, ordinal },
        };
        try {
          await deliver(adapter, message, {
            timeoutMs: config.send_timeout_ms,
            signal: controller.signal,
            metrics,
          });
        } catch (err) {
          const error = toGatewayError(err, 'GW_ERR_DELIVERY_FAILED');
          const fields = { code: error.code, event_id: event.id, platform: event.platform };
          if (error.code === 'GW_ERR_HANDLER_CANCELLED' || controller.signal.aborted) {
            // Stopping: the reply stays in the outbox and is re-sent after the restart.
            ended = false;
            log.debug(fields, error.message);
            return;
          }
          log.warn(fields, `reply not delivered: ${error.message}`);
        }
      }
    } catch (err) {
      log.error({ code: 'GW_ERR_INTERNAL', event_id: event.id }, `pipeline bug: ${String(err)}`);
    } finally {
      if (ended) {
        store?.markAnswered(event.id, outbox);
        end(event.id);
      } else endings.delete(event.id);
      if (handedOn) sending -= 1;
      else running -= 1;
      conversation.running = false;
      if (conversation.queue.length > 0) ready.push(conversation);
      else conversations.delete(conversation.key);
      if (!closed) pump();
      settled();
    }
  }

  /** Set while pump() runs: an event that ends without an await ends inside it. */
  let pumping = false;

  function pump(): void {
    // handleEvent's `finally` calls pump(); when the event ended synchronously (the handler
    // threw before any await) that call would start the next event from inside this one, a
    // recursion as deep as the queue. The loop below picks that next event up instead.
    if (pumping) return;
    pumping = true;
    try {
      drain();
    } finally {
      pumping = false;
    }
  }

  function drain(): void {
    while (running < config.concurrency && ready.length > 0) {
      const conversation = ready.shift()!;
      const event = conversation.queue.shift()!;
      waiting -= 1;
      running += 1;
      conversation.running = true;
      // Its promise is not kept: handleEvent never rejects, and close() waits for `running`.
      void handleEvent(conversation, event);
    }
  }

  /** Calls the `done` callbacks of an event that ended (its duplicates' too). */
  function end(id: string): void {
    const callbacks = endings.get(id);
    if (callbacks === undefined) return;
    endings.delete(id);
    for (const done of callbacks) done();
  }

  function accept(event: InboundEvent, done: (() => void) | undefined): void {
    if (closed || draining) {
      // Not handled and not ended: its position holds the watermark, the platform replays it.
      log.debug({ event_id: event.id }, 'event after close: dropped');
      return;
    }
    metrics.inboundEventsTotal.inc(event.platform);
    const now = recent === null ? 0 : clock();
    const seen =
      recent === null
        ? endings.has(event.id) || store!.isAnswered(event.id)
        : recent.has(event.id, now) || store?.isAnswered(event.id) === true;
    if (seen) {
      metrics.duplicatesDroppedTotal.inc(event.platform);
      log.debug({ event_id: event.id, platform: event.platform }, 'duplicate event dropped');
      if (done !== undefined) {
        // The original may still be running: this copy ends when it does.
        const waiting = endings.get(event.id);
        if (waiting !== undefined) waiting.push(done);
        else done();
      }
      return;
    }
    const key = conversationKey(event);
    let conversation = conversations.get(key);
    const conversationWaiting = conversation?.queue.length ?? 0;
    if (conversationWaiting >= config.queue_limit || waiting >= config.max_queued_events) {
      overflow(event, conversationWaiting);
      done?.();
      return;
    }
    if (recent === null) endings.set(event.id, done === undefined ? [] : [done]);
    else {
      recent.add(event.id, now);
      if (done !== undefined) endings.set(event.id, [done]);
    }
    if (!conversation) {
      conversation = { key, queue: [], running: false };
      conversations.set(key, conversation);
    }
    conversation.queue.push(event);
    waiting += 1;
    if (!conversation.running && conversation.queue.length === 1) ready.push(conversation);
    pump();
  }

  if (store !== null) {
    // Replies a previous process wrote and may not have sent: re-sent first, in their order,
    // each in its conversation ahead of anything new (the replayed event is then answered).
    const byEvent = new Map<string, PendingReply[]>();
    for (const reply of store.takePending()) {
      const list = byEvent.get(reply.eventId);
      if (list === undefined) byEvent.set(reply.eventId, [reply]);
      else list.push(reply);
    }
    for (const [id, replies] of byEvent) {
      resent = true;
      const first = replies[0]!;
      recovered.set(id, replies);
      accept(
        {
          id,
          platform: first.instance,
          // Only the re-send needs this stand-in event; no handler sees it.
          type: options.config.platforms?.[first.instance]?.type ?? first.instance,
          chat: first.chat,
          sender: { id: '' },
          text: '',
          attachments: [],
          timestamp: new Date(clock()).toISOString(),
          reply: first.reply,
        },
        undefined,
      );
    }
  }

  return {
    dispatch(event, done) {
      try {
        accept(event, done);
      } catch (err) {
        // dispatch runs inside an adapter's socket callback: nothing may escape.
        log.error({ code: 'GW_ERR_INTERNAL', event_id: event.id }, `pipeline bug: ${String(err)}`);
      }
    },
    idle() {
      if (waiting + running + sending === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    async drain(timeoutMs) {
      draining = true;
      if (waiting + running + sending === 0) return true;
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      const idle = new Promise<true>((resolve) => idleWaiters.push(() => resolve(true)));
      try {
        return await Promise.race([idle, expired]);
      } finally {
        clearTimeout(timer);
      }
    },
    get load() {
      return { waiting, running: running + sending };
    },
    async close() {
      if (closed) return;
      closed = true;
      if (waiting > 0) log.info({ dropped: waiting }, 'stopping: waiting events dropped');
      for (const conversation of conversations.values()) conversation.queue.length = 0;
      ready.length = 0;
      waiting = 0;
      controller.abort();
      if (overflowTimer !== null) clearTimeout(overflowTimer);
      overflowTimer = null;
      logUnlogged();
      settled();
      // The handler calls in flight were cancelled above; wait for them to settle.
      if (running + sending > 0) await new Promise<void>((resolve) => idleWaiters.push(resolve));
      unbindLoad();
      await handler.close?.();
    },
  };
}
