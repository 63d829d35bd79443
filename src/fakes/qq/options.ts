/**
 * Options of the fake QQ Bot server. Every timing is configurable so tests can run the whole
 * protocol with tiny intervals; the defaults mirror the live platform where it is known.
 */

/** `session_start_limit` as returned by `GET /gateway/bot`. */
export interface SessionStartLimit {
  total: number;
  remaining: number;
  /** Milliseconds until `remaining` goes back to `total`, counted from when it was set. */
  reset_after: number;
  max_concurrency: number;
}

/** The bot user announced in READY and returned by `GET /users/@me`. */
export interface FakeBotUser {
  id: string;
  username: string;
}

/**
 * Resolved settings. `FakeQQServer.settings` is this object and stays mutable: a change
 * applies to the next request, connection or event that reads it.
 */
export interface FakeQQSettings {
  /** Interface to listen on. */
  host: string;
  /** Port to listen on; 0 picks a free one. */
  port: number;
  appId: string;
  clientSecret: string;
  /** Lifetime of a minted access token. Fractions are allowed for tests. */
  tokenTtlSec: number;
  /** A token request within this many seconds of expiry mints a new token (DOC api-use.md). */
  renewWindowSec: number;
  /** Sent in Hello (op 10). */
  heartbeatIntervalMs: number;
  /**
   * Silence (no heartbeat since Hello or since the last heartbeat) after which the server
   * records a `heartbeat-missed` violation and closes with 4009. `null` disables it;
   * `undefined` means `2 × heartbeatIntervalMs + 500`.
   */
  heartbeatDeadlineMs: number | null | undefined;
  /** Delay before Hello; `null` never sends it (handshake-timeout tests). */
  helloDelayMs: number | null;
  /** Whether heartbeats get an ACK (op 11) on every connection. */
  ackHeartbeats: boolean;
  bot: FakeBotUser;
  shards: number;
  sessionStartLimit: SessionStartLimit;
  /** Intent bits the bot is not allowed to use: Identify with any of them closes 4014. */
  forbiddenIntents: number;
  /** Close code after op 9 `false` when Resume names an unknown session. */
  unknownSessionCloseCode: number;
  /** Delay between op 7 and the 4009 close; `null` leaves the closing to the client. */
  reconnectCloseDelayMs: number | null;
  /** Delay between op 9 and its close; `null` leaves the connection open. */
  invalidSessionCloseDelayMs: number | null;
  /** Dispatches kept per session for Resume; an older `seq` gets close 4007. */
  replayBufferSize: number;
  /**
   * How long a session stays resumable after its last connection closed; a Resume later gets
   * op 9 + `unknownSessionCloseCode`. `null`: forever. The live platform documents none.
   */
  resumeWindowMs: number | null;
  /** Largest frame the server accepts from a client (larger ones close with 1009). */
  maxClientFrameBytes: number;
  /**
   * Whether C2C/group sends without `msg_id`/`event_id` are accepted. The platform stopped
   * active pushes on 2025-04-21 and answers 40034102.
   */
  allowActiveSends: boolean;
  /** Whether a `msg_id` must be the id of a message this fake dispatched (else 40034024). */
  requireKnownMsgId: boolean;
  /** Passive replies allowed per `msg_id` (22009 beyond it); `null` for no limit. */
  maxRepliesPerMsgId: number | null;
  /** Guild id used in channel-send responses when the channel was never seen. */
  defaultGuildId: string;
  /** Serves the `/_fake/*` control routes (used by the standalone entry). */
  controlApi: boolean;
}

/** Constructor options: any subset of the settings. */
export type FakeQQServerOptions = Partial<FakeQQSettings>;

/** Production-like defaults (heartbeat interval from the DOC example). */
export const DEFAULTS: Readonly<FakeQQSettings> = Object.freeze({
  host: '127.0.0.1',
  port: 0,
  appId: '102000000',
  clientSecret: 'demo-secret-0123456789',
  tokenTtlSec: 7200,
  renewWindowSec: 60,
  heartbeatIntervalMs: 45_000,
  heartbeatDeadlineMs: undefined,
  helloDelayMs: 0,
  ackHeartbeats: true,
  bot: Object.freeze({ id: '11111111111111111111', username: 'hermes-demo-bot' }),
  shards: 1,
  sessionStartLimit: Object.freeze({
    total: 1000,
    remaining: 1000,
    reset_after: 86_400_000,
    max_concurrency: 1,
  }),
  forbiddenIntents: 0,
  unknownSessionCloseCode: 4006,
  reconnectCloseDelayMs: 50,
  invalidSessionCloseDelayMs: 50,
  replayBufferSize: 1000,
  resumeWindowMs: null,
  maxClientFrameBytes: 1024 * 1024,
  allowActiveSends: false,
  requireKnownMsgId: true,
  maxRepliesPerMsgId: 5,
  defaultGuildId: '9000000000000000001',
  controlApi: false,
});

let fakesStarted = 0;

/**
 * An app id no other fake of any live process uses (pid and a counter, fixed width): the
 * gateway locks each app id across processes, so tests running side by side must not share one.
 */
export function uniqueAppId(): string {
  fakesStarted += 1;
  return `10${String(process.pid).padStart(7, '0')}${String(fakesStarted).padStart(4, '0')}`;
}

/** Merges options over the defaults, copying nested objects so a fake never shares them. */
export function resolveSettings(options: FakeQQServerOptions = {}): FakeQQSettings {
  const defined = Object.fromEntries(
    Object.entries(options).filter(([, value]) => value !== undefined),
  ) as FakeQQServerOptions;
  return {
    ...DEFAULTS,
    appId: uniqueAppId(),
    ...defined,
    bot: { ...DEFAULTS.bot, ...options.bot },
    sessionStartLimit: { ...DEFAULTS.sessionStartLimit, ...options.sessionStartLimit },
    // `undefined` is meaningful here (derived deadline), so it is copied as given.
    heartbeatDeadlineMs: options.heartbeatDeadlineMs,
  };
}

/** The heartbeat deadline in force for a new connection, or `null` when disabled. */
export function heartbeatDeadline(settings: FakeQQSettings): number | null {
  const { heartbeatDeadlineMs, heartbeatIntervalMs } = settings;
  if (heartbeatDeadlineMs === null) return null;
  return heartbeatDeadlineMs ?? 2 * heartbeatIntervalMs + 500;
}
