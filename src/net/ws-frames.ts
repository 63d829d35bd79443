/**
 * Helpers for WebSocket gateways (QQ, Discord): frame sizes and text of `ws` messages, and
 * the heartbeat ACK deadline that keeps zombie detection within DESIGN §9's bound.
 */
import type { RawData } from 'ws';

/**
 * Largest ACK deadline as a fraction of the heartbeat interval. DESIGN §9 allows half an
 * interval; 5 % of it is kept for timer and event-loop lateness, so that the 1.5 × interval
 * detection bound holds as measured (bench/qq-detection.ts), not only on paper.
 */
export const MAX_ACK_FRACTION = 0.45;

/**
 * The ACK deadline after each heartbeat: the configured slack, capped so that a link that
 * dies right after an ACK is declared dead within 1.5 × the interval (next beat + deadline).
 */
export function ackDeadlineMs(intervalMs: number, configuredMs: number): number {
  return Math.max(1, Math.min(configuredMs, intervalMs * MAX_ACK_FRACTION));
}

export function rawSize(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0);
  return data instanceof ArrayBuffer ? data.byteLength : data.length;
}

export function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  // Decoded where it lies: a Buffer as it is, an ArrayBuffer through a view (no copy).
  return (data instanceof ArrayBuffer ? Buffer.from(data) : data).toString('utf8');
}
