/**
 * Wire pieces of Hello / heartbeat gateways that QQ and Discord share (QQ's gateway copies
 * Discord's): the heartbeat interval of a Hello and the answer of `GET /gateway/bot`.
 */

/** `heartbeat_interval` of a Hello, or null when missing or not a positive number. */
export function helloInterval(d: unknown): number | null {
  if (!isObject(d)) return null;
  const interval = d.heartbeat_interval;
  return typeof interval === 'number' && Number.isFinite(interval) && interval > 0
    ? interval
    : null;
}

export interface GatewayInfo {
  url: string;
  shards: number | null;
  sessionStartLimit: {
    total: number;
    remaining: number;
    resetAfterMs: number;
    maxConcurrency: number;
  } | null;
}

/** Reads `GET /gateway/bot` (or `/gateway`); null when there is no usable `url`. */
export function parseGatewayInfo(body: unknown): GatewayInfo | null {
  if (!isObject(body) || typeof body.url !== 'string' || !/^wss?:\/\//i.test(body.url)) {
    return null;
  }
  const limit = isObject(body.session_start_limit) ? body.session_start_limit : null;
  const num = (value: unknown, fallback: number): number =>
    typeof value === 'number' && Number.isFinite(value) ? value : fallback;
  return {
    url: body.url,
    shards: typeof body.shards === 'number' ? body.shards : null,
    sessionStartLimit:
      limit === null
        ? null
        : {
            total: num(limit.total, 0),
            remaining: num(limit.remaining, 1),
            resetAfterMs: Math.max(0, num(limit.reset_after, 0)),
            maxConcurrency: Math.max(1, num(limit.max_concurrency, 1)),
          },
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
