/**
 * The ceiling: a bare `ws` client that does the least a correct QQ client must do — fetch a
 * token, Identify, heartbeat, track the seq — and otherwise only `JSON.parse`s each frame and
 * counts C2C messages. Nothing real can be faster through the same socket and parser.
 *
 * Variant `echo` (the latency section's floor): it also answers every C2C message at once
 * with a bare keep-alive `http.request` POST of the same text (msg_id, msg_seq 1), nothing
 * between: no queue, no store, no log, no deadline. An echo through the gateway cannot come
 * back sooner on the same machine and fake.
 *
 * Variant `pipeline` (the throughput section's least pipeline): each C2C message goes through
 * the least a message pipeline must do before it is counted (leastPipeline below).
 */
import http from 'node:http';
import { WebSocket } from 'ws';
import { Counter, fail, LEAST_PIPELINE_IDS, runChild, type ClientConfig } from '../lib/ipc.js';

async function accessToken(config: ClientConfig): Promise<string> {
  const res = await fetch(config.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ appId: config.appId, clientSecret: config.clientSecret }),
  });
  const body = (await res.json()) as { access_token?: string };
  if (!body.access_token) throw new Error(`no access_token: ${JSON.stringify(body)}`);
  return body.access_token;
}

interface Frame {
  op: number;
  s?: number;
  t?: string;
  d?: {
    heartbeat_interval?: number;
    id?: string;
    content?: string;
    author?: { user_openid?: string };
  };
}

/** Answers a C2C message the barest way: one keep-alive POST, the answer read and dropped. */
function echoer(config: ClientConfig, token: string): (frame: Frame) => void {
  const agent = new http.Agent({ keepAlive: true });
  const base = new URL(config.apiBase);
  return (frame) => {
    const d = frame.d ?? {};
    const body = JSON.stringify({ content: d.content, msg_type: 0, msg_id: d.id, msg_seq: 1 });
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        method: 'POST',
        path: `${base.pathname.replace(/\/$/, '')}/v2/users/${d.author?.user_openid ?? ''}/messages`,
        agent,
        headers: {
          authorization: `QQBot ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        if (res.statusCode !== 200) fail(`echo answered HTTP ${res.statusCode ?? 0}`);
        res.resume();
      },
    );
    req.on('error', (err) => fail(`echo failed: ${err.message}`));
    req.end(body);
  };
}

/**
 * The least a message pipeline does (variant `pipeline`): drop an id seen among the last
 * LEAST_PIPELINE_IDS, keep each chat's events in arrival order, one at a time, and hand each
 * to an async handler (here one that answers nothing), awaited. No bounds on the queues, no
 * metrics, logs or store: what the gateway's pipeline does beyond this is its own cost.
 */
function leastPipeline(counter: Counter): (frame: Frame) => void {
  const seen = new Set<string>();
  const order: string[] = [];
  const chats = new Map<string, Frame[]>();
  const handler = (_frame: Frame): Promise<string[]> => Promise.resolve([]);
  async function run(chat: string, queue: Frame[]): Promise<void> {
    for (let frame = queue.shift(); frame !== undefined; frame = queue.shift()) {
      await handler(frame);
      counter.hit();
    }
    chats.delete(chat);
  }
  return (frame) => {
    const id = frame.d?.id ?? '';
    if (seen.has(id)) return;
    seen.add(id);
    order.push(id);
    if (order.length > LEAST_PIPELINE_IDS) seen.delete(order.shift()!);
    const chat = frame.d?.author?.user_openid ?? '';
    const queue = chats.get(chat);
    if (queue !== undefined) queue.push(frame);
    else {
      const fresh = [frame];
      chats.set(chat, fresh);
      void run(chat, fresh);
    }
  };
}

async function start(config: ClientConfig): Promise<void> {
  const token = await accessToken(config);
  const counter = new Counter(config.expected);
  const echo = config.variant === 'echo' ? echoer(config, token) : null;
  const pipeline = config.variant === 'pipeline' ? leastPipeline(counter) : null;
  const ws = new WebSocket(config.wsUrl, { perMessageDeflate: false });
  let seq: number | null = null;
  let heartbeat: NodeJS.Timeout | undefined;
  let acked = true;
  ws.on('message', (data: Buffer) => {
    const frame = JSON.parse(data.toString()) as Frame;
    if (typeof frame.s === 'number' && frame.s > 0) seq = frame.s;
    switch (frame.op) {
      case 0:
        if (frame.t === 'C2C_MESSAGE_CREATE') {
          echo?.(frame);
          if (pipeline !== null) pipeline(frame);
          else counter.hit();
        } else if (frame.t === 'READY') counter.ready();
        return;
      case 10: {
        ws.send(
          JSON.stringify({
            op: 2,
            d: { token: `QQBot ${token}`, intents: config.intents, shard: [0, 1] },
          }),
        );
        const interval = frame.d?.heartbeat_interval ?? 45_000;
        heartbeat = setInterval(() => {
          if (!acked) ws.terminate();
          acked = false;
          ws.send(JSON.stringify({ op: 1, d: seq }));
        }, interval);
        return;
      }
      case 11:
        acked = true;
        return;
      default:
        return;
    }
  });
  ws.on('close', (code) => {
    clearInterval(heartbeat);
    fail(`closed with ${code} after ${counter.count} events`);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
}

runChild(start);
