/**
 * The keep-alive retry of the shared HTTP client (src/net/http.ts) against a real server on
 * loopback that resets the second request on a pooled connection: before it read the request
 * (the request never reached it) or after it acted on it (the answer is lost). A request that
 * may not arrive twice (`idempotent: false`) is sent again only in the first case.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { HttpClient, HttpFailureError, type HttpInit } from '../../src/net/http.js';

type Reset = 'before-reading' | 'after-acting';

/** A server whose second request on each connection meets `reset`; counts requests acted on. */
async function resettingServer(reset: Reset): Promise<{
  url: string;
  acted: () => number;
  close: () => Promise<void>;
}> {
  const perSocket = new WeakMap<object, number>();
  let acted = 0;
  const server = http.createServer((req, res) => {
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    if (n === 2 && reset === 'before-reading') {
      req.socket.resetAndDestroy();
      return;
    }
    req.resume();
    req.on('end', () => {
      acted += 1;
      if (n === 2) {
        req.socket.resetAndDestroy();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/send`,
    acted: () => acted,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

function post(body: string, idempotent?: boolean): HttpInit {
  return {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body,
    ...(idempotent === undefined ? {} : { idempotent }),
  };
}

/** Warms the pool with one exchange, then sends `init` on the pooled connection. */
async function secondRequest(
  reset: Reset,
  init: HttpInit,
): Promise<{ outcome: 'answered' | HttpFailureError['failure']; acted: number }> {
  const server = await resettingServer(reset);
  const client = new HttpClient();
  try {
    await client.request(server.url, post('warm'), 5_000, undefined);
    let outcome: 'answered' | HttpFailureError['failure'];
    try {
      await client.request(server.url, init, 20_000, undefined);
      outcome = 'answered';
    } catch (err) {
      assert.ok(err instanceof HttpFailureError, String(err));
      outcome = err.failure;
    }
    return { outcome, acted: server.acted() - 1 };
  } finally {
    client.close();
    await server.close();
  }
}

// 32 MB cannot be handed to the socket before the server's reset comes back: the reset
// arrives while the request is still being written.
const LARGE = 'x'.repeat(32 << 20);

await test('idempotent: false, reset before the request was fully written: sent again on a new connection, acted on once', async () => {
  const { outcome, acted } = await secondRequest('before-reading', post(LARGE, false));
  assert.equal(outcome, 'answered');
  assert.equal(acted, 1);
});

await test('idempotent: false, reset after the server acted on it: a network failure, never sent twice', async () => {
  const { outcome, acted } = await secondRequest('after-acting', post('post me once', false));
  assert.equal(outcome, 'network');
  assert.equal(acted, 1);
});

await test('idempotent (the default), reset after the server acted on it: sent again, as Node advises for idempotent requests', async () => {
  const { outcome, acted } = await secondRequest('after-acting', post('read me'));
  // The retry goes on a fresh connection, where the same request is answered.
  assert.equal(outcome, 'answered');
  assert.equal(acted, 2);
});
