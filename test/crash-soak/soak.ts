/**
 * The crash soak (GitHub issue 15): the built gateway CLI with the echo handler and three
 * instances, `qqbot` against the fake QQ server, `telegram` against the fake Bot API and
 * `discord` against the fake Discord gateway + REST, each fake sending a steady stream over many
 * chats, while the gateway is killed with SIGKILL at seeded random moments (and stopped with
 * SIGTERM a few times) and restarted 0.5 s after each exit, as systemd's RestartSec would. The
 * platforms share one gateway, as a user's bots do: every restart hits all of them, and all
 * resume at once.
 *
 * Invariants, checked at the end, per platform: every message the fake sent is answered; on
 * QQ exactly once (one accepted reply per msg_id); on Discord exactly once (one message created
 * per answered message: the fake answers a repeated enforced nonce with the message it names
 * and creates nothing, as Discord does); on Telegram at least once, each duplicate
 * announced by the gateway (its "without an idempotency key" re-send lines, which
 * hermes_possible_duplicate_replies_total counts); each chat's first replies come in the
 * order of its messages; the state file parses whenever it is read (after every kill too).
 * Pieces shared with the chaos soak: the gateway process wrapper and the seeded PRNG.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { GatewayProcess, type LogLine, type ProcessExit } from '../chaos/gateway-process.js';
import { Rng } from '../chaos/prng.js';
import { FakeDiscordServer } from '../../src/fakes/discord/index.js';
import { FakeQQServer } from '../../src/fakes/qq/server.js';
import { FakeTelegramServer } from '../../src/fakes/telegram/server.js';
import { sandboxEnv } from '../support/spawn-gateway.js';

const APP_ID = '102088888';
const CLIENT_SECRET = 'crash-soak-secret-7e2a9c';
/** systemd's RestartSec in the unit the gateway installs. */
const RESTART_DELAY_MS = 500;
/** After the stream, answers that stopped coming for this long are not coming. */
const SETTLE_QUIET_MS = 15_000;

export type SoakPlatform = 'qqbot' | 'telegram' | 'discord';
export const SOAK_PLATFORMS: readonly SoakPlatform[] = ['qqbot', 'telegram', 'discord'];
/** The platforms with an idempotency key: every message answered exactly once. */
const EXACTLY_ONCE: readonly SoakPlatform[] = ['qqbot', 'discord'];

export interface CrashSoakOptions {
  seed: number;
  /** The instances of the gateway under test (all by default). */
  platforms: readonly SoakPlatform[];
  /** How long a restarted gateway may take to answer its first message. */
  upTimeoutMs: number;
  /** How long the stream goes on after the last restart. */
  tailMs: number;
  /** SIGKILLs and SIGTERMs spread over the run. */
  kills: number;
  terms: number;
  /** Messages per second per platform, over `chats` chats each. */
  rate: number;
  chats: number;
  cliPath: string;
  /** Wait this long after the stream ends for the last answers. */
  settleMs: number;
  progress: (line: string) => void;
  keepDir: boolean;
}

/** How one platform came back after one restart. */
export interface PlatformRestart {
  /** Spawn → first accepted reply of the next process (ms); null when none came. */
  firstReplyMs: number | null;
  /** How the next process continued: at the resume point, or afresh (gap not replayed). */
  session: 'resumed' | 'fell_back' | 'none';
  /**
   * Discord: messages the accepted Resume replayed that had been answered before it, i.e. how
   * far the resume point lagged behind the work done (the handled watermark holds it at the
   * lowest unfinished message; without it the platform would replay the whole session).
   */
  replayedAnswered?: number;
  /** Discord: messages answered before that Resume (the whole session's worth). */
  answeredBefore?: number;
}

export interface RestartRecord {
  how: 'kill9' | 'term';
  at: number;
  exitCode: number | null;
  platforms: Partial<Record<SoakPlatform, PlatformRestart>>;
}

export interface PlatformSummary {
  sent: number;
  answered: number;
  lost: number;
  /** Replies beyond the first per message (QQ, Discord: must be 0; Telegram: counted). */
  duplicates: number;
  /** Telegram: re-sent replies the gateway announced as possible duplicates. */
  announced_duplicates: number;
  /**
   * Re-sends the platform recognised as already sent: QQ refuses them (40054005), Discord
   * answers a repeated enforced nonce with the message it names.
   */
  deduplicated_resends: number;
  order_violations: number;
  resumes_accepted: number;
  fell_back: number;
  first_reply_ms: { median: number | null; p95: number | null; max: number | null };
  /** Discord: the most already-answered messages one Resume replayed; null elsewhere. */
  replayed_answered_max: number | null;
  /**
   * Discord: already-answered messages the Resumes replayed, as a share of those answered
   * before each Resume (a few percent when Resume starts at the handled watermark; 1 when it
   * starts at the session's beginning); null elsewhere.
   */
  replayed_answered_share: number | null;
}

export interface CrashSoakSummary {
  crash_soak_summary: true;
  seed: number;
  duration_ms: number;
  rate: number;
  chats: number;
  /** Totals over the platforms. */
  sent: number;
  answered: number;
  lost: number;
  torn_state_reads: number;
  state_reads: number;
  kills: number;
  terms: number;
  platforms: Partial<Record<SoakPlatform, PlatformSummary>>;
  restarts: RestartRecord[];
  unexpected_exits: number;
  /**
   * Events the gateway logged as dropped by its queue limits (GW_ERR_HANDLER_QUEUE_OVERFLOW,
   * all platforms: the summary lines do not say which): an overloaded gateway's losses. Lines
   * a SIGKILL cut off are not counted.
   */
  queue_overflow_drops: number;
  /** End of the stream → the last answer (the last process catching up). */
  settle_ms: number | null;
  violations: string[];
}

interface Message {
  chat: number;
  n: number;
  accepted: number;
  /** When its first reply was accepted (ms since the epoch). */
  firstAt?: number;
}

/** One platform's fake, stream and tally inside the soak. */
interface Side {
  readonly platform: SoakPlatform;
  readonly messages: Map<string, Message>;
  /** Per chat: the message numbers of its first accepted replies, in arrival order. */
  readonly replyOrder: number[][];
  sent: number;
  dedupResends: number;
  announced: number;
  /** Sends one message of chat `chat`, number `n`. */
  send(chat: number, n: number): void;
  close(): Promise<void>;
}

/** A bot id of its own: credential locks are machine-wide, and tests use the fake's default. */
const TELEGRAM_TOKEN = '7990001515:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_soak';
/** Telegram chat ids of the soak: private chats 5001.. */
const TG_CHAT_BASE = 5_001;
/** Discord DM channel ids of the soak: 310000000000000000 + chat. */
const DC_CHANNEL_BASE = 310_000_000_000_000_000n;
/** How often the soak reads what the Discord fake recorded (the fake has no event per send). */
const DC_POLL_MS = 10;

export async function runCrashSoak(options: CrashSoakOptions): Promise<CrashSoakSummary> {
  const rng = new Rng(options.seed);
  const dir = await mkdtemp(join(tmpdir(), 'hermes-crash-soak-'));
  const statePath = join(dir, 'state', 'gateway_state.json');
  const configPath = join(dir, 'config.yaml');
  const violations: string[] = [];
  const sides = new Map<SoakPlatform, Side>();
  let current: GatewayProcess | null = null;
  let currentRestart: RestartRecord | null = null;
  let unexpectedExits = 0;
  const restarts: RestartRecord[] = [];
  let lastReplyAt = Date.now();
  let streamEndedAt = 0;
  let settleMs: number | null = null;
  /** The platforms that had a reply accepted since firstReplyAfter() was armed. */
  const repliedSinceArmed = new Set<SoakPlatform>();
  /** Set at each start: the next getUpdates is the new process's first. */
  let telegramFirstPoll = false;
  /** Resolves at the first accepted reply after it is set, or after a timeout. */
  let replyWaiter: (() => void) | null = null;

  const newSide = (platform: SoakPlatform, send: Side['send'], close: Side['close']): Side => ({
    platform,
    messages: new Map(),
    replyOrder: Array.from({ length: options.chats }, () => []),
    sent: 0,
    dedupResends: 0,
    announced: 0,
    send,
    close,
  });
  /** An accepted reply to `key` on `side`, at `at` (now unless the fake recorded when). */
  const replied = (side: Side, key: string, at = Date.now()): void => {
    const message = side.messages.get(key);
    if (message === undefined) {
      violations.push(`${side.platform}: reply to an unknown message ${key}`);
      return;
    }
    message.accepted += 1;
    lastReplyAt = Math.max(lastReplyAt, at);
    repliedSinceArmed.add(side.platform);
    if (message.accepted === 1) {
      side.replyOrder[message.chat]!.push(message.n);
      message.firstAt = at;
    }
    replyWaiter?.();
    const restart = currentRestart?.platforms[side.platform];
    if (
      restart !== undefined &&
      restart.firstReplyMs === null &&
      current !== null &&
      at >= current.startedAt
    ) {
      restart.firstReplyMs = at - current.startedAt;
    }
  };
  const sessionOf = (platform: SoakPlatform, session: 'resumed' | 'fell_back'): void => {
    const restart = currentRestart?.platforms[platform];
    if (restart !== undefined && restart.session === 'none') restart.session = session;
    replyWaiter?.();
  };

  const platformsConfig: Record<string, unknown> = {};
  const env: Record<string, string> = {};
  let qq: FakeQQServer | null = null;
  if (options.platforms.includes('qqbot')) {
    const fake = await FakeQQServer.start({
      appId: APP_ID,
      clientSecret: CLIENT_SECRET,
      // Enough to replay every message of a restart gap; the window is far longer than one.
      replayBufferSize: 200_000,
      resumeWindowMs: 120_000,
      maxRepliesPerMsgId: null,
      heartbeatIntervalMs: 5_000,
    });
    qq = fake;
    const side = newSide(
      'qqbot',
      (chat, n) => {
        const record = fake.dispatchC2CMessage({
          content: `c${chat} m${n}`,
          userOpenid: `CHAT${chat}`,
        });
        side.messages.set(record.d.id, { chat, n, accepted: 0 });
      },
      () => fake.close(),
    );
    sides.set('qqbot', side);
    fake.on('send-request', (r) => {
      const body = r.body as { msg_id?: string } | undefined;
      const response = r.response as { code?: number } | undefined;
      if (!r.accepted) {
        if (response?.code === 40054005) side.dedupResends += 1;
        return;
      }
      replied(side, String(body?.msg_id));
    });
    fake.on('resume', (r) => {
      if (r.accepted) sessionOf('qqbot', 'resumed');
    });
    fake.on('identify', (r) => {
      if (r.accepted) sessionOf('qqbot', 'fell_back');
    });
    env.CRASH_SOAK_SECRET = CLIENT_SECRET;
    platformsConfig.qqbot = {
      enabled: true,
      app_id: APP_ID,
      client_secret: '${CRASH_SOAK_SECRET}',
      token_url: fake.tokenUrl,
      api_base: fake.apiBase,
      reconnect: { backoff_ms: [100, 200, 400], max_attempts: 20 },
    };
  }
  if (options.platforms.includes('telegram')) {
    const fake = await FakeTelegramServer.start({ token: TELEGRAM_TOKEN });
    const side = newSide(
      'telegram',
      (chat, n) => {
        const id = TG_CHAT_BASE + chat;
        const { messageId } = fake.message(`c${chat} m${n}`, {
          chat: { id, type: 'private', first_name: `U${chat}` },
        });
        side.messages.set(`${id}:${messageId}`, { chat, n, accepted: 0 });
      },
      () => fake.close(),
    );
    sides.set('telegram', side);
    fake.on('sent', (r: { chatId: number; replyTo: number | null }) => {
      replied(side, `${r.chatId}:${r.replyTo}`);
    });
    // A process's first poll says how it continued: at its resume point (an offset), or
    // from the queue head (none).
    fake.on('poll', (poll: { offset: number }) => {
      if (!telegramFirstPoll) return;
      telegramFirstPoll = false;
      sessionOf('telegram', poll.offset > 0 ? 'resumed' : 'fell_back');
    });
    env.CRASH_SOAK_TG_TOKEN = TELEGRAM_TOKEN;
    platformsConfig.telegram = {
      enabled: true,
      token: '${CRASH_SOAK_TG_TOKEN}',
      api_base: fake.apiBase,
      polling: { timeout_s: 5 },
      reconnect: { backoff_ms: [100, 200, 400], max_attempts: 20 },
      // The fake does not rate limit; the soak's rate is far above Telegram's real limits.
      send: { private_interval_ms: 0, group_interval_ms: 0, global_interval_ms: 0 },
    };
  }
  let dc: FakeDiscordServer | null = null;
  let dcPoller: NodeJS.Timeout | null = null;
  /** The soak's messages on Discord in dispatch order, with their seq. */
  const dcStream: Array<{ s: number; message: Message }> = [];
  if (options.platforms.includes('discord')) {
    // A bot of its own (the fake's default when none is named): credential locks are
    // machine-wide.
    const fake = await FakeDiscordServer.start({
      heartbeatIntervalMs: 5_000,
      // The fake drops a client that stops heartbeating; generous (as in the chaos soak), so
      // that a loaded machine's stall is not taken for a client that forgot to beat.
      heartbeatDeadlineMs: 5_000 * 3 + 2_000,
      // Enough to replay every dispatch of a restart gap (the bot's own messages come back as
      // dispatches too); the window is far longer than one gap.
      replayBufferSize: 400_000,
      resumeWindowMs: 120_000,
      // The soak's rate (4 msg/s per channel, hundreds per second in all) is far above
      // Discord's real limits (5 / 5 s per channel, 50 / s per bot); pacing is not under test.
      bucketLimit: { count: 1_000_000, windowMs: 1_000 },
      globalPerSecond: 1_000_000,
    });
    dc = fake;
    const side = newSide(
      'discord',
      (chat, n) => {
        const dispatch = fake.dispatchMessage({
          content: `c${chat} m${n}`,
          channelId: String(DC_CHANNEL_BASE + BigInt(chat)),
          guildId: null,
          authorId: String(DC_CHANNEL_BASE + 100_000n + BigInt(chat)),
        });
        if (dispatch === null) {
          violations.push(`discord: no session to send c${chat} m${n} to`);
          return;
        }
        const message: Message = { chat, n, accepted: 0 };
        side.messages.set((dispatch.d as { id: string }).id, message);
        dcStream.push({ s: dispatch.s, message });
      },
      async () => {
        if (dcPoller !== null) clearInterval(dcPoller);
        poll();
        for (const v of fake.violations) violations.push(`discord fake: ${v.kind}: ${v.detail}`);
        await fake.close();
      },
    );
    sides.set('discord', side);
    // Messages created (a repeated enforced nonce creates none), and each process's session:
    // resumed, or a new one (the gap is then not replayed).
    const seen = { sent: 0, resumes: 0, identifies: 0 };
    const poll = (): void => {
      for (; seen.sent < fake.sent.length; seen.sent++) {
        const message = fake.sent[seen.sent]!;
        const ref = message.body.message_reference as { message_id?: unknown } | undefined;
        replied(side, String(ref?.message_id), message.at);
      }
      const { resumes, identifies } = fake.records;
      for (; seen.resumes < resumes.length; seen.resumes++) {
        const resume = resumes[seen.resumes]!;
        if (!resume.accepted) continue;
        const restart = currentRestart?.platforms.discord;
        if (restart !== undefined && restart.session === 'none') {
          let replayed = 0;
          let before = 0;
          for (const { s, message } of dcStream) {
            if (message.firstAt === undefined || message.firstAt >= resume.at) continue;
            before += 1;
            if (s > resume.seq) replayed += 1;
          }
          restart.replayedAnswered = replayed;
          restart.answeredBefore = before;
        }
        sessionOf('discord', 'resumed');
      }
      for (; seen.identifies < identifies.length; seen.identifies++) {
        if (identifies[seen.identifies]!.accepted) sessionOf('discord', 'fell_back');
      }
      // A 200 that created nothing: the enforced nonce named a message already created.
      const ok = fake.records.sendRequests.filter((r) => r.status === 200).length;
      side.dedupResends = ok - fake.sent.length;
    };
    dcPoller = setInterval(poll, DC_POLL_MS);
    env.CRASH_SOAK_DC_TOKEN = fake.settings.token;
    platformsConfig.discord = {
      enabled: true,
      token: '${CRASH_SOAK_DC_TOKEN}',
      api_base: fake.apiBase,
      reconnect: { backoff_ms: [100, 200, 400], max_attempts: 20 },
      send: { global_per_second: 1_000_000 },
    };
  }
  const config = {
    state_file: statePath,
    log_level: 'info',
    shutdown_timeout_ms: 4_000,
    heartbeat_interval_ms: 1_000,
    handler: { type: 'echo', concurrency: 32, queue_limit: 1_000, max_queued_events: 50_000 },
    platforms: platformsConfig,
  };
  await writeFile(configPath, stringify(config), { mode: 0o600 });
  const gatewayEnv = sandboxEnv(dir, env);

  const counters = { torn: 0, reads: 0, overflow: 0 };
  const readState = async (): Promise<void> => {
    let text: string;
    try {
      text = await readFile(statePath, 'utf8');
    } catch {
      return; // Not written yet.
    }
    counters.reads += 1;
    try {
      JSON.parse(text);
    } catch {
      counters.torn += 1;
      violations.push(`torn state file (${text.length} bytes)`);
    }
  };

  /** What the gateway says about Telegram: which re-sends may arrive twice. */
  const onLine = (line: LogLine): void => {
    if (line.code === 'GW_ERR_HANDLER_QUEUE_OVERFLOW') {
      counters.overflow += typeof line.dropped === 'number' ? line.dropped : 1;
    }
    if (
      line.platform === 'telegram' &&
      line.level === 40 &&
      typeof line.replies === 'number' &&
      typeof line.event_id === 'string'
    ) {
      sides.get('telegram')!.announced += line.replies;
    }
  };

  let expectExit = false;
  const start = (): GatewayProcess => {
    const lines: string[] = [];
    const gateway = new GatewayProcess(
      options.cliPath,
      ['run', '--config', configPath],
      gatewayEnv,
      (line, raw) => {
        onLine(line);
        if (options.keepDir) lines.push(raw);
      },
    );
    if (options.keepDir) {
      void gateway.exited.then(() =>
        writeFile(join(dir, `gateway-${gateway.pid}.log`), lines.join('\n') + '\n'),
      );
    }
    expectExit = false;
    telegramFirstPoll = true;
    void gateway.exited.then((exit: ProcessExit) => {
      if (!expectExit) {
        unexpectedExits += 1;
        violations.push(
          `gateway ${gateway.pid} exited on its own: ${exit.code ?? exit.signal} ${gateway.stderr.slice(-500)}`,
        );
      }
    });
    return gateway;
  };

  // The restarts: seeded kinds in a seeded order. Each comes a seeded 0.2–2 s after the
  // process it ends was up (a reply on every platform, and every platform's session back), so
  // every kill hits
  // a gateway under load
  // (however slowly a loaded machine starts node), and at a random point of its work.
  const total = options.kills + options.terms;
  const kinds: Array<'kill9' | 'term'> = [
    ...Array<'kill9'>(options.kills).fill('kill9'),
    ...Array<'term'>(options.terms).fill('term'),
  ];
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  const moments = kinds.map((how) => ({ how, afterFirstReplyMs: 200 + rng.float() * 1_800 }));
  /**
   * Resolves once the process is up: every platform had a reply since this was called and has
   * its session (resumed or afresh); false after `timeoutMs`. A kill before that would only
   * hit the re-sends a process starts with (and leave a platform without a first-reply
   * latency for the restart).
   */
  const firstReplyAfter = (timeoutMs: number): Promise<boolean> =>
    new Promise((resolve) => {
      repliedSinceArmed.clear();
      const timer = setTimeout(() => {
        replyWaiter = null;
        resolve(false);
      }, timeoutMs);
      replyWaiter = () => {
        const sessions = Object.values(currentRestart?.platforms ?? {});
        if (repliedSinceArmed.size < sides.size || sessions.some((p) => p.session === 'none')) {
          return;
        }
        clearTimeout(timer);
        replyWaiter = null;
        resolve(true);
      };
    });

  const t0 = Date.now();
  current = start();
  // The stream: as many messages per platform as the rate owes since it began, every 10 ms.
  let streaming = true;
  const stream = (async () => {
    // The QQ and Discord fakes need a session before they can dispatch: wait for the first
    // READYs. Telegram queues updates until they are confirmed, like the platform.
    while (
      ((qq !== null && qq.currentSessionId === null) || (dc !== null && dc.session === null)) &&
      streaming
    ) {
      await sleep(20);
    }
    const began = Date.now();
    while (streaming) {
      const owed = Math.floor(((Date.now() - began) / 1000) * options.rate);
      for (const side of sides.values()) {
        while (side.sent < owed) {
          side.send(side.sent % options.chats, Math.floor(side.sent / options.chats));
          side.sent += 1;
        }
      }
      await sleep(10);
    }
  })();

  const allAnswered = (): boolean =>
    [...sides.values()].every((side) => [...side.messages.values()].every((m) => m.accepted > 0));
  try {
    for (const moment of moments) {
      if (!(await firstReplyAfter(options.upTimeoutMs))) {
        violations.push(`no reply within ${options.upTimeoutMs} ms of restart #${restarts.length}`);
      }
      await sleep(moment.afterFirstReplyMs);
      const gateway: GatewayProcess = current;
      expectExit = true;
      const record: RestartRecord = {
        how: moment.how,
        at: Date.now() - t0,
        exitCode: null,
        platforms: Object.fromEntries(
          [...sides.keys()].map((p) => [p, { firstReplyMs: null, session: 'none' }]),
        ),
      };
      gateway.signal(moment.how === 'kill9' ? 'SIGKILL' : 'SIGTERM');
      const exit = await Promise.race([gateway.exited, sleep(15_000).then(() => null)]);
      if (exit === null) {
        violations.push(`gateway ${gateway.pid} did not exit within 15 s of ${moment.how}`);
        gateway.signal('SIGKILL');
        await gateway.exited;
      } else record.exitCode = exit.code;
      if (moment.how === 'term' && exit !== null && exit.code !== 0) {
        violations.push(`SIGTERM ended the gateway with ${exit.code ?? exit.signal}, not 0`);
      }
      await readState();
      await sleep(RESTART_DELAY_MS);
      currentRestart = record;
      current = start();
      restarts.push(record);
      options.progress(
        `${Math.round((Date.now() - t0) / 1000)} s: ${moment.how} #${restarts.length}/${total}, sent ${[
          ...sides.values(),
        ]
          .map((side) => `${side.platform} ${side.sent}`)
          .join(', ')}`,
      );
    }
    // The last process works under the stream for a while too, then the stream ends.
    await firstReplyAfter(options.upTimeoutMs);
    await sleep(options.tailMs);
    streaming = false;
    await stream;
    streamEndedAt = Date.now();
    // Settle: wait until every message has an answer, or until answers stop coming for
    // SETTLE_QUIET_MS (a slow machine still catching up is not a loss), or the deadline.
    const deadline = Date.now() + options.settleMs;
    while (Date.now() < deadline && Date.now() - lastReplyAt < SETTLE_QUIET_MS && !allAnswered()) {
      await sleep(100);
    }
    // Replies the fake time-stamped just before the stream's end count as none left to wait for.
    settleMs = Math.max(0, lastReplyAt - streamEndedAt);
    await readState();
    expectExit = true;
    current.signal('SIGTERM');
    await Promise.race([current.exited, sleep(15_000)]);
    current.signal('SIGKILL');
    await readState();
  } finally {
    streaming = false;
    await stream.catch(() => undefined);
    expectExit = true;
    current?.signal('SIGKILL');
    await current?.exited;
    for (const side of sides.values()) {
      try {
        await side.close();
      } catch (err) {
        violations.push(`${side.platform} fake: ${(err as Error).message}`);
      }
    }
    if (options.keepDir) options.progress(`kept ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  }

  const platforms: Partial<Record<SoakPlatform, PlatformSummary>> = {};
  for (const side of sides.values()) {
    platforms[side.platform] = tally(side, restarts, violations);
  }
  const all = Object.values(platforms);
  return {
    crash_soak_summary: true,
    seed: options.seed,
    duration_ms: Date.now() - t0,
    rate: options.rate,
    chats: options.chats,
    sent: all.reduce((n, p) => n + p.sent, 0),
    answered: all.reduce((n, p) => n + p.answered, 0),
    lost: all.reduce((n, p) => n + p.lost, 0),
    torn_state_reads: counters.torn,
    state_reads: counters.reads,
    kills: restarts.filter((r) => r.how === 'kill9').length,
    terms: restarts.filter((r) => r.how === 'term').length,
    platforms,
    restarts,
    unexpected_exits: unexpectedExits,
    queue_overflow_drops: counters.overflow,
    settle_ms: settleMs,
    violations,
  };
}

/** One platform's figures; its invariant violations go to `violations`. */
function tally(side: Side, restarts: RestartRecord[], violations: string[]): PlatformSummary {
  const name = side.platform;
  let lost = 0;
  let duplicates = 0;
  let answered = 0;
  for (const m of side.messages.values()) {
    if (m.accepted === 0) lost += 1;
    else answered += 1;
    if (m.accepted > 1) duplicates += m.accepted - 1;
  }
  let orderViolations = 0;
  for (const [chat, order] of side.replyOrder.entries()) {
    for (let i = 1; i < order.length; i++) {
      if (order[i]! < order[i - 1]!) {
        orderViolations += 1;
        if (orderViolations <= 5) {
          violations.push(`${name} chat ${chat}: reply to m${order[i]} after m${order[i - 1]}`);
        }
      }
    }
  }
  if (lost > 0) violations.push(`${name}: ${lost} messages never answered`);
  // QQ and Discord have an idempotency key: exactly once. Telegram has none: every duplicate
  // must be one the gateway announced (a re-send of a reply left in flight), never a silent one.
  if (EXACTLY_ONCE.includes(name) && duplicates > 0) {
    violations.push(`${name}: ${duplicates} duplicate replies`);
  }
  if (name === 'telegram' && duplicates > side.announced) {
    violations.push(
      `telegram: ${duplicates} duplicate replies, only ${side.announced} announced as possible`,
    );
  }
  const mine = restarts.flatMap((r) => {
    const p = r.platforms[name];
    return p === undefined ? [] : [p];
  });
  const replays = mine.flatMap((r) =>
    r.replayedAnswered === undefined ? [] : [r.replayedAnswered],
  );
  const sum = (list: number[]): number => list.reduce((n, v) => n + v, 0);
  const latencies = mine
    .map((r) => r.firstReplyMs)
    .filter((v): v is number => v !== null)
    .sort((a, b) => a - b);
  const pick = (q: number): number | null =>
    latencies.length === 0
      ? null
      : latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return {
    sent: side.sent,
    answered,
    lost,
    duplicates,
    announced_duplicates: side.announced,
    deduplicated_resends: side.dedupResends,
    order_violations: orderViolations,
    resumes_accepted: mine.filter((r) => r.session === 'resumed').length,
    fell_back: mine.filter((r) => r.session === 'fell_back').length,
    first_reply_ms: { median: pick(0.5), p95: pick(0.95), max: latencies.at(-1) ?? null },
    replayed_answered_max: replays.length === 0 ? null : Math.max(...replays),
    replayed_answered_share:
      replays.length === 0
        ? null
        : Number(
            (sum(replays) / Math.max(1, sum(mine.map((r) => r.answeredBefore ?? 0)))).toFixed(3),
          ),
  };
}
