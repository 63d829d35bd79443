/**
 * Peer: @satorijs/adapter-qq (the Koishi/Satori QQ adapter) in WebSocket mode, counting
 * `message` sessions. Pointed at the fake through its own options (`endpoint`, the REST base;
 * `/gateway` then returns the fake's WebSocket URL) plus the `http/fetch-init` event of its
 * HTTP service, the documented hook for rewriting a request, because the token URL
 * (https://bots.qq.com/app/getAppAccessToken) is a constant in its code. Nothing is patched.
 */
import { Counter, runChild, type ClientConfig } from '../lib/ipc.js';
import { loadPeer } from '../lib/peers.js';

interface SatoriContext {
  plugin(plugin: unknown, config?: unknown): unknown;
  on(event: string, listener: (...args: never[]) => void): () => void;
  start(): Promise<void>;
  bots: Array<{ status: number; platform: string }>;
}

interface SatoriCore {
  Context: new () => SatoriContext;
  HTTP: unknown;
  Universal: { Status: { ONLINE: number } };
}

async function start(config: ClientConfig): Promise<void> {
  const core = loadPeer('@satorijs/core') as SatoriCore;
  const adapter = loadPeer('@satorijs/adapter-qq') as { default?: unknown; QQBot?: unknown };
  const QQBot = adapter.QQBot ?? adapter.default;
  const counter = new Counter(config.expected);
  const ctx = new core.Context();
  ctx.plugin(core.HTTP);
  const tokenUrl = new URL(config.tokenUrl);
  ctx.on('http/fetch-init', (url: URL) => {
    if (url.hostname === 'bots.qq.com') url.href = tokenUrl.href;
  });
  ctx.plugin(QQBot, {
    id: config.appId,
    secret: config.clientSecret,
    type: 'public',
    endpoint: config.apiBase,
    authType: 'bearer',
    intents: config.intents,
    protocol: 'websocket',
    // No reconnect storm if something goes wrong: the bench wants to see the failure.
    retryTimes: 0,
  });
  ctx.on('message', () => counter.hit());
  await ctx.start();
  const online = core.Universal.Status.ONLINE;
  const deadline = Date.now() + 15_000;
  while (!ctx.bots.some((b) => b.platform === 'qq' && b.status === online)) {
    if (Date.now() > deadline) throw new Error('satori bot did not come online within 15 s');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  counter.ready();
}

runChild(start);
