import { createCommandHandler } from './command.js';
import { GatewayError } from '../errors.js';
import type { HandlerConfig } from './config.js';
import { createEchoHandler } from './echo.js';
import type { Handler, HandlerDeps } from './handler.js';
import { createOpenAiHandler } from './openai.js';
import { createWebhookHandler } from './webhook.js';

/**
 * The handler `handler.type` names. `nats` is not one of them: its handler needs the broker
 * connection and the adapters, and `run` builds it (src/handlers/nats/gateway.ts).
 */
export function createHandler(config: HandlerConfig, deps: HandlerDeps): Handler {
  switch (config.type) {
    case 'echo':
      return createEchoHandler();
    case 'webhook':
      return createWebhookHandler(config, deps);
    case 'openai':
      return createOpenAiHandler(config, deps);
    case 'command':
      return createCommandHandler(config, deps);
    case 'nats':
      throw new GatewayError(
        'GW_ERR_INTERNAL',
        'the nats handler is built by run, with the broker',
      );
  }
}
