/**
 * The Discord ceiling: a bare `ws` client that does the least a correct Discord client must
 * do (Identify, heartbeat with the last seq) and otherwise only `JSON.parse`s each frame and
 * counts MESSAGE_CREATE. Nothing real can be faster through the same socket and parser.
 */
import { WebSocket } from 'ws';
import { Counter, fail, runChild, type ClientConfig } from '../lib/ipc.js';

interface Frame {
  op: number;
  s?: number | null;
  t?: string | null;
  d?: { heartbeat_interval?: number };
}

async function start(config: ClientConfig): Promise<void> {
  const counter = new Counter(config.expected);
  const ws = new WebSocket(`${config.wsUrl}?v=10&encoding=json`, { perMessageDeflate: false });
  let seq: number | null = null;
  let heartbeat: NodeJS.Timeout | undefined;
  ws.on('message', (data: Buffer) => {
    const frame = JSON.parse(data.toString()) as Frame;
    if (typeof frame.s === 'number') seq = frame.s;
    if (frame.op === 0) {
      if (frame.t === 'MESSAGE_CREATE') counter.hit();
      else if (frame.t === 'READY') counter.ready();
    } else if (frame.op === 10) {
      ws.send(
        JSON.stringify({
          op: 2,
          d: { token: config.clientSecret, intents: config.intents, properties: {} },
        }),
      );
      heartbeat = setInterval(
        () => ws.send(JSON.stringify({ op: 1, d: seq })),
        frame.d?.heartbeat_interval ?? 41_250,
      );
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
