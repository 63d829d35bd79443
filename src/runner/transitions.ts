import type { AdapterState } from '../adapters/contract.js';
import type { GatewayState } from '../state/schema.js';

/**
 * Allowed adapter state changes. `connecting` covers the first connection, `reconnecting`
 * every later one (backoff and handshake) until the platform confirms the session again.
 * Self-transitions are allowed where the attempt counter or the detail changes.
 */
const ADAPTER_NEXT: Record<AdapterState, readonly AdapterState[]> = {
  starting: ['connecting', 'stopped', 'fatal'],
  connecting: ['connecting', 'connected', 'reconnecting', 'stopped', 'fatal'],
  connected: ['reconnecting', 'stopped', 'fatal'],
  reconnecting: ['reconnecting', 'connected', 'stopped', 'fatal'],
  stopped: [],
  fatal: [],
};

const GATEWAY_NEXT: Record<GatewayState, readonly GatewayState[]> = {
  starting: ['running', 'stopping', 'fatal'],
  running: ['stopping', 'fatal'],
  stopping: ['stopped', 'fatal'],
  stopped: [],
  fatal: [],
};

export function canAdapterMove(from: AdapterState, to: AdapterState): boolean {
  return ADAPTER_NEXT[from].includes(to);
}

export function canGatewayMove(from: GatewayState, to: GatewayState): boolean {
  return GATEWAY_NEXT[from].includes(to);
}
