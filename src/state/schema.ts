/**
 * The persisted shape of gateway_state.json (documented field by field in the README).
 * Wire names are snake_case because operators and scripts read this file directly.
 */
import type { AdapterState } from '../adapters/contract.js';
import type { DeliveryStatus } from '../delivery/instance.js';

export const STATE_SCHEMA_VERSION = 1;

export const GATEWAY_STATES = ['starting', 'running', 'stopping', 'stopped', 'fatal'] as const;
export type GatewayState = (typeof GATEWAY_STATES)[number];

export interface PersistedError {
  code: string;
  message: string;
  retryable: boolean;
  at: string;
}

/** One instance's status; `platforms` is keyed by instance name. */
export interface PlatformStatus {
  /**
   * The instance's adapter type (`qqbot`). Always written by this version; absent in files
   * written before instances existed, whose keys were the types themselves.
   */
  type?: string;
  state: AdapterState;
  since: string;
  reconnect_attempt: number;
  max_reconnect_attempts: number | null;
  last_error: PersistedError | null;
  last_event_at: string | null;
  resumable: boolean;
  detail: string | null;
  /** The delivery store's view of this instance (docs/delivery.md); absent before the first write. */
  delivery?: DeliveryStatus;
}

export interface GatewayStatus {
  state: GatewayState;
  since: string;
  reason: string | null;
  /** The exit code the process will end with once it leaves `stopping` / `fatal`; else null. */
  exit_code: number | null;
}

export interface StateDocument {
  schema_version: number;
  pid: number;
  /** Field 22 of /proc/<pid>/stat: tells our pid from a reused one. Null where /proc is absent. */
  pid_start_time: number | null;
  started_at: string;
  updated_at: string;
  /** Refreshed every `heartbeat_interval_ms` while the event loop turns. */
  heartbeat_at: string;
  heartbeat_interval_ms: number;
  /** Increases by one per write; never goes back within one process's file. */
  write_seq: number;
  gateway: GatewayStatus;
  platforms: Record<string, PlatformStatus>;
  /**
   * The broker hop with `handler.type: nats` (docs/scale-out.md); absent otherwise. Anything
   * but `connected` makes `status` report degraded.
   */
  broker?: BrokerStatus;
}

export interface BrokerStatus {
  state: 'connecting' | 'connected' | 'disconnected' | 'degraded';
  since: string;
  /** `<code>: <why>` while not connected; null when connected. */
  reason: string | null;
}
