import { createCommandHandler } from './command.js';
import type { HandlerConfig } from './config.js';
import { createEchoHandler } from './echo.js';
import type { Handler, HandlerDeps } from './handler.js';
import { createOpenAiHandler } from './openai.js';
import { createWebhookHandler } from './webhook.js';

/** The handler `handler.type` names. */
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
  }
}
