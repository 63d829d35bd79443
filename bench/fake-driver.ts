/**
 * One platform's fake and its load generator, in a process of its own (forked by
 * bench/sections/three-platforms.ts): the QQ Bot fake (websocket), the fake Telegram Bot API
 * (long polling) or the fake Discord (gateway + REST). Each fake runs in its own process so
 * that neither the gateway nor another platform's fake shares its event loop: a fake's own lag
 * would otherwise be counted as the gateway's latency.
 *
 * Protocol (IPC): the child sends `ready` with what the gateway config needs; the parent sends
 * `run` once the gateway is connected; the child sends messages at the rate (open loop, spread
 * over `chats` chats), waits a bounded grace for the last replies and sends `result`.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { FakeQQServer, SendRecord } from '../src/fakes/qq/index.js';
import { FakeDiscordServer } from '../src/fakes/discord/index.js';
import { FakeTelegramServer, type SentMessage } from '../src/fakes/telegram/server.js';
import { c2cPayload, startFake, trimRecords, userPool } from './lib/fake-host.js';
import { openLoop } from './lib/load.js';
import { errorText, max, quantile, sleep } from './lib/util.js';

export type Platform = 'qqbot' | 'telegram' | 'discord';

/** What the gateway config needs to reach the fake (secrets included: the bench's own). */
export interface Endpoints {
  apiBase: string;
  /** QQ: the app's client secret; Telegram and Discord: the bot token. */
  secret: string;
  /** QQ only. */
  appId?: string;
  tokenUrl?: string;
}

export interface RunRequest {
  type: 'run';
  rate: number;
  /** Measured seconds, after the warm-up. */
  seconds: number;
  /** Messages sent in the first this-many seconds are not counted. */
  warmupSeconds: number;
  chats: number;
  /** How long to wait for the last replies after the last send. */
  graceMs: number;
}

export interface DriverResult {
  platform: Platform;
  rate: number;
  sent: number;
  /** Messages sent after the warm-up that got a reply. */
  measured: number;
  /** Messages sent after the warm-up without a reply within the grace. */
  missing: number;
  /** Same, among the warm-up messages. */
  missingInWarmup: number;
  duplicates: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  warmupMaxMs: number;
  /** Messages sent / seconds the open loop took (the fake kept its schedule when ≈ rate). */
  achievedSendRate: number;
  /** Replies received / (first send → last reply), warm-up included. */
  replyRate: number;
  worstPerSecondMs: number[];
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** CPU of this fake's process over the run, in cores. */
  cpuShare: number;
  /** Platform-specific counts at the end of the run (Telegram: polls, updates unconfirmed). */
  counts: Record<string, number>;
}

export type DriverMessage =
  | { type: 'ready'; endpoints: Endpoints }
  | { type: 'result'; result: DriverResult }
  /** The fake closed; `violations` when the gateway broke the protocol during the run. */
  | { type: 'closed'; violations: string | null }
  | { type: 'error'; message: string };

/** One platform's fake as the driver uses it: send message `i`, count replies. */
interface Target {
  endpoints: Endpoints;
  /** Prepares `total` messages over `chats` chats (before the clock starts). */
  prepare(total: number, chats: number): void;
  send(i: number): void;
  /** Calls `onReply(i)` for every reply to message `i` (twice for a duplicate). */
  onReply(handler: (i: number) => void): void;
  counts(): Record<string, number>;
  close(): Promise<void>;
}

const TEXTS = ['hello', 'can you help me with my order?', '今天天气怎么样？', 'thanks! 👍'];

async function qqTarget(): Promise<Target> {
  const fake: FakeQQServer = await startFake();
  let ids: string[] = [];
  let payloadList: ReturnType<typeof c2cPayload>[] = [];
  const index = new Map<string, number>();
  return {
    endpoints: {
      apiBase: fake.apiBase,
      tokenUrl: fake.tokenUrl,
      appId: fake.settings.appId,
      secret: fake.settings.clientSecret,
    },
    prepare(total, chats) {
      const users = userPool(chats);
      payloadList = Array.from({ length: total }, (_, i) => c2cPayload(i, users));
      ids = payloadList.map((p) => p.id);
      ids.forEach((id, i) => index.set(id, i));
    },
    send(i) {
      fake.dispatch('C2C_MESSAGE_CREATE', payloadList[i]);
      if (i % 5000 === 4999) trimRecords(fake);
    },
    onReply(handler) {
      fake.on('message-sent', (record: SendRecord) => {
        const msgId = (record.body as { msg_id?: unknown } | undefined)?.msg_id;
        const i = typeof msgId === 'string' ? index.get(msgId) : undefined;
        if (i !== undefined) handler(i);
      });
    },
    counts: () => ({}),
    close: () => fake.close(),
  };
}

/** The message index the text of message `i` starts with (`<letter><i> `). */
function indexOf(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const match = /^[a-z](\d+) /.exec(text);
  return match === null ? undefined : Number(match[1]);
}

async function telegramTarget(): Promise<Target> {
  const fake = await FakeTelegramServer.start();
  let chats = 1;
  return {
    endpoints: { apiBase: fake.apiBase, secret: fake.token },
    prepare(_total, n) {
      chats = n;
    },
    send(i) {
      const c = i % chats;
      fake.message(`t${i} ${TEXTS[i % TEXTS.length]!}`, {
        chat: { id: 200_000 + c, type: 'private', first_name: `user${c}` },
      });
      // The fake keeps every request and sent message: forget the old ones (long runs).
      if (i % 5000 === 4999) {
        if (fake.requests.length > 20_000) fake.requests.splice(0, fake.requests.length - 10_000);
        if (fake.sent.length > 20_000) fake.sent.splice(0, fake.sent.length - 10_000);
      }
    },
    onReply(handler) {
      fake.on('sent', (sent: SentMessage) => {
        const i = indexOf(sent.text);
        if (i !== undefined) handler(i);
      });
    },
    // Updates the gateway never confirmed are still queued at the fake: taken late or never.
    counts: () => ({ polls: fake.polls, unconfirmedUpdates: fake.pendingUpdates }),
    close: () => fake.close(),
  };
}

async function discordTarget(): Promise<Target> {
  const fake = await FakeDiscordServer.start({
    heartbeatIntervalMs: 30_000,
    identifyWindowMs: 0,
    // The bench measures the gateway, not Discord's buckets: the fake does not throttle.
    bucketLimit: { count: 1_000_000, windowMs: 1_000 },
    globalPerSecond: 1_000_000,
  });
  let chats = 1;
  return {
    endpoints: { apiBase: fake.apiBase, secret: fake.settings.token },
    prepare(_total, n) {
      chats = n;
    },
    send(i) {
      fake.dispatchMessage({
        content: `d${i} ${TEXTS[i % TEXTS.length]!}`,
        guildId: null,
        channelId: `3200000000${String(100_000_000 + (i % chats))}`,
      });
    },
    onReply(handler) {
      // The fake has no per-message event: it signals every change (a message created among
      // them) on a private emitter; new entries of `sent` are the replies since the last one.
      const events = fake['events'];
      let seen = 0;
      events.on('change', () => {
        const sent = fake.sent;
        for (; seen < sent.length; seen++) {
          const i = indexOf(sent[seen]!.body.content);
          if (i !== undefined) handler(i);
        }
        if (sent.length > 20_000) {
          sent.splice(0, sent.length);
          seen = 0;
        }
      });
    },
    counts: () => ({}),
    close: () => fake.close(),
  };
}

async function measure(
  target: Target,
  request: RunRequest,
  platform: Platform,
): Promise<DriverResult> {
  const { rate, seconds, warmupSeconds, chats, graceMs } = request;
  const total = Math.round(rate * (warmupSeconds + seconds));
  target.prepare(total, chats);
  const sentAt = new Float64Array(total).fill(NaN);
  const replyAt = new Float64Array(total).fill(NaN);
  let replied = 0;
  let duplicates = 0;
  let lastReplyAt = NaN;
  target.onReply((i) => {
    if (i >= total) return;
    const now = performance.now();
    if (Number.isNaN(replyAt[i]!)) {
      replyAt[i] = now;
      replied += 1;
      lastReplyAt = now;
    } else duplicates += 1;
  });
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const { seconds: sendSeconds } = await openLoop(rate, total, (i) => {
    sentAt[i] = performance.now();
    target.send(i);
  });
  const graceEnd = Date.now() + graceMs;
  while (replied < total && Date.now() < graceEnd) await sleep(5);
  // One more turn for replies already on their way (a late duplicate among them).
  await sleep(50);
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  loop.disable();
  const warmupEnd = t0 + warmupSeconds * 1000;
  const latencies: number[] = [];
  const worstPerSecondMs: number[] = [];
  let missing = 0;
  let missingInWarmup = 0;
  let warmupMaxMs = 0;
  for (let i = 0; i < total; i++) {
    const answered = !Number.isNaN(replyAt[i]!);
    const ms = replyAt[i]! - sentAt[i]!;
    if (sentAt[i]! < warmupEnd) {
      if (answered) warmupMaxMs = Math.max(warmupMaxMs, ms);
      else missingInWarmup += 1;
      continue;
    }
    if (!answered) {
      missing += 1;
      continue;
    }
    latencies.push(ms);
    const second = Math.floor((sentAt[i]! - t0) / 1000);
    worstPerSecondMs[second] = Math.max(worstPerSecondMs[second] ?? 0, ms);
  }
  return {
    platform,
    rate,
    sent: total,
    measured: latencies.length,
    missing,
    missingInWarmup,
    duplicates,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    maxMs: max(latencies),
    warmupMaxMs,
    achievedSendRate: total / sendSeconds,
    replyRate: replied / ((lastReplyAt - t0) / 1000),
    worstPerSecondMs: Array.from(worstPerSecondMs, (v) => Math.round((v ?? 0) * 10) / 10),
    loopDelayP99Ms: loop.percentile(99) / 1e6,
    loopDelayMaxMs: loop.max / 1e6,
    cpuShare: (cpu.user + cpu.system) / 1e6 / elapsed,
    counts: target.counts(),
  };
}

function send(message: DriverMessage): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const platform = process.argv[2] as Platform;
  const make = { qqbot: qqTarget, telegram: telegramTarget, discord: discordTarget }[platform];
  if (make === undefined) throw new Error(`unknown platform ${String(platform)}`);
  const target = await make();
  const stop = async (): Promise<void> => {
    // A protocol violation the gateway committed makes close() reject (the fakes check them).
    const violations = await target.close().then(
      () => null,
      (err: unknown) => errorText(err),
    );
    if (!process.connected) process.exit(0);
    process.send!({ type: 'closed', violations } satisfies DriverMessage, () => process.exit(0));
  };
  process.on('disconnect', () => process.exit(0));
  process.on('message', (message: RunRequest | { type: 'stop' }) => {
    if (message.type === 'stop') {
      void stop();
      return;
    }
    measure(target, message, platform).then(
      (result) => send({ type: 'result', result }),
      (err: unknown) => send({ type: 'error', message: errorText(err) }),
    );
  });
  send({ type: 'ready', endpoints: target.endpoints });
}

main().catch((err: unknown) => {
  send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  setTimeout(() => process.exit(1), 50);
});
