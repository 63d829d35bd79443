/**
 * The Discord instance of a chaos run: a third instance (`platforms.discord`) in the same
 * gateway as QQ and Telegram, on the fake Discord gateway + REST server in this process,
 * while the schedule injects Discord faults (close codes, a stopped ACK or a half-open link,
 * op 7 / op 9 / op 1, Resumes refused, 5xx / 429 / a lost answer on sends) between the
 * others, and restarts (kill -9, fatal exits) hit every instance at once. Its invariants:
 *
 * - protocol: the fake saw no violation (Resume at the wrong URL, a heartbeat without the
 *   last seq, Identify too soon or without intents, too many commands, a session-ending
 *   close by the client);
 * - delivery: every message is answered exactly once (Discord's enforced nonce makes a
 *   retried or repeated send land once, in every process), or its failure is logged with a
 *   code, or it was in flight when a process died (kill -9, fatal exit), or it went to a
 *   session that was then replaced by a new one (Discord does not deliver those: the platform
 *   loses them, not the gateway; counted);
 * - order: within one process, the replies in a channel are created in the order of the
 *   messages they answer;
 * - state truth: a zombie (ACKs stopped, or the link half-open, right after an ACK: the worst
 *   case) leaves `connected` (state file or its transition log line) within 1.5 × the
 *   heartbeat interval + 50 ms, machine stalls credited (the QQ bound, DESIGN §9);
 * - recovery: connected again once the faults stop (checked by the soak's quiet loop);
 * - process: no Discord fatal code is ever logged (every fault drawn here is retryable).
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { StateDocument } from '../../src/state/schema.js';
import {
  FakeDiscordServer,
  type SendFault as DcSendFaultSpec,
} from '../../src/fakes/discord/index.js';
import type { LogLine } from './gateway-process.js';
import type { ProcessEnd } from './ledger.js';
import type { Rng } from './prng.js';
import type { DiscordFault } from './schedule.js';
import type { Violations } from './violations.js';

/** The instance's timings: tiny, like the QQ ones, so faults fit in a short run. */
export const DC_TIMINGS = {
  heartbeatAckMs: 80,
  backoffMs: [20, 40, 80, 160],
  rateLimitedWaitMs: 200,
  invalidSessionWaitMs: [20, 100] as [number, number],
  identifyIntervalMs: 100,
  /** The fake flags an Identify sooner than this after the previous one. */
  fakeIdentifyWindowMs: 50,
  connectMs: 400,
  helloMs: 400,
  readyMs: 400,
  restMs: 1_000,
  closeMs: 200,
  /** The pacer's window, scaled down from 60 s like the heartbeat; the fake allows more. */
  gatewayLimit: { commands: 100, windowMs: 10_000 },
  fakeCommandLimit: { count: 120, windowMs: 10_000 },
  sendMaxAttempts: 4,
} as const;

/** Codes that mean the instance took a retryable fault for a fatal one. */
export const DC_BUG_CODES = [
  'GW_ERR_DISCORD_RECONNECT_EXHAUSTED',
  'GW_ERR_DISCORD_UNAUTHORIZED',
  'GW_ERR_DISCORD_SEND_UNAUTHORIZED',
  'GW_ERR_DISCORD_INVALID_REQUEST_LIMIT',
  'GW_ERR_DISCORD_CLOSE_4004',
  'GW_ERR_DISCORD_CLOSE_4010',
  'GW_ERR_DISCORD_CLOSE_4011',
  'GW_ERR_DISCORD_CLOSE_4012',
  'GW_ERR_DISCORD_CLOSE_4013',
  'GW_ERR_DISCORD_CLOSE_4014',
] as const;

/** Close codes the fake may send: each is answered with a Resume or a new session. */
export const DC_CLOSE_CODES = [
  4000, 4000, 4001, 4002, 4003, 4005, 4007, 4008, 4009, 4009, 1000, 1001, 1011, 4999,
] as const;

const DM_CHANNELS = [
  '330000000000000001',
  '330000000000000002',
  '330000000000000003',
  '330000000000000004',
  '330000000000000005',
];
const GUILD_CHANNEL = '340000000000000001';

interface DcMessage {
  id: string;
  eventId: string;
  channelId: string;
  /** Position in its channel: replies must follow it. */
  index: number;
  sessionId: string;
  at: number;
  /** Pid of the live gateway when each reply to it was seen at the fake. */
  replies: Array<number | null>;
  failedCode: string | null;
  inCrash: boolean;
}

interface ZombieWatch {
  kind: 'dc_stop_acks' | 'dc_half_open';
  at: number;
  pid: number | null;
  stall0: number;
  seen: boolean;
}

export interface DcStats {
  pushed: number;
  answered: number;
  failed_with_code: number;
  lost_in_crash: number;
  /** Unanswered, sent to a session that a new session replaced (the platform drops those). */
  lost_with_session: number;
  never_answered: number;
  answered_twice: number;
  /** Links made silent (stopped ACKs or half-open) while a process held them. */
  zombies_made: number;
  zombies_detected: number;
  /** Silent links whose process ended (a kill, a fatal exit) before it could notice. */
  zombies_cut_short: number;
  /** Longest stopped-ACK / half-open → left `connected`, ms; and as a multiple of the interval. */
  zombie_max_ms: number | null;
  zombie_max_intervals: number | null;
  resumes_accepted: number;
  identifies_accepted: number;
  fake_violations: number;
}

export class DiscordLane {
  private readonly messages = new Map<string, DcMessage>();
  private readonly watches: ZombieWatch[] = [];
  private readonly detections: number[] = [];
  private zombiesMade = 0;
  private zombiesCutShort = 0;
  private readonly perChannel = new Map<string, number>();
  /** Per channel and pid: the index of the last message answered (order check). */
  private readonly lastAnswered = new Map<string, number>();
  private seenSent = 0;
  private stopAcksOn = false;
  /** A zombie fault waits for the next heartbeat (right after its ACK: the worst case). */
  private zombieArmed = false;

  private constructor(
    readonly fake: FakeDiscordServer,
    private readonly violations: Violations,
    private readonly runTime: (epochMs: number) => number,
    private readonly stall: () => number,
    private readonly livePid: () => number | null,
  ) {}

  static async start(
    heartbeatMs: number,
    violations: Violations,
    runTime: (epochMs: number) => number,
    stall: () => number,
    livePid: () => number | null,
  ): Promise<DiscordLane> {
    const t = DC_TIMINGS;
    // A bot of its own per run: the credential lock is machine-wide (keyed by the bot id), so
    // the fake's default bot would collide with any other gateway on the machine using it
    // (another test's), and the restarted gateway would exit 78 with GW_ERR_CREDENTIAL_IN_USE.
    const botId = `1${String(process.pid).padStart(8, '0')}${randomInt(1e8).toString().padStart(8, '0')}`;
    const fake = await FakeDiscordServer.start({
      token: `${Buffer.from(botId).toString('base64url')}.GfAkEt.chaos-${randomBytes(16).toString('hex')}`,
      bot: { id: botId, username: 'hermes-chaos-bot' },
      applicationId: botId,
      heartbeatIntervalMs: heartbeatMs,
      // The fake drops a client that stops heartbeating; generous, so that a machine stall
      // (the soak measures them) is not taken for a client that forgot to beat.
      heartbeatDeadlineMs: heartbeatMs * 3 + 2_000,
      identifyWindowMs: t.fakeIdentifyWindowMs,
      commandLimit: { ...t.fakeCommandLimit },
      sessionStartLimit: {
        total: 1_000_000,
        remaining: 1_000_000,
        reset_after: 86_400_000,
        max_concurrency: 1,
      },
      // Echoes to a few channels, a few per second each: the 5 / 5 s bucket would make most
      // sends wait; the bucket logic is still exercised by scripted 429s.
      bucketLimit: { count: 50, windowMs: 5_000 },
    });
    return new DiscordLane(fake, violations, runTime, stall, livePid);
  }

  get heartbeatMs(): number {
    return this.fake.settings.heartbeatIntervalMs;
  }

  /** `platforms.discord` of the run's config; the token comes from CHAOS_DISCORD_TOKEN. */
  config(): Record<string, unknown> {
    const t = DC_TIMINGS;
    return {
      type: 'discord',
      enabled: true,
      token: '${CHAOS_DISCORD_TOKEN}',
      api_base: this.fake.apiBase,
      reconnect: {
        backoff_ms: [...t.backoffMs],
        max_attempts: 1_000_000,
        healthy_after_ms: 1_000,
        rate_limited_wait_ms: t.rateLimitedWaitMs,
        max_resume_failures: 2,
        invalid_session_wait_ms: [...t.invalidSessionWaitMs],
        identify_interval_ms: t.identifyIntervalMs,
      },
      timeouts: {
        connect_ms: t.connectMs,
        hello_ms: t.helloMs,
        ready_ms: t.readyMs,
        heartbeat_ack_ms: t.heartbeatAckMs,
        rest_ms: t.restMs,
        close_ms: t.closeMs,
      },
      gateway_limit: { commands: t.gatewayLimit.commands, window_ms: t.gatewayLimit.windowMs },
      send: { max_attempts: t.sendMaxAttempts, retry_delay_ms: 20, max_retry_delay_ms: 1_000 },
    };
  }

  get env(): Record<string, string> {
    return { CHAOS_DISCORD_TOKEN: this.fake.settings.token };
  }

  get token(): string {
    return this.fake.settings.token;
  }

  /** A user writes: a DM most of the time, now and then a guild channel mentioning the bot. */
  push(rng: Rng): void {
    const session = this.fake.session;
    if (session === null) return; // before the first READY: nobody to deliver to
    const guild = rng.chance(0.2);
    const channelId = guild ? GUILD_CHANNEL : rng.pick(DM_CHANNELS);
    const index = (this.perChannel.get(channelId) ?? 0) + 1;
    this.perChannel.set(channelId, index);
    const dispatch = this.fake.dispatchMessage({
      content: `dc ping ${channelId.slice(-2)}-${index}`,
      channelId,
      ...(guild ? { mentionsBot: true } : { guildId: null }),
    });
    if (dispatch === null) return;
    const id = (dispatch.d as { id: string }).id;
    this.messages.set(id, {
      id,
      eventId: `discord:${id}`,
      channelId,
      index,
      sessionId: session.id,
      at: Date.now(),
      replies: [],
      failedCode: null,
      inCrash: false,
    });
  }

  /** Replies created at the fake since the last poll (called every few ms by the soak). */
  poll(): void {
    const sent = this.fake.sent;
    const pid = this.livePid();
    for (; this.seenSent < sent.length; this.seenSent++) {
      const ref = sent[this.seenSent]!.body.message_reference as { message_id?: unknown } | null;
      const message =
        ref !== null && typeof ref === 'object' && typeof ref.message_id === 'string'
          ? this.messages.get(ref.message_id)
          : undefined;
      if (message === undefined) continue;
      if (message.replies.length > 0) {
        this.violations.add(
          'duplicate',
          `discord: ${message.eventId} answered ${message.replies.length + 1} times (pids ${[...message.replies, pid].join(', ')}): the enforced nonce should have made the repeat land once`,
          this.runTime(Date.now()),
        );
      }
      message.replies.push(pid);
      const key = `${message.channelId}/${pid ?? '-'}`;
      const last = this.lastAnswered.get(key);
      if (pid !== null && last !== undefined && message.index < last) {
        this.violations.add(
          'order',
          `discord: channel ${message.channelId} message #${message.index} answered after #${last} by pid ${pid}`,
          this.runTime(Date.now()),
        );
      }
      if (last === undefined || message.index > last) this.lastAnswered.set(key, message.index);
    }
  }

  /** A gateway log line: failures logged with the event's id, and left-connected transitions. */
  onLogLine(line: LogLine): void {
    if (typeof line.code === 'string' && typeof line.event_id === 'string') {
      const message = this.messages.get(line.event_id.replace(/^discord:/, ''));
      if (message !== undefined) message.failedCode ??= line.code;
    }
    if (line.platform === 'discord' && line.to === 'reconnecting') this.leftConnected(Date.now());
  }

  /** A state-file sample: `discord` not connected in the live process counts as detection. */
  sample(doc: StateDocument, at: number): void {
    const state = doc.platforms.discord?.state;
    if (state !== undefined && state !== 'connected' && doc.pid === this.livePid()) {
      this.leftConnected(at);
    }
  }

  private leftConnected(at: number): void {
    for (const w of this.watches) {
      if (w.seen || at < w.at) continue;
      w.seen = true;
      this.detections.push(at - w.at);
      this.judge(w, at);
    }
    // The zombie is seen: the next connection gets its ACKs again.
    if (this.stopAcksOn && this.watches.every((w) => w.seen)) {
      this.stopAcksOn = false;
      this.fake.stopAcks(false);
    }
  }

  /** A violation when `w` is still (or was) connected past its bound at `at`; whether it was. */
  private judge(w: ZombieWatch, at: number): boolean {
    const credit = this.stall() - w.stall0;
    if (at - w.at <= this.zombieBoundMs + credit) return false;
    this.violations.add(
      'state-truth',
      `discord connected ${at - w.at} ms after ${w.kind === 'dc_stop_acks' ? 'its ACKs stopped' : 'its link went half-open'} (bound ${this.zombieBoundMs} ms + ${Math.round(credit)} ms of machine stall; pid ${w.pid})`,
      this.runTime(at),
    );
    w.seen = true;
    return true;
  }

  /** The zombie bound of DESIGN §9, as the QQ instance's: 1.5 × the interval + 50 ms. */
  get zombieBoundMs(): number {
    return Math.round(1.5 * this.heartbeatMs) + 50;
  }

  /** Periodic check: a zombie must have been noticed within its bound. */
  tick(now: number): void {
    this.poll();
    for (let i = this.watches.length - 1; i >= 0; i--) {
      const w = this.watches[i]!;
      if (w.seen) continue;
      // The process that held the link died: nobody is left to notice.
      if (w.pid === null || w.pid !== this.livePid()) {
        this.zombiesCutShort += 1;
        this.watches.splice(i, 1);
        continue;
      }
      if (this.judge(w, now)) this.watches.splice(i, 1);
    }
    if (this.stopAcksOn && this.watches.every((w) => w.seen)) {
      this.stopAcksOn = false;
      this.fake.stopAcks(false);
    }
  }

  /** A process ended: messages unanswered at a crash or fatal exit are exempt from delivery. */
  processEnded(how: ProcessEnd): void {
    if (how !== 'kill9' && how !== 'fatal' && how !== 'unexpected') return;
    this.poll();
    for (const m of this.messages.values()) if (m.replies.length === 0) m.inCrash = true;
  }

  /**
   * The worst case of DESIGN §9: the link dies right after an ACK. The fault waits for the
   * next heartbeat; `until` resolves in a microtask after the fake's heartbeat handler, which
   * has sent the ACK by then.
   */
  private armZombie(kind: 'dc_stop_acks' | 'dc_half_open'): void {
    const fake = this.fake;
    const beats = fake.records.heartbeats.length;
    this.zombieArmed = true;
    fake
      .until(() => fake.records.heartbeats.length > beats, 'a heartbeat', this.heartbeatMs * 3)
      .then(
        () => {
          this.zombieArmed = false;
          if (fake.liveSessions() === 0) return;
          this.zombiesMade += 1;
          this.watches.push({
            kind,
            at: Date.now(),
            pid: this.livePid(),
            stall0: this.stall(),
            seen: false,
          });
          if (kind === 'dc_half_open') fake.goHalfOpen();
          else {
            this.stopAcksOn = true;
            fake.stopAcks(true);
          }
        },
        () => {
          this.zombieArmed = false; // no heartbeat came (the link went down meanwhile)
        },
      );
  }

  /** Injects a Discord fault; null when done, else why it was skipped. */
  inject(fault: DiscordFault): string | null {
    const fake = this.fake;
    const live = fake.liveSessions() > 0;
    switch (fault.kind) {
      case 'dc_close':
        if (!live) return 'no live session';
        fake.closeClient(fault.code);
        return null;
      case 'dc_terminate':
        if (!live) return 'no live session';
        fake.terminateClient();
        return null;
      case 'dc_stop_acks':
      case 'dc_half_open': {
        // One zombie at a time, on a connection that is up.
        if (!live) return 'no live session';
        if (this.zombieArmed || this.watches.some((w) => !w.seen)) {
          return 'a zombie is being watched';
        }
        this.armZombie(fault.kind);
        return null;
      }
      case 'dc_op_reconnect':
        if (!live) return 'no live session';
        fake.sendReconnect();
        return null;
      case 'dc_invalid_session':
        if (!live) return 'no live session';
        fake.sendInvalidSession(fault.resumable);
        return null;
      case 'dc_request_heartbeat':
        if (!live) return 'no live session';
        fake.requestHeartbeat(fault.times);
        return null;
      case 'dc_resume_refused':
        if (!live) return 'no live session';
        // Refused once: a second Resume succeeds; twice: the adapter must Identify.
        fake.refuseResumes(fault.count);
        fake.terminateClient();
        return null;
      case 'dc_send_fault':
        fake.queueSendFaults(...fault.faults.map(sendFault));
        return null;
    }
  }

  /** The faults stop: nothing scripted is left for the quiet period. */
  quiet(): void {
    this.stopAcksOn = false;
    this.fake.stopAcks(false);
    // Refusals and send faults still queued are consumed by the next Resumes and sends.
  }

  /** Whether the instance is connected in `doc` (the soak's recovery check). */
  static connected(doc: StateDocument): boolean {
    return doc.platforms.discord?.state === 'connected';
  }

  /** Messages neither answered nor failed with a code nor exempt. */
  pending(): number {
    this.poll();
    let n = 0;
    for (const m of this.messages.values()) if (this.owed(m)) n += 1;
    return n;
  }

  /** Unanswered, no code, no crash, and its session is the one still in use. */
  private owed(m: DcMessage): boolean {
    if (m.replies.length > 0 || m.failedCode !== null || m.inCrash) return false;
    return !this.lostWithSession(m);
  }

  /** The message went to a session the platform no longer resumes: Discord drops it. */
  private lostWithSession(m: DcMessage): boolean {
    const current = this.fake.session;
    return current === null || current.id !== m.sessionId || current.invalid;
  }

  /** End of run: every message accounted for. */
  finalChecks(now: number): void {
    this.poll();
    for (const m of this.messages.values()) {
      if (!this.owed(m)) continue;
      this.violations.add(
        'delivery',
        `discord: ${m.eventId} (channel ${m.channelId} #${m.index}) never answered and no failure logged`,
        this.runTime(now),
      );
    }
  }

  stats(): DcStats {
    const list = [...this.messages.values()];
    const unanswered = list.filter((m) => m.replies.length === 0 && m.failedCode === null);
    const maxMs = this.detections.length === 0 ? null : Math.max(...this.detections);
    return {
      pushed: list.length,
      answered: list.filter((m) => m.replies.length > 0).length,
      failed_with_code: list.filter((m) => m.replies.length === 0 && m.failedCode !== null).length,
      lost_in_crash: unanswered.filter((m) => m.inCrash).length,
      lost_with_session: unanswered.filter((m) => !m.inCrash && this.lostWithSession(m)).length,
      never_answered: unanswered.filter((m) => this.owed(m)).length,
      answered_twice: list.filter((m) => m.replies.length > 1).length,
      zombies_made: this.zombiesMade,
      zombies_detected: this.detections.length,
      zombies_cut_short: this.zombiesCutShort,
      zombie_max_ms: maxMs,
      zombie_max_intervals: maxMs === null ? null : Number((maxMs / this.heartbeatMs).toFixed(2)),
      resumes_accepted: this.fake.acceptedResumes,
      identifies_accepted: this.fake.acceptedIdentifies,
      fake_violations: this.fake.violations.length,
    };
  }

  /** Closes the fake; a protocol violation it saw is an invariant violation of the run. */
  async close(): Promise<void> {
    for (const v of this.fake.violations) {
      this.violations.add('protocol', `discord: ${v.kind}: ${v.detail}`, this.runTime(v.at));
    }
    await this.fake.close();
  }
}

function sendFault(kind: DcSendFault): DcSendFaultSpec {
  switch (kind) {
    case 'server_error':
      return { kind: 'status', status: 502 };
    case 'rate_limited':
      return { kind: '429', scope: 'user', retryAfterS: 0.1 };
    case 'global_rate_limited':
      return { kind: '429', scope: 'global', retryAfterS: 0.1 };
    case 'lost_answer':
      return { kind: 'reset-after-commit' };
  }
}

/** What a Discord message create meets: retried (5xx, 429) or uncertain (answer lost). */
export type DcSendFault = 'server_error' | 'rate_limited' | 'global_rate_limited' | 'lost_answer';
