/**
 * The ceiling: a bare `ws` client that does the least a correct QQ client must do — fetch a
 * token, Identify, heartbeat, track the seq — and otherwise only `JSON.parse`s each frame and
 * counts C2C messages. Nothing real can be faster through the same socket and parser.
 */
import { WebSocket } from 'ws';
import { Counter, fail, runChild, type ClientConfig } from '../lib/ipc.js';

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
  d?: { heartbeat_interval?: number };
}

async function start(config: ClientConfig): Promise<void> {
  const token = await accessToken(config);
  const counter = new Counter(config.expected);
  const ws = new WebSocket(config.wsUrl, { perMessageDeflate: false });
  let seq: number | null = null;
  let heartbeat: NodeJS.Timeout | undefined;
  let acked = true;
  ws.on('message', (data: Buffer) => {
    const frame = JSON.parse(data.toString()) as Frame;
    if (typeof frame.s === 'number' && frame.s > 0) seq = frame.s;
    switch (frame.op) {
      case 0:
        if (frame.t === 'C2C_MESSAGE_CREATE') counter.hit();
        else if (frame.t === 'READY') counter.ready();
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
