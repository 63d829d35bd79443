/**
 * Options of the fake Discord gateway + REST server. Every timing is configurable so tests can
 * run the whole protocol with tiny intervals; the defaults mirror the live platform where the
 * docs say it (/work/shared/spec/discord-gateway.md).
 */
import { randomBytes, randomInt } from 'node:crypto';

export interface FakeSessionStartLimit {
  total: number;
  remaining: number;
  /** Milliseconds until `remaining` returns to `total`. */
  reset_after: number;
  max_concurrency: number;
}

export type ChannelState = 'ok' | 'unknown' | 'no_access' | 'no_permission' | 'dm_refused';

export interface FakeDiscordSettings {
  host: string;
  /** The bot token the fake accepts (`Authorization: Bot <token>`, Identify/Resume `token`). */
  token: string;
  bot: { id: string; username: string };
  applicationId: string;
  heartbeatIntervalMs: number;
  /**
   * Silence after which the server drops the connection (no close frame: the session stays
   * resumable). `null` disables; `undefined` means interval × 1.5 + 500 ms.
   */
  heartbeatDeadlineMs: number | null | undefined;
  /** Whether heartbeats get op 11. */
  ackHeartbeats: boolean;
  /** Delay before Hello; `null` never sends it. */
  helloDelayMs: number | null;
  sessionStartLimit: FakeSessionStartLimit;
  /** A second Identify sooner than this (per concurrency bucket) gets op 9 false. */
  identifyWindowMs: number;
  /** Privileged intent bits the app may use (Developer Portal toggles); others close 4014. */
  allowedPrivilegedIntents: number;
  /** How long a session stays resumable after its connection dropped; `null`: forever. */
  resumeWindowMs: number | null;
  /** Dispatches kept per session for replay. */
  replayBufferSize: number;
  /** Commands a connection may send per window (docs: 120 / 60 s); beyond: close 4008. */
  commandLimit: { count: number; windowMs: number };
  /** Guilds announced in READY (then one GUILD_CREATE each when GUILDS was requested). */
  guildIds: string[];
  // ---- REST ----
  /** Messages per channel per window (the message-create bucket); observed 5 / 5 s. */
  bucketLimit: { count: number; windowMs: number };
  /** Requests per second for the whole bot (docs: 50). */
  globalPerSecond: number;
  /** How long an enforced nonce names its message (docs: "a few minutes"). */
  nonceWindowMs: number;
  /** 401/403/429 answers per 10 min before the Cloudflare-style ban (docs: 10,000). */
  invalidRequestBan: number;
  /** Channels with a state other than `ok` (unknown ids are `ok`). */
  channels: Record<string, ChannelState>;
}

export type FakeDiscordOptions = Partial<FakeDiscordSettings>;

export const DEFAULTS: FakeDiscordSettings = {
  host: '127.0.0.1',
  token: 'MTAwMDAwMDAwMDAwMDAwMDAx.GfAkEt.fake-discord-token-0123456789abcdef',
  bot: { id: '100000000000000001', username: 'hermes-fake-bot' },
  applicationId: '100000000000000001',
  heartbeatIntervalMs: 41_250,
  heartbeatDeadlineMs: undefined,
  ackHeartbeats: true,
  helloDelayMs: 0,
  sessionStartLimit: { total: 1000, remaining: 1000, reset_after: 86_400_000, max_concurrency: 1 },
  identifyWindowMs: 5_000,
  allowedPrivilegedIntents: 1 << 15,
  resumeWindowMs: 180_000,
  replayBufferSize: 10_000,
  commandLimit: { count: 120, windowMs: 60_000 },
  guildIds: ['200000000000000001'],
  bucketLimit: { count: 5, windowMs: 5_000 },
  globalPerSecond: 50,
  nonceWindowMs: 300_000,
  invalidRequestBan: 10_000,
  channels: {},
};

/**
 * A bot of its own per fake unless the test names one: the gateway's credential lock is
 * machine-wide (one bot token, one gateway), so fakes of test files that run side by side
 * must not hand out the same bot.
 */
function uniqueBot(): { token: string; id: string } {
  const id = `1${randomInt(10 ** 9, 10 ** 10 - 1)}${randomInt(10 ** 7, 10 ** 8 - 1)}`;
  const tail = randomBytes(16).toString('hex');
  return { id, token: `${Buffer.from(id).toString('base64url')}.GfAkEt.fake-discord-${tail}` };
}

export function resolveSettings(options: FakeDiscordOptions): FakeDiscordSettings {
  const own = options.token === undefined && options.bot?.id === undefined ? uniqueBot() : null;
  return {
    ...DEFAULTS,
    ...(own === null ? {} : { token: own.token }),
    ...options,
    bot: { ...DEFAULTS.bot, ...(own === null ? {} : { id: own.id }), ...options.bot },
    sessionStartLimit: { ...DEFAULTS.sessionStartLimit, ...options.sessionStartLimit },
    commandLimit: { ...DEFAULTS.commandLimit, ...options.commandLimit },
    bucketLimit: { ...DEFAULTS.bucketLimit, ...options.bucketLimit },
    channels: { ...options.channels },
  };
}
