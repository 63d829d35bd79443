/**
 * @discordjs/ws (bench/package.json, unpatched), pointed at the fake through its own options:
 * a `@discordjs/rest` REST client whose `api` is the fake's base (for `GET /gateway/bot`), the
 * token and intents; no compression. Counts MESSAGE_CREATE from its Dispatch event (2.x hands
 * the raw dispatch payload).
 */
import { Counter, fail, runChild, type ClientConfig } from '../lib/ipc.js';
import { loadPeer } from '../lib/peers.js';

interface DjsManager {
  on(event: string, listener: (payload: { t?: string }) => void): void;
  connect(): Promise<void>;
}
interface DjsWs {
  WebSocketManager: new (options: Record<string, unknown>) => DjsManager;
  WebSocketShardEvents: { Dispatch: string; Ready: string };
}
interface DjsRest {
  REST: new (options: Record<string, unknown>) => { setToken(token: string): unknown };
}

async function start(config: ClientConfig): Promise<void> {
  const { WebSocketManager, WebSocketShardEvents } = loadPeer('@discordjs/ws') as DjsWs;
  const { REST } = loadPeer('@discordjs/rest') as DjsRest;
  const counter = new Counter(config.expected);
  // The fake's REST base is `<origin>/api/v10`; discord.js adds `/v10` itself.
  const api = config.apiBase.replace(/\/v10$/, '');
  const rest = new REST({ api, version: '10' }).setToken(config.clientSecret);
  const manager = new WebSocketManager({
    token: config.clientSecret,
    intents: config.intents,
    rest,
    compression: null,
  });
  manager.on(WebSocketShardEvents.Ready, () => counter.ready());
  manager.on(WebSocketShardEvents.Dispatch, (payload) => {
    if (payload.t === 'MESSAGE_CREATE') counter.hit();
  });
  await manager.connect().catch((err: unknown) => fail(String(err)));
}

runChild(start);
