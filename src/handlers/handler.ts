import type { InboundEvent } from '../adapters/contract.js';

export interface Reply {
  text: string;
}

/** Turns one inbound event into zero or more replies. Rejects with a GatewayError on failure. */
export interface Handler {
  readonly type: string;
  handle(event: InboundEvent, signal: AbortSignal): Promise<Reply[]>;
  close?(): Promise<void>;
}
