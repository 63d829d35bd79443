import type { Logger } from 'pino';
import type { InboundEvent } from '../adapters/contract.js';

export interface Reply {
  text: string;
}

/**
 * Turns one inbound event into zero or more replies. The pipeline calls `handle` for one
 * event of a conversation at a time, in order. Resolves with the replies (an empty array:
 * nothing to say); rejects with a GatewayError (`GW_ERR_HANDLER_*`) when the handler failed,
 * and with `GW_ERR_HANDLER_CANCELLED` soon after `signal` aborts (the gateway is stopping).
 */
export interface Handler {
  readonly type: string;
  handle(event: InboundEvent, signal: AbortSignal): Promise<Reply[]>;
  /** Releases what the handler holds (history, children); called once, after the last handle. */
  close?(): Promise<void>;
}

export interface HandlerDeps {
  log: Logger;
}

/** The key of one conversation: events with the same key are handled in order. */
export function conversationKey(event: Pick<InboundEvent, 'platform' | 'chat'>): string {
  return `${event.platform}:${event.chat.type}:${event.chat.id}`;
}
