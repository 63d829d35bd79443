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
  /**
   * Where the event sits in the platform's stream, for the resume point (DESIGN §11, docs/
   * delivery.md): QQ and Discord the dispatch `s`, Telegram the `update_id`. Numbers increase
   * in arrival order within one session; absent when the platform has no such number (the
   * event is then still answered at most once, but not replayed after a restart).
   */
  position?: number;
}

/** A message to deliver: a reply to an event, or a proactive message to a chat. */
export interface OutboundMessage {
  chat: { type: ChatType; id: string };
  text: string;
  /** The inbound event's `reply` context for a passive reply; absent for proactive sends. */
  reply?: Record<string, unknown>;
  /**
   * Set by the pipeline on replies: the same for the same reply in every process, so a reply
   * re-sent after a restart is the same message to the platform. An adapter whose platform
   * has an idempotency key derives it from this (QQ: `msg_seq` from `ordinal` under the
   * event's `msg_id`; Discord: `nonce` from a hash of `key` with `enforce_nonce`), and then
   * treats the platform's "already sent" answer (QQ 40054005) as delivered. Platforms without
   * a key (Telegram) ignore it: at-least-once there.
   */
  idempotency?: {
    /** `<event id>#<ordinal>`; unique per logical reply. */
    key: string;
    /** 0-based index of this reply among the replies to one event. */
    ordinal: number;
  };
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
  /**
   * The resume point the previous process of this instance left (DESIGN §11), or null (first
   * start, store off, or nothing saved). An adapter that can resume tries it unless it is
   * `stale`, and falls back to a
   * fresh session when the platform refuses, counting the outcome in
   * `hermes_resume_after_restart_total{platform,result}` through `resumeOutcome()`.
   */
  readonly resumePoint: ResumePoint | null;
  /**
   * Records the platform session the events that follow belong to (QQ / Discord: at READY,
   * `{ session_id, resume_url }`; Telegram: `{}` once). A new session starts a new position
   * stream: positions emitted before it no longer hold the watermark back. The session is
   * persisted (group commit) together with the handled watermark as this instance's resume
   * point. Never throws; a store that cannot be written ends the gateway (exit 70).
   */
  saveSession(session: Record<string, unknown>): void;
  /**
   * The handled watermark of the current session: the highest position at or below which
   * every emitted event has been handled (answered, failed with a logged code, or dropped on
   * purpose); events finish out of order across chats, so this is the lowest unfinished
   * position minus one. Null before the first event of the session (then the resume point's
   * own position still holds). Telegram confirms `getUpdates` offsets only up to it + 1.
   */
  handledPosition(): number | null;
  /**
   * Resolves once `handledPosition()` is at least `position` (at once when it is), when the
   * session changes (`saveSession`), or when `signal` aborts; never rejects. Telegram waits
   * here before its next `getUpdates`: asking again before the updates it handed on are
   * handled would only return them again.
   */
  whenHandled(position: number, signal: AbortSignal): Promise<void>;
  /** Counts how a resume at `resumePoint` went (`accepted`, `refused`, `stale`). */
  resumeOutcome(result: ResumeResult): void;
}

/** What the previous process of an instance persisted, read back at start. */
export interface ResumePoint {
  /** What the adapter gave `saveSession()` (QQ: `{ session_id }`). */
  session: Record<string, unknown>;
  /** The handled watermark within that session; null when no event was handled in it. */
  position: number | null;
  /** How long ago (ms) the point was last written, at the start of this process. */
  ageMs: number;
  /**
   * Older than `delivery.resume_max_age_ms`: the platform has probably forgotten the session
   * (QQ, Discord: do not try it, count `stale`). Telegram's offset stays valid for 24 h.
   */
  stale: boolean;
}

export type ResumeResult = 'accepted' | 'refused' | 'stale';

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
  /**
   * True when `send` turns `OutboundMessage.idempotency` into the platform's idempotency key
   * (QQ `msg_seq`, Discord `nonce` + `enforce_nonce`), so a reply re-sent after a restart is
   * dropped by the platform if it had arrived. Absent or false (Telegram): a re-sent reply may
   * arrive twice; the pipeline counts it in `hermes_possible_duplicate_replies_total`.
   */
  readonly idempotentSends?: boolean;
}
