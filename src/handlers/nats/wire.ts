import type { InboundEvent } from '../../adapters/contract.js';
import { GatewayError } from '../../errors.js';
import './errors.js';

/**
 * What travels on the broker, as JSON. Version 1; a reader refuses what it does not know
 * (`GW_ERR_NATS_MALFORMED`) rather than guess.
 */
export interface EventMessage {
  v: 1;
  /** When the gateway published it (epoch ms): a reply later than reply_timeout_ms is late. */
  published_at: number;
  event: InboundEvent;
}

export interface ReplyMessage {
  v: 1;
  event_id: string;
  instance: string;
  chat: InboundEvent['chat'];
  reply: InboundEvent['reply'];
  ordinal: number;
  text: string;
  /** The event's published_at, carried through the worker. */
  event_published_at: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeEvent(event: InboundEvent, publishedAt: number): Uint8Array {
  // The position is the adapter's own bookkeeping (its watermark): it stays in the gateway.
  const { position: _position, ...portable } = event;
  const message: EventMessage = { v: 1, published_at: publishedAt, event: portable };
  return encoder.encode(JSON.stringify(message));
}

export function encodeReply(reply: Omit<ReplyMessage, 'v'>): Uint8Array {
  return encoder.encode(JSON.stringify({ v: 1, ...reply }));
}

/** The id a reply is published with: the broker drops a second copy within its window. */
export function replyId(eventId: string, ordinal: number): string {
  return `${eventId}#${ordinal}`;
}

function malformed(what: string): GatewayError {
  return new GatewayError('GW_ERR_NATS_MALFORMED', `malformed ${what} on the broker`);
}

function parse(data: Uint8Array, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(decoder.decode(data));
    if (value !== null && typeof value === 'object' && (value as { v?: unknown }).v === 1) {
      return value as Record<string, unknown>;
    }
  } catch {
    // Reported below.
  }
  throw malformed(what);
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isChat = (v: unknown): v is InboundEvent['chat'] =>
  v !== null &&
  typeof v === 'object' &&
  isString((v as { id?: unknown }).id) &&
  isString((v as { type?: unknown }).type);

export function decodeEvent(data: Uint8Array): EventMessage {
  const value = parse(data, 'event');
  const event = value.event as Partial<InboundEvent> | undefined;
  if (
    typeof value.published_at !== 'number' ||
    event === undefined ||
    event === null ||
    !isString(event.id) ||
    !isString(event.platform) ||
    !isString(event.text) ||
    !isChat(event.chat)
  ) {
    throw malformed('event');
  }
  return value as unknown as EventMessage;
}

export function decodeReply(data: Uint8Array): ReplyMessage {
  const value = parse(data, 'reply');
  if (
    !isString(value.event_id) ||
    !isString(value.instance) ||
    !isString(value.text) ||
    !Number.isInteger(value.ordinal) ||
    typeof value.event_published_at !== 'number' ||
    !isChat(value.chat)
  ) {
    throw malformed('reply');
  }
  return value as unknown as ReplyMessage;
}
