import type { Logger } from 'pino';
import type { Adapter, InboundEvent } from '../adapters/contract.js';
import type { GatewayConfig } from '../config/schema.js';
import { toGatewayError } from '../errors.js';
import { createEchoHandler } from './echo.js';
import type { Handler } from './handler.js';

export interface PipelineOptions {
  config: GatewayConfig;
  adapters: Adapter[];
  log: Logger;
}

export interface Pipeline {
  /** Accepts one inbound event; never throws, never blocks the adapter. */
  dispatch(event: InboundEvent): void;
  /** Cancels work in flight and waits for it to settle. */
  close(): Promise<void>;
}

function createHandler(config: GatewayConfig): Handler {
  switch (config.handler.type) {
    case 'echo':
      return createEchoHandler();
  }
}

/**
 * Carries events from adapters to the handler and replies back. Events of one conversation
 * are handled in order (a promise chain per chat); different chats run concurrently.
 */
export function createPipeline(options: PipelineOptions): Pipeline {
  const handler = createHandler(options.config);
  const adapters = new Map(options.adapters.map((a) => [a.name, a]));
  const chains = new Map<string, Promise<void>>();
  const controller = new AbortController();
  const log = options.log.child({ component: 'pipeline' });

  async function process(event: InboundEvent): Promise<void> {
    const adapter = adapters.get(event.platform);
    if (!adapter) return;
    try {
      const replies = await handler.handle(event, controller.signal);
      for (const reply of replies) {
        await adapter.send(
          { chat: event.chat, text: reply.text, reply: event.reply },
          controller.signal,
        );
      }
    } catch (err) {
      const error = toGatewayError(err, 'GW_ERR_INTERNAL');
      log.warn({ code: error.code, event_id: event.id }, `event not answered: ${error.message}`);
    }
  }

  return {
    dispatch(event) {
      const key = `${event.platform}:${event.chat.type}:${event.chat.id}`;
      const previous = chains.get(key) ?? Promise.resolve();
      // process() never rejects, so the chain cannot break or leak a rejection.
      const next: Promise<void> = previous
        .then(() => process(event))
        .then(() => {
          if (chains.get(key) === next) chains.delete(key);
        });
      chains.set(key, next);
    },
    async close() {
      controller.abort();
      await Promise.allSettled([...chains.values()]);
      await handler.close?.();
    },
  };
}
