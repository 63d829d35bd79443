/**
 * Peer: qq-guild-bot, the official QQ Bot Node SDK on npm. It cannot be pointed at a local
 * server without patching it, so this client only reports why (and never starts the SDK,
 * which would try to reach the real platform):
 *
 * - the REST base is a constant: `buildUrl()` returns `https://api.sgroup.qq.com` (or the
 *   sandbox host) + path, with no option, and the WebSocket URL comes from `GET /gateway/bot`
 *   on that base (`WsObjRequestOptions`);
 * - it only speaks the legacy fixed-token auth, `Bot <appid>.<token>`, for REST and Identify;
 *   the platform has disabled it (fact sheet §1.2, code 11245) and the fake refuses it (4004),
 *   so even a redirected connection could not get past Identify.
 */
import { runChild, send } from '../lib/ipc.js';
import { loadPeer, peerVersion } from '../lib/peers.js';

function start(): Promise<void> {
  // Loading proves the package is installed and is the version described above.
  const sdk = loadPeer('qq-guild-bot') as { createWebsocket?: unknown };
  const version = peerVersion('qq-guild-bot') ?? '?';
  if (typeof sdk.createWebsocket !== 'function') throw new Error('unexpected qq-guild-bot API');
  send({
    type: 'unsupported',
    reason:
      `qq-guild-bot ${version}: REST/gateway base hard-coded to https://api.sgroup.qq.com (no option), ` +
      'and only the legacy "Bot appid.token" auth, which the platform disabled and the fake refuses (4004)',
  });
  return Promise.resolve();
}

runChild(start);
