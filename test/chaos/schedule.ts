/**
 * The fault schedule of a chaos run: a pure function of the seed and the run's shape. Every
 * time, kind and parameter is drawn from the seeded PRNG, so a seed names one schedule (the
 * gateway's own timing still varies from run to run; the schedule does not).
 */
import type { GatewayFault, SendFault, TokenFault } from '../../src/fakes/qq/index.js';
import { DC_CLOSE_CODES, type DcSendFault } from './discord-lane.js';
import type { Rng } from './prng.js';

/** Close codes by the class of reaction they demand (src/adapters/qqbot/protocol.ts). */
export const CLOSE_CODES = {
  /** Keep the session and Resume: 4009 (the periodic kick), transport closes, 4000. */
  resume: [4009, 4009, 4009, 1000, 1001, 1011, 4000],
  /** Forget the session and Identify: 4006/4007, 4900-4913, and the one-off client-bug codes. */
  identify: [4006, 4007, 4003, 4005, ...Array.from({ length: 14 }, (_, i) => 4900 + i)],
  /** Drop the access token, then Identify. */
  refresh: [4004],
  /** Rate limited: wait reconnect.rate_limited_wait_ms, then Resume. */
  wait: [4008],
  /** The bot is delisted (4914) or banned (4915): exit 78, no reconnect. */
  fatal: [4914, 4915],
} as const;

/**
 * Frames a correct client must log and drop while staying connected. (Not a stray op 11: a
 * correct client takes it for the ACK it waits for, which would mask a stopped-ACK fault.)
 */
export const MALFORMED_FRAMES = [
  'not json at all',
  '',
  'null',
  '[1,2,3]',
  '{"op":"ten"}',
  '{"d":{}}',
  '{"op":99,"d":null}',
  '{"op":10,"d":{"heartbeat_interval":1}}',
  '{"op":0,"t":"SOME_FUTURE_EVENT","d":{"x":1}}',
  '{"op":0,"t":"C2C_MESSAGE_CREATE","d":{"content":"a message without an id"}}',
  '{"op":0,"t":"C2C_MESSAGE_CREATE","d":null}',
  '{"op":0,"d":{"no":"type"}}',
  '{"op":0,"t":"C2C_MESSAGE_CREATE","s":"x","d":{}}',
] as const;

/** One fault with the parameters the PRNG chose for it. */
export type Fault =
  | { kind: 'close_resume'; code: number }
  | { kind: 'close_identify'; code: number }
  | { kind: 'close_refresh'; code: number; revoke: boolean }
  | { kind: 'close_wait'; code: number }
  | { kind: 'close_fatal'; code: number }
  | { kind: 'token_rejected' }
  | { kind: 'kill9' }
  | { kind: 'tcp_reset' }
  | { kind: 'half_open' }
  | { kind: 'stop_acking' }
  /**
   * `burst`: a message is dispatched right behind the opcode, before the client's close can
   * reach the server (events in flight when the platform asks for a new connection).
   */
  | { kind: 'op_reconnect'; burst: boolean; user: number }
  | { kind: 'op_invalid_session'; resumable: boolean; burst: boolean; user: number }
  | { kind: 'resume_refused' }
  | { kind: 'token_fault'; fault: Exclude<TokenFault, 'none' | 'bad_credentials'>; count: number }
  | {
      kind: 'gateway_fault';
      fault: Exclude<GatewayFault, 'none'>;
      count: number;
      trigger: 'close_4009' | 'reset';
    }
  | { kind: 'refuse_connections'; durationMs: number; gateway: boolean }
  | { kind: 'send_rate_limited'; faults: SendFault[] }
  | { kind: 'send_failure'; faults: SendFault[] }
  | { kind: 'malformed_frame'; text: string }
  | { kind: 'oversized_frame'; bytes: number }
  /** Telegram instance faults (telegram-lane.ts): on getUpdates, or on sendMessage. */
  | { kind: 'tg_poll_fault'; fault: TgPollFault; count: number }
  | { kind: 'tg_half_open' }
  | { kind: 'tg_poll_elsewhere' }
  | { kind: 'tg_send_fault'; fault: TgSendFault; count: number }
  /** Discord instance faults (discord-lane.ts): on its gateway, or on message creates. */
  | { kind: 'dc_close'; code: number }
  | { kind: 'dc_terminate' }
  | { kind: 'dc_stop_acks' }
  | { kind: 'dc_half_open' }
  | { kind: 'dc_op_reconnect' }
  | { kind: 'dc_invalid_session'; resumable: boolean }
  | { kind: 'dc_request_heartbeat'; times: number }
  | { kind: 'dc_resume_refused'; count: number }
  | { kind: 'dc_send_fault'; faults: DcSendFault[] }
  /** QQ webhook instance faults (qq-webhook-lane.ts): requests the ingress must refuse, ... */
  | { kind: 'wh_forged'; variants: WhForgery[] }
  | { kind: 'wh_timestamp'; skewS: number }
  | { kind: 'wh_oversized'; bytes: number; chunked: boolean }
  | { kind: 'wh_bad_request'; variant: WhBadRequest; pick: number }
  /** ... callbacks the platform repeats (after an ack, or because the ack was lost) ... */
  /** `pick` in [0, 1): which of the recent acknowledged callbacks is repeated. */
  | { kind: 'wh_redeliver'; lostAck: boolean; pick: number }
  | { kind: 'wh_validation' }
  /** ... requests that stop mid-body (the request timeout must cut them), or are reset ... */
  | { kind: 'wh_slow'; end: 'hang' | 'trickle'; sendBytes: number }
  | { kind: 'wh_reset'; sendBytes: number }
  /** ... and faults of its token endpoint and of its replies. */
  | { kind: 'wh_token_fault'; fault: 'http500' | 'timeout' | 'malformed_json'; count: number }
  | { kind: 'wh_send_fault'; faults: SendFault[] };

/** What a Telegram getUpdates meets (src/fakes/telegram: `fault()`). */
export type TgPollFault =
  'conflict' | 'rate_limited' | 'server_error' | 'html' | 'reset' | 'malformed';
/** What a Telegram sendMessage meets: retried (5xx, 429) or uncertain (answer lost). */
export type TgSendFault = 'server_error' | 'rate_limited' | 'lost_answer';

/** How a forged callback is forged (each must get 401 and never reach the pipeline). */
export type WhForgery = 'bad_signature' | 'no_signature' | 'wrong_key' | 'body_changed';
/** Requests the ingress refuses before the signature: 405, 404, and a signed non-JSON 400. */
export type WhBadRequest = 'method' | 'unknown_path' | 'bad_json' | 'other_appid';

export type FaultKind = Fault['kind'];
/** The faults of the Telegram instance (telegram-lane.ts injects them). */
export type TelegramFault = Extract<Fault, { kind: `tg_${string}` }>;
/** The faults of the Discord instance (discord-lane.ts injects them). */
export type DiscordFault = Extract<Fault, { kind: `dc_${string}` }>;
/** The faults of the QQ webhook instance (qq-webhook-lane.ts injects them). */
export type WebhookFault = Extract<Fault, { kind: `wh_${string}` }>;

/** A fault and when to inject it, in ms from the start of the run. */
export interface PlannedFault {
  atMs: number;
  fault: Fault;
}

/** Kinds that end the gateway process (it is restarted, as systemd would). */
export const RESTART_KINDS: ReadonlySet<FaultKind> = new Set([
  'close_fatal',
  'token_rejected',
  'kill9',
]);

/** Relative frequency of the kinds drawn for ordinary slots. */
export const WEIGHTS = {
  close_resume: 10,
  close_identify: 8,
  close_refresh: 4,
  close_wait: 2,
  tcp_reset: 8,
  half_open: 4,
  stop_acking: 3,
  op_reconnect: 5,
  op_invalid_session: 5,
  resume_refused: 3,
  token_fault: 4,
  gateway_fault: 4,
  refuse_connections: 3,
  send_rate_limited: 5,
  send_failure: 5,
  malformed_frame: 5,
  oversized_frame: 2,
  tg_poll_fault: 6,
  tg_half_open: 2,
  tg_poll_elsewhere: 2,
  tg_send_fault: 3,
  dc_close: 5,
  dc_terminate: 3,
  dc_stop_acks: 2,
  dc_half_open: 2,
  dc_op_reconnect: 2,
  dc_invalid_session: 3,
  dc_request_heartbeat: 1,
  dc_resume_refused: 2,
  dc_send_fault: 4,
  wh_forged: 3,
  wh_timestamp: 2,
  wh_oversized: 2,
  wh_bad_request: 2,
  wh_redeliver: 3,
  wh_validation: 1,
  wh_slow: 2,
  wh_reset: 1,
  wh_token_fault: 2,
  wh_send_fault: 3,
} as const satisfies Partial<Record<FaultKind, number>>;

type WeightedKind = keyof typeof WEIGHTS;

export interface ScheduleOptions {
  /** First and last moment (ms from the run's start) a fault may be injected. */
  startMs: number;
  endMs: number;
  /** Pause between two faults: uniform in [min, max] ms. */
  gapMs: readonly [number, number];
  /** The gateway's max_payload_bytes: oversized frames straddle it and its 4x hard cap. */
  maxPayloadBytes: number;
  /** Roughly one fatal close (4914/4915) per this many ms of fault window; at least one. */
  fatalEveryMs: number;
  /**
   * At most this many fatal closes, however long the run: long runs keep long-lived gateway
   * processes, so that a leak shows in their RSS.
   */
  maxFatals: number;
  /** One rejected-credentials fatal when the window is at least this long. */
  credentialsEveryMs: number;
  /** Restarts are kept this far from the end of the window, so the last one settles. */
  restartMarginMs: number;
}

export const DEFAULT_SCHEDULE: Omit<ScheduleOptions, 'startMs' | 'endMs' | 'maxPayloadBytes'> = {
  gapMs: [150, 550],
  fatalEveryMs: 20_000,
  maxFatals: 3,
  credentialsEveryMs: 30_000,
  restartMarginMs: 2_500,
};

/** Draws the parameters of one fault of `kind`. */
export function drawFault(rng: Rng, kind: WeightedKind, maxPayloadBytes: number): Fault {
  switch (kind) {
    case 'close_resume':
      return { kind, code: rng.pick(CLOSE_CODES.resume) };
    case 'close_identify':
      return { kind, code: rng.pick(CLOSE_CODES.identify) };
    case 'close_refresh':
      return { kind, code: 4004, revoke: rng.chance(0.5) };
    case 'close_wait':
      return { kind, code: 4008 };
    case 'tcp_reset':
    case 'half_open':
    case 'stop_acking':
    case 'resume_refused':
      return { kind };
    case 'op_reconnect':
      return { kind, burst: rng.chance(0.5), user: rng.int(0, 3) };
    case 'op_invalid_session':
      return { kind, resumable: rng.chance(0.5), burst: rng.chance(0.5), user: rng.int(0, 3) };
    case 'token_fault':
      return {
        kind,
        fault: rng.pick(['http500', 'timeout', 'malformed_json'] as const),
        count: rng.int(1, 3),
      };
    case 'gateway_fault':
      return {
        kind,
        fault: rng.pick(['http500', 'timeout', 'malformed_json'] as const),
        count: rng.int(1, 3),
        trigger: rng.pick(['close_4009', 'reset'] as const),
      };
    case 'refuse_connections':
      return { kind, durationMs: rng.int(100, 600), gateway: rng.chance(0.5) };
    case 'send_rate_limited': {
      const faults: SendFault[] = [];
      for (let i = rng.int(1, 3); i > 0; i--) {
        const hinted = rng.chance(0.8);
        faults.push({
          kind: 'rate_limited',
          ...(hinted && { retryAfterSec: rng.pick([0.05, 0.1, 0.2, 0.3]) }),
          hint: rng.pick(['header', 'body', 'both'] as const),
          code: rng.pick([22009, 22009, 20028]),
        });
      }
      return { kind, faults };
    }
    case 'send_failure': {
      // Now and then more failures in a row than send.max_attempts: that reply must fail
      // with a logged code instead of vanishing.
      const count = rng.chance(0.15) ? 5 : rng.int(1, 3);
      const faults: SendFault[] = [];
      for (let i = 0; i < count; i++) {
        const which = rng.weighted({ server_error: 5, reset: 2, timeout: 1, token_expired: 1 });
        switch (which) {
          case 'server_error':
            faults.push({ kind: 'server_error', status: rng.pick([500, 502, 503]) });
            break;
          case 'reset':
            faults.push({ kind: 'reset' });
            break;
          case 'timeout':
            faults.push({ kind: 'timeout' });
            break;
          case 'token_expired':
            faults.push({ kind: 'token_expired' });
            break;
        }
      }
      return { kind, faults };
    }
    case 'malformed_frame':
      return { kind, text: rng.pick(MALFORMED_FRAMES) };
    case 'tg_poll_fault':
      return {
        kind,
        fault: rng.pick([
          'conflict',
          'rate_limited',
          'server_error',
          'html',
          'reset',
          'malformed',
        ] as const),
        count: rng.int(1, 3),
      };
    case 'tg_half_open':
    case 'tg_poll_elsewhere':
      return { kind };
    case 'tg_send_fault':
      return {
        kind,
        fault: rng.weighted({ server_error: 3, rate_limited: 2, lost_answer: 1 }),
        count: rng.int(1, 2),
      };
    case 'dc_close':
      return { kind, code: rng.pick(DC_CLOSE_CODES) };
    case 'dc_terminate':
    case 'dc_stop_acks':
    case 'dc_half_open':
    case 'dc_op_reconnect':
      return { kind };
    case 'dc_invalid_session':
      return { kind, resumable: rng.chance(0.5) };
    case 'dc_request_heartbeat':
      return { kind, times: rng.int(1, 3) };
    case 'dc_resume_refused':
      return { kind, count: rng.int(1, 2) };
    case 'dc_send_fault': {
      // Now and then more failures in a row than send.max_attempts: that reply must fail
      // with a logged code instead of vanishing.
      const faults: DcSendFault[] = [];
      for (let i = rng.chance(0.15) ? 5 : rng.int(1, 2); i > 0; i--) {
        faults.push(
          rng.weighted({
            server_error: 4,
            rate_limited: 2,
            global_rate_limited: 1,
            lost_answer: 2,
          }),
        );
      }
      return { kind, faults };
    }
    case 'wh_forged': {
      const variants: WhForgery[] = [];
      for (let i = rng.int(1, 3); i > 0; i--) {
        variants.push(rng.pick(['bad_signature', 'no_signature', 'wrong_key', 'body_changed']));
      }
      return { kind, variants };
    }
    case 'wh_timestamp':
      // Outside the tolerance (qq-webhook-lane.ts: 60 s), stale or in the future.
      return { kind, skewS: (rng.chance(0.5) ? -1 : 1) * rng.int(61, 7_200) };
    case 'wh_oversized':
      return { kind, bytes: rng.int(17 * 1024, 48 * 1024), chunked: rng.chance(0.4) };
    case 'wh_bad_request':
      return {
        kind,
        variant: rng.weighted({ method: 3, unknown_path: 3, bad_json: 1, other_appid: 1 }),
        pick: rng.int(0, 11),
      };
    case 'wh_redeliver':
      return { kind, lostAck: rng.chance(0.5), pick: rng.float() };
    case 'wh_validation':
      return { kind };
    case 'wh_slow':
      return { kind, end: rng.pick(['hang', 'trickle'] as const), sendBytes: rng.int(0, 60) };
    case 'wh_reset':
      return { kind, sendBytes: rng.int(1, 60) };
    case 'wh_token_fault':
      return {
        kind,
        fault: rng.pick(['http500', 'timeout', 'malformed_json'] as const),
        count: rng.int(1, 3),
      };
    case 'wh_send_fault': {
      // 5xx and 429 on replies; now and then more in a row than send.max_attempts, so that
      // reply fails with a logged code.
      const faults: SendFault[] = [];
      for (let i = rng.chance(0.15) ? 5 : rng.int(1, 3); i > 0; i--) {
        faults.push(
          rng.chance(0.6)
            ? { kind: 'server_error', status: rng.pick([500, 502, 503]) }
            : { kind: 'rate_limited', retryAfterSec: 0.1, hint: 'header', code: 22009 },
        );
      }
      return { kind, faults };
    }
    case 'oversized_frame':
      // Above the soft limit (dropped, connection kept) or above the 4x hard cap (cut).
      return {
        kind,
        bytes: rng.chance(0.6)
          ? rng.int(maxPayloadBytes + 1, maxPayloadBytes * 3)
          : rng.int(maxPayloadBytes * 4 + 1, maxPayloadBytes * 6),
      };
  }
}

/**
 * The whole schedule: restarts (fatal closes, a rejected credential, one kill -9) spread
 * over the window, ordinary faults every few hundred ms in between, and at least one fault
 * of every kind when the window has room for them.
 */
export function buildSchedule(rng: Rng, options: ScheduleOptions): PlannedFault[] {
  const { startMs, endMs, gapMs, maxPayloadBytes } = options;
  const windowMs = endMs - startMs;
  if (windowMs <= 0) return [];

  // Restart faults first, each in its own segment of the window, away from its end.
  const restartEnd = Math.max(startMs, endMs - options.restartMarginMs);
  const restarts: Fault[] = [{ kind: 'kill9' }];
  const fatals = Math.min(
    options.maxFatals,
    Math.max(1, Math.round(windowMs / options.fatalEveryMs)),
  );
  for (let i = 0; i < fatals; i++) {
    restarts.push({ kind: 'close_fatal', code: CLOSE_CODES.fatal[i % 2]! });
  }
  const credentials = Math.min(1, Math.floor(windowMs / options.credentialsEveryMs));
  for (let i = 0; i < credentials; i++) restarts.push({ kind: 'token_rejected' });
  // Shuffle (Fisher-Yates) so the kill -9 is not always first.
  for (let i = restarts.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [restarts[i], restarts[j]] = [restarts[j]!, restarts[i]!];
  }
  const segment = (restartEnd - startMs) / (restarts.length + 1);
  const planned: PlannedFault[] = restarts.map((fault, i) => ({
    atMs: Math.round(startMs + segment * (i + 1) + (rng.float() - 0.5) * segment * 0.5),
    fault,
  }));

  // Ordinary faults on a jittered grid.
  const ordinary: PlannedFault[] = [];
  for (let at = startMs + rng.int(gapMs[0], gapMs[1]); at < endMs;) {
    const kind = rng.weighted(WEIGHTS);
    ordinary.push({ atMs: at, fault: drawFault(rng, kind, maxPayloadBytes) });
    at += rng.int(gapMs[0], gapMs[1]);
  }

  // Coverage: every kind at least once, taking slots from the most frequent kinds.
  const kinds = Object.keys(WEIGHTS) as WeightedKind[];
  if (ordinary.length >= kinds.length * 2) {
    for (const kind of kinds) {
      if (ordinary.some((p) => p.fault.kind === kind)) continue;
      const counts = new Map<FaultKind, number>();
      for (const p of ordinary) counts.set(p.fault.kind, (counts.get(p.fault.kind) ?? 0) + 1);
      const donors = ordinary.filter((p) => (counts.get(p.fault.kind) ?? 0) > 1);
      const slot = rng.pick(donors);
      slot.fault = drawFault(rng, kind, maxPayloadBytes);
    }
  }
  return [...planned, ...ordinary].sort((a, b) => a.atMs - b.atMs);
}

/** `{ kind: count }` of a schedule, for the summary. */
export function countKinds(plan: readonly PlannedFault[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { fault } of plan) counts[fault.kind] = (counts[fault.kind] ?? 0) + 1;
  return counts;
}
