import type { StateDocument } from '../state/schema.js';

/** One line summarising the gateway and every adapter, for systemd's STATUS= and `status`. */
export function statusLine(doc: Pick<StateDocument, 'gateway' | 'platforms'>): string {
  const parts = Object.entries(doc.platforms).map(([name, p]) => {
    let text = `${name} ${p.state}`;
    if (p.state === 'reconnecting' || p.state === 'connecting') {
      const budget = p.max_reconnect_attempts === null ? '' : `/${p.max_reconnect_attempts}`;
      if (p.reconnect_attempt > 0) text += ` (attempt ${p.reconnect_attempt}${budget})`;
    }
    if (p.last_error && p.state !== 'connected') text += ` [${p.last_error.code}]`;
    return text;
  });
  return `${doc.gateway.state}: ${parts.join(', ') || 'no adapters'}`;
}
