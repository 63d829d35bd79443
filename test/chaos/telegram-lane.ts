/**
 * The Telegram instance of a chaos run: a second instance (`platforms.telegram`) in the same
 * gateway as QQ, polling the fake Bot API server in this process while the schedule injects
 * Telegram faults (poll errors, a silent poll, a poller elsewhere, send failures) between the
 * QQ ones, and restarts (kill -9, fatal exits) hit both instances at once. Its invariants:
 *
 * - protocol: the fake saw no violation (two polls at once, the offset going backwards, text
 *   over 4096, a reply to an unknown message without allow_sending_without_reply);
 * - delivery: every message is answered, or its failure logged with a code, or it was in
 *   flight when a process died (kill -9, fatal exit: counted, see docs/delivery.md); never
 *   answered twice by one process (a second answer after a restart is counted, at-least-once);
 * - state truth: a silent poll leaves `connected` (state file or its transition log line)
 *   within polling.timeout_s + timeouts.poll_slack_ms + a margin, machine stalls credited;
 * - recovery: connected again once the faults stop (checked by the soak's quiet loop);
 * - process: no Telegram fatal code is ever logged (every fault drawn here is retryable).
 */
import type { StateDocument } from '../../src/state/schema.js';
import {
  FakeTelegramServer,
  TEXTS,
  type Fault as TgFault,
} from '../../src/fakes/telegram/server.js';
import type { LogLine } from './gateway-process.js';
import type { ProcessEnd } from './ledger.js';
import type { Rng } from './prng.js';
import type { TelegramFault } from './schedule.js';
import type { Violations } from './violations.js';

/** The instance's timings: tiny, like the QQ ones, so faults fit in a short run. */
export const TG_TIMINGS = {
  timeoutS: 1,
  pollSlackMs: 500,
  restMs: 1_000,
  backoffMs: [20, 40, 80, 160],
  /** A silent poll may take this much beyond its deadline to show (state write, polling). */
  detectMarginMs: 500,
} as const;

/** Codes that mean the instance took a retryable fault for a fatal one. */
export const TG_BUG_CODES = [
  'GW_ERR_TELEGRAM_RECONNECT_EXHAUSTED',
  'GW_ERR_TELEGRAM_UNAUTHORIZED',
  'GW_ERR_TELEGRAM_WEBHOOK_ACTIVE',
  'GW_ERR_TELEGRAM_BAD_UPDATE',
] as const;

const PRIVATE_CHATS = [7001, 7002, 7003, 7004, 7005, 7006];
const GROUP = { id: -4007001, type: 'group', title: 'Chaos group' } as const;

interface TgMessage {
  text: string;
  eventId: string;
  at: number;
  /** Pid of the live gateway at each reply the fake recorded. */
  replies: Array<number | null>;
  failedCode: string | null;
  /** A process died (kill -9, fatal) while the message was unanswered. */
  inCrash: boolean;
}

interface HalfOpenWatch {
  at: number;
  pid: number | null;
  stall0: number;
  seen: boolean;
}

export interface TgStats {
  pushed: number;
  answered: number;
  failed_with_code: number;
  lost_in_crash: number;
  never_answered: number;
  answered_again_after_restart: number;
  /** Polls the fake held silent (a `tg_half_open` fault taken by a poll). */
  half_open_hung: number;
  half_open_detected: number;
  /** Silent polls whose process ended (a kill, a fatal exit) before it could notice. */
  half_open_cut_short: number;
  /** Longest silent poll → left `connected`, ms. */
  half_open_max_ms: number | null;
  fake_requests: number;
}

export class TelegramLane {
  private readonly messages = new Map<string, TgMessage>();
  private readonly byText = new Map<string, TgMessage>();
  private readonly watches: HalfOpenWatch[] = [];
  private readonly detections: number[] = [];
  private hung = 0;
  private cutShort = 0;
  private count = 0;

  private constructor(
    readonly fake: FakeTelegramServer,
    private readonly violations: Violations,
    private readonly runTime: (epochMs: number) => number,
    private readonly stall: () => number,
    private readonly livePid: () => number | null,
  ) {
    fake.addChat(GROUP);
    fake.on('sent', (sent: { text: string }) => {
      const message = this.byText.get(sent.text);
      if (message === undefined) return;
      const pid = this.livePid();
      if (pid !== null && message.replies.includes(pid)) {
        this.violations.add(
          'duplicate',
          `telegram: ${message.eventId} answered twice by pid ${pid}`,
        );
      }
      message.replies.push(pid);
    });
    fake.on('hang', (h: { method: string; at: number }) => {
      if (h.method !== 'getupdates') return;
      this.hung += 1;
      this.watches.push({ at: h.at, pid: this.livePid(), stall0: this.stall(), seen: false });
    });
  }

  static async start(
    violations: Violations,
    runTime: (epochMs: number) => number,
    stall: () => number,
    livePid: () => number | null,
  ): Promise<TelegramLane> {
    const fake = await FakeTelegramServer.start({ username: 'hermes_chaos_bot' });
    return new TelegramLane(fake, violations, runTime, stall, livePid);
  }

  /** `platforms.telegram` of the run's config; the token comes from CHAOS_TELEGRAM_TOKEN. */
  config(): Record<string, unknown> {
    const t = TG_TIMINGS;
    return {
      enabled: true,
      token: '${CHAOS_TELEGRAM_TOKEN}',
      api_base: this.fake.apiBase,
      polling: { timeout_s: t.timeoutS },
      reconnect: { backoff_ms: [...t.backoffMs], max_attempts: 1_000_000, healthy_after_ms: 1_000 },
      timeouts: { rest_ms: t.restMs, poll_slack_ms: t.pollSlackMs },
      send: {
        retry_delay_ms: 20,
        max_retry_after_ms: 2_000,
        private_interval_ms: 100,
        group_interval_ms: 300,
        global_interval_ms: 10,
      },
    };
  }

  get env(): Record<string, string> {
    return { CHAOS_TELEGRAM_TOKEN: this.fake.token };
  }

  /** A user writes: a private chat most of the time, now and then the group. */
  push(rng: Rng): void {
    this.count += 1;
    const text = `tg ping ${this.count}`;
    const chat = rng.chance(0.15)
      ? GROUP
      : { id: rng.pick(PRIVATE_CHATS), type: 'private' as const, first_name: 'Chaos' };
    const { messageId } = this.fake.message(text, { chat });
    const message: TgMessage = {
      text,
      eventId: `telegram:${chat.id}:${messageId}`,
      at: Date.now(),
      replies: [],
      failedCode: null,
      inCrash: false,
    };
    this.messages.set(message.eventId, message);
    this.byText.set(text, message);
  }

  /** A gateway log line: failures logged with the event's id, and left-connected transitions. */
  onLogLine(line: LogLine): void {
    if (typeof line.code === 'string' && typeof line.event_id === 'string') {
      const message = this.messages.get(line.event_id);
      if (message !== undefined) message.failedCode ??= line.code;
    }
    if (line.platform === 'telegram' && line.to === 'reconnecting') this.leftConnected(Date.now());
  }

  /** A state-file sample: `telegram` not connected in the live process counts as detection. */
  sample(doc: StateDocument, at: number): void {
    const state = doc.platforms.telegram?.state;
    if (state !== undefined && state !== 'connected' && doc.pid === this.livePid()) {
      this.leftConnected(at);
    }
  }

  private leftConnected(at: number): void {
    for (const w of this.watches) {
      if (w.seen || at < w.at) continue;
      w.seen = true;
      this.detections.push(at - w.at);
    }
  }

  /** Periodic check: a silent poll must have been noticed within its bound. */
  tick(now: number): void {
    const bound = TG_TIMINGS.timeoutS * 1000 + TG_TIMINGS.pollSlackMs + TG_TIMINGS.detectMarginMs;
    for (let i = this.watches.length - 1; i >= 0; i--) {
      const w = this.watches[i]!;
      if (w.seen) continue;
      // The process that held the poll died: nobody is left to notice.
      if (w.pid === null || w.pid !== this.livePid()) {
        this.cutShort += 1;
        this.watches.splice(i, 1);
        continue;
      }
      const credit = this.stall() - w.stall0;
      if (now - w.at > bound + credit) {
        this.violations.add(
          'state-truth',
          `telegram still connected ${now - w.at} ms after its poll went silent (bound ${bound} ms + ${Math.round(credit)} ms of machine stall; pid ${w.pid})`,
          this.runTime(now),
        );
        this.watches.splice(i, 1);
      }
    }
  }

  /** A process ended: messages unanswered at a crash or fatal exit are exempt from delivery. */
  processEnded(how: ProcessEnd): void {
    if (how !== 'kill9' && how !== 'fatal' && how !== 'unexpected') return;
    for (const m of this.messages.values()) if (m.replies.length === 0) m.inCrash = true;
  }

  /** Injects a Telegram fault; null when done, else why it was skipped. */
  inject(fault: TelegramFault): string | null {
    const fake = this.fake;
    switch (fault.kind) {
      case 'tg_poll_fault':
        fake.fault('getUpdates', pollFault(fault.fault), fault.count);
        return null;
      case 'tg_half_open':
        fake.fault('getUpdates', { kind: 'hang' });
        return null;
      case 'tg_poll_elsewhere':
        return fake.pollFromElsewhere() ? null : 'no poll waiting';
      case 'tg_send_fault':
        fake.fault('sendMessage', sendFault(fault.fault), fault.count);
        return null;
    }
  }

  /** The faults stop: nothing scripted is left for the quiet period. */
  quiet(): void {
    this.fake.clearFaults();
  }

  /** Messages neither answered nor failed with a code nor caught in a crash. */
  pending(): number {
    let n = 0;
    for (const m of this.messages.values()) {
      if (m.replies.length === 0 && m.failedCode === null && !m.inCrash) n += 1;
    }
    return n;
  }

  /** End of run: every message accounted for. */
  finalChecks(now: number): void {
    for (const m of this.messages.values()) {
      if (m.replies.length > 0 || m.failedCode !== null || m.inCrash) continue;
      this.violations.add(
        'delivery',
        `telegram: ${m.eventId} ("${m.text}") never answered and no failure logged`,
        this.runTime(now),
      );
    }
  }

  stats(): TgStats {
    const list = [...this.messages.values()];
    return {
      pushed: list.length,
      answered: list.filter((m) => m.replies.length > 0).length,
      failed_with_code: list.filter((m) => m.replies.length === 0 && m.failedCode !== null).length,
      lost_in_crash: list.filter(
        (m) => m.replies.length === 0 && m.failedCode === null && m.inCrash,
      ).length,
      never_answered: list.filter(
        (m) => m.replies.length === 0 && m.failedCode === null && !m.inCrash,
      ).length,
      answered_again_after_restart: list.filter((m) => m.replies.length > 1).length,
      half_open_hung: this.hung,
      half_open_detected: this.detections.length,
      half_open_cut_short: this.cutShort,
      half_open_max_ms: this.detections.length === 0 ? null : Math.max(...this.detections),
      fake_requests: this.fake.requests.length,
    };
  }

  /** Closes the fake; a protocol violation it saw is an invariant violation of the run. */
  async close(): Promise<void> {
    try {
      await this.fake.close();
    } catch (err) {
      this.violations.add(
        'protocol',
        `telegram: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
}

function pollFault(kind: Extract<TelegramFault, { kind: 'tg_poll_fault' }>['fault']): TgFault {
  switch (kind) {
    case 'conflict':
      return FakeTelegramServer.error(409, TEXTS.conflictPoller);
    case 'rate_limited':
      return FakeTelegramServer.error(429, TEXTS.tooManyRequests(1), 1);
    case 'server_error':
      return FakeTelegramServer.error(502, TEXTS.badGateway);
    case 'html':
      return { kind: 'html', status: 502 };
    case 'reset':
      return { kind: 'reset' };
    case 'malformed':
      return { kind: 'malformed' };
  }
}

function sendFault(kind: Extract<TelegramFault, { kind: 'tg_send_fault' }>['fault']): TgFault {
  switch (kind) {
    case 'server_error':
      return FakeTelegramServer.error(500, TEXTS.restart);
    case 'rate_limited':
      return FakeTelegramServer.error(429, TEXTS.tooManyRequests(1), 1);
    case 'lost_answer':
      return { kind: 'lost-answer' };
  }
}
