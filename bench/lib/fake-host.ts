/**
 * The fake QQ server as the benches drive it: in the orchestrator's process (each client runs
 * in its own child), with dispatches written in batches that respect the socket's backpressure.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { FakeQQServer, type FakeQQServerOptions, payloads } from '../../src/fakes/qq/index.js';
import { sleep, wallNow } from './util.js';

export const CLIENT_SECRET = 'bench-secret-0123456789abcdef';

/** GROUP_AND_C2C_EVENT | PUBLIC_GUILD_MESSAGES | DIRECT_MESSAGE (what the gateway asks for). */
export const INTENTS = (1 << 25) | (1 << 30) | (1 << 12);

/** Each fake has its own app id: gateways idling side by side must not share a credential. */
export function startFake(options: FakeQQServerOptions = {}): Promise<FakeQQServer> {
  return FakeQQServer.start({ clientSecret: CLIENT_SECRET, ...options });
}

/**
 * The newest client socket of the fake. The fake does not expose its sockets, and the bench
 * needs `bufferedAmount` to respect backpressure, so it reads the private WebSocketServer
 * (TypeScript allows bracket access to `private` members; this is the one place that does).
 */
export function clientSocket(fake: FakeQQServer): WebSocket | null {
  const wss = fake['wss'];
  let newest: WebSocket | null = null;
  for (const ws of wss.clients) if (ws.readyState === ws.OPEN) newest = ws;
  return newest;
}

/** Texts users send, so frames vary a little in size like real traffic. */
const TEXTS = [
  'hello',
  'hi, can you help me with my order #48213? it has not arrived yet',
  '今天天气怎么样？',
  'ping',
  'what is the status of ticket 7731',
  'thanks! 👍',
  '请帮我查一下明天上午九点的会议室安排，谢谢',
  'can you summarise the last three messages in this chat for me please',
];

/** A pool of user openids: traffic is spread over many users. */
export function userPool(size: number): string[] {
  return Array.from({ length: size }, () => payloads.openid());
}

/** The `i`-th realistic C2C_MESSAGE_CREATE payload (fresh message id, a user from the pool). */
export function c2cPayload(i: number, users: readonly string[]): payloads.C2CMessage {
  return payloads.c2cMessage({
    content: TEXTS[i % TEXTS.length]!,
    userOpenid: users[i % users.length]!,
  });
}

export interface PumpOptions {
  /** Frames written per turn of the event loop at most (the fake must still answer heartbeats). */
  batch?: number;
  /** Stop writing while the socket holds more than this many bytes... */
  highWaterBytes?: number;
  /** ...and resume once it is below this. */
  lowWaterBytes?: number;
  /** Drop the fake's per-dispatch records as they pile up (long runs), keeping memory flat. */
  trimRecords?: boolean;
  /** Called after each batch with the number written so far. */
  progress?: (sent: number) => void;
}

export interface PumpResult {
  /** wallNow() just before the first frame was written. */
  firstAt: number;
  /** wallNow() after the last frame was written. */
  lastAt: number;
  /** Times the writer waited for the socket to drain. */
  stalls: number;
  /** Milliseconds the writer spent waiting for the client (backpressure). */
  waitedMs: number;
}

/**
 * What the pump writes: `dispatch` goes through `fake.dispatch()` (the fake assigns the seq
 * and event id and keeps the frame for Resume); `raw` writes frames serialized beforehand, of
 * the very shape `dispatch()` writes, through the fake's `sendRaw()`, so that the producer's
 * per-event cost (a random event id, JSON.stringify, bookkeeping) cannot be the bottleneck.
 */
export type Source =
  { kind: 'dispatch'; make: (i: number) => unknown } | { kind: 'raw'; frames: readonly string[] };

/**
 * Serializes `count` C2C dispatch frames exactly as the fake's session would (op, s, t, id,
 * d), continuing the session's seq after what the fake has delivered so far.
 */
export function rawFrames(fake: FakeQQServer, payloadsList: readonly unknown[]): string[] {
  let s = Math.max(0, ...fake.deliveredSeqs);
  const t = 'C2C_MESSAGE_CREATE';
  return payloadsList.map((d, i) => {
    s += 1;
    const id = `${t}:${i.toString(16).padStart(24, '0')}`;
    return JSON.stringify({ op: 0, s, t, id, d });
  });
}

/**
 * Writes `count` frames from `source` as fast as the client consumes them: batches are written
 * (corked into one socket write) while the socket's buffer is under the high-water mark, then
 * the writer waits for it to drain below the low-water mark. Rejects if the client goes away.
 */
export async function pump(
  fake: FakeQQServer,
  count: number,
  source: Source,
  options: PumpOptions = {},
): Promise<PumpResult> {
  const batch = options.batch ?? 256;
  const high = options.highWaterBytes ?? 1024 * 1024;
  const low = options.lowWaterBytes ?? 256 * 1024;
  const ws = clientSocket(fake);
  if (ws === null) throw new Error('no client connected to the fake');
  // ws writes each frame with its own writev; corking a batch makes it one write, as a busy
  // server's kernel buffer would deliver it anyway.
  const socket = (ws as unknown as { _socket: Socket })._socket;
  let stalls = 0;
  let waitedMs = 0;
  let sent = 0;
  const firstAt = wallNow();
  while (sent < count) {
    if (ws.readyState !== ws.OPEN) throw new Error(`client socket closed after ${sent} frames`);
    const end = Math.min(count, sent + batch);
    socket.cork();
    while (sent < end && ws.bufferedAmount < high) {
      if (source.kind === 'raw') fake.sendRaw(source.frames[sent]!);
      else fake.dispatch('C2C_MESSAGE_CREATE', source.make(sent));
      sent += 1;
    }
    socket.uncork();
    if (options.trimRecords) trimRecords(fake);
    options.progress?.(sent);
    if (ws.bufferedAmount >= high) {
      stalls += 1;
      const from = wallNow();
      while (ws.bufferedAmount > low && ws.readyState === ws.OPEN) await sleep(1);
      waitedMs += wallNow() - from;
    } else {
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
  return { firstAt, lastAt: wallNow(), stalls, waitedMs };
}
/** Forgets the fake's records of dispatches, deliveries and sends (they grow per event). */
export function trimRecords(fake: FakeQQServer, keep = 10_000): void {
  const r = fake.records;
  for (const list of [r.dispatches, r.deliveries, r.sendRequests, r.sentMessages] as unknown[][]) {
    if (list.length > keep * 2) list.splice(0, list.length - keep);
  }
}
