/**
 * The adapter contract (DESIGN §2). This file is the only thing other folders import from
 * an adapter's directory.
 */
import type { Logger } from 'pino';
import type { GatewayError } from '../errors.js';

/** Top-level adapter states, persisted as-is in gateway_state.json. */
export const ADAPTER_STATES = [
  'starting',
  'connecting',
  'connected',
  'reconnecting',
  'stopped',
  'fatal',
] as const;
export type AdapterState = (typeof ADAPTER_STATES)[number];

/** States an adapter may enter itself; `stopped` and `fatal` belong to the runner. */
export type AdapterOwnedState = 'connecting' | 'connected' | 'reconnecting';

/** Fields an adapter may change together with a transition. */
export interface AdapterStatusPatch {
  reconnectAttempt?: number;
  maxReconnectAttempts?: number;
  /** `null` clears the last error (e.g. after a healthy connection). */
  lastError?: GatewayError | null;
  resumable?: boolean;
  /** A free-form sub-state for operators (`identifying`, `waiting_session_limit`, ...). */
  detail?: string | null;
}

export type ChatType = 'c2c' | 'group' | 'channel' | 'dm';

export interface Attachment {
  url: string;
  content_type: string | null;
  filename: string | null;
}

/** One normalized inbound message, the same shape for every platform. */
export interface InboundEvent {
  /** `<instance>:<platform message id>`; stable across redeliveries. */
  id: string;
  /** The instance that received it (the key under `platforms:`); replies go back to it. */
  platform: string;
  /** The instance's adapter type (`qqbot`). */
  type: string;
  chat: { type: ChatType; id: string };
  sender: { id: string; name?: string };
  text: string;
  attachments: Attachment[];
  /** ISO 8601 as the platform gave it. */
  timestamp: string;
  /** Opaque to everyone but the adapter that produced it (QQ: the message id to reply to). */
  reply: Record<string, unknown>;
}

/** A message to deliver: a reply to an event, or a proactive message to a chat. */
export interface OutboundMessage {
  chat: { type: ChatType; id: string };
  text: string;
  /** The inbound event's `reply` context for a passive reply; absent for proactive sends. */
  reply?: Record<string, unknown>;
}

export interface SendResult {
  /** The platform's id of every message sent (a long text may be split). */
  ids: string[];
}

/** What the runner gives an adapter for its life. */
export interface AdapterContext {
  /** The instance name. */
  readonly name: string;
  readonly log: Logger;
  /**
   * Changes the adapter's state. Resolves once the new state is persisted; rejects when the
   * transition is not allowed from the current state (a bug) or the write failed (fatal).
   */
  transition(state: AdapterOwnedState, patch?: AdapterStatusPatch): Promise<void>;
  /** Records a change of detail fields without a state change (persisted with the next write). */
  note(patch: AdapterStatusPatch): void;
  /** Records that the platform sent something; cheap, called for every frame. */
  touch(): void;
  /**
   * Hands a background promise to the runner. If it rejects while no stop was requested,
   * the rejection is fatal for this adapter: nothing the adapter starts can fail silently.
   */
  track(what: string, promise: Promise<unknown>): void;
  /** Hands an inbound event to the message pipeline. Never throws. */
  emit(event: InboundEvent): void;
}

/**
 * A platform adapter.
 */
export interface Adapter {
  /** The instance name (the key under `platforms:`), not the type. */
  readonly name: string;
  /**
   * The adapter's whole life. Resolves only after `signal` is aborted. Resolving earlier is
   * fatal (`GW_ERR_ADAPTER_RETURNED`); rejecting is fatal with the error's code and
   * `retryable` flag. The reconnect loop lives inside.
   */
  run(ctx: AdapterContext, signal: AbortSignal): Promise<void>;
  /**
   * Delivers one message. Resolves with the platform's message ids; rejects with a
   * GatewayError when the message could not be delivered within the adapter's budget.
   */
  send(message: OutboundMessage, signal?: AbortSignal): Promise<SendResult>;
}
