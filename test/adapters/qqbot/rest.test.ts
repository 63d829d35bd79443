/**
 * The QQ REST transport against real loopback servers: keep-alive reuse, the timeout, a stop
 * request, the answer size cap, the retry on a pooled socket the server dropped, and close()
 * leaving no socket behind (idle, in use, and after it).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { test } from 'node:test';
import {
  HttpClient,
  HttpFailureError,
  MAX_RESPONSE_BYTES,
  retryAfterHeaderMs,
} from '../../../src/adapters/qqbot/rest.js';

interface Server {
  url: string;
  /** Connections accepted so far. */
  accepted: number;
  /** Connections still open. */
  open: Set<Socket>;
  close(): Promise<void>;
}

async function serve(handler: http.RequestListener): Promise<Server> {
  const server = http.createServer(handler);
  const open = new Set<Socket>();
  const state = { accepted: 0 };
  server.on('connection', (socket) => {
    state.accepted += 1;
    open.add(socket);
    socket.on('close', () => open.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get accepted() {
      return state.accepted;
    },
    open,
    close: async () => {
      for (const socket of open) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

const json = (res: http.ServerResponse, body: unknown, status = 200): void => {
  res.writeHead(status, { 'content-type': 'application/json', 'x-tps-trace-id': 'trace-1' });
  res.end(JSON.stringify(body));
};

async function until(predicate: () => boolean, what: string, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function failure(promise: Promise<unknown>): Promise<HttpFailureError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof HttpFailureError, String(err));
    return err;
  }
  assert.fail('expected a failure');
}

const GET = { method: 'GET', headers: {} };

await test('answers are parsed, and sequential requests reuse one kept-alive connection', async () => {
  const seen: Array<{ method: string | undefined; length: string | undefined; body: string }> = [];
  const server = await serve((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method, length: req.headers['content-length'], body });
      json(res, { ok: seen.length }, seen.length === 3 ? 429 : 200);
    });
  });
  const client = new HttpClient({ traceHeader: 'x-tps-trace-id' });
  try {
    const first = await client.request(
      `${server.url}/a`,
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":"é"}' },
      1_000,
      undefined,
    );
    assert.equal(first.status, 200);
    assert.deepEqual(first.body, { ok: 1 });
    assert.equal(first.traceId, 'trace-1');
    await client.request(`${server.url}/b`, GET, 1_000, undefined);
    const third = await client.request(`${server.url}/c`, GET, 1_000, undefined);
    assert.equal(third.status, 429);
    assert.deepEqual(seen[0], {
      method: 'POST',
      length: String(Buffer.byteLength('{"x":"é"}')),
      body: '{"x":"é"}',
    });
    assert.equal(server.accepted, 1, 'one connection for three requests');
  } finally {
    client.close();
    await server.close();
  }
});

await test('no answer within the timeout → failure `timeout`', async () => {
  const server = await serve(() => undefined);
  const client = new HttpClient();
  try {
    const started = Date.now();
    const err = await failure(client.request(server.url, GET, 100, undefined));
    assert.equal(err.failure, 'timeout');
    assert.ok(Date.now() - started < 1_000);
    await until(() => server.open.size === 0, 'the timed-out socket closed');
  } finally {
    client.close();
    await server.close();
  }
});

await test('an aborted signal → failure `aborted`, before or during the exchange', async () => {
  const server = await serve(() => undefined);
  const client = new HttpClient();
  try {
    const controller = new AbortController();
    const pending = client.request(server.url, GET, 5_000, controller.signal);
    await until(() => server.accepted === 1, 'request arrived');
    controller.abort();
    assert.equal((await failure(pending)).failure, 'aborted');
    assert.equal(
      (await failure(client.request(server.url, GET, 5_000, controller.signal))).failure,
      'aborted',
    );
    await until(() => server.open.size === 0, 'the aborted socket closed');
  } finally {
    client.close();
    await server.close();
  }
});

await test('an answer body above the cap → failure `network`, connection cut', async () => {
  const big = Buffer.alloc(MAX_RESPONSE_BYTES + 1, 'a');
  const server = await serve((_req, res) => {
    res.writeHead(200);
    res.end(big);
  });
  const client = new HttpClient();
  try {
    const err = await failure(client.request(server.url, GET, 2_000, undefined));
    assert.equal(err.failure, 'network');
    await until(() => server.open.size === 0, 'the socket closed');
  } finally {
    client.close();
    await server.close();
  }
});

await test('unreachable → failure `network`', async () => {
  const server = await serve(() => undefined);
  const url = server.url;
  await server.close();
  const client = new HttpClient();
  const err = await failure(client.request(url, GET, 1_000, undefined));
  assert.equal(err.failure, 'network');
  client.close();
});

await test('a pooled connection the server dropped is retried once on a fresh one', async () => {
  let requests = 0;
  const server = await serve((req, res) => {
    requests += 1;
    // The second request arrives on the kept-alive connection: drop it unanswered.
    if (requests === 2) {
      req.socket.destroy();
      return;
    }
    json(res, { n: requests });
  });
  const client = new HttpClient();
  try {
    await client.request(server.url, GET, 1_000, undefined);
    const answer = await client.request(server.url, GET, 1_000, undefined);
    assert.deepEqual(answer.body, { n: 3 });
    assert.equal(server.accepted, 2);
  } finally {
    client.close();
    await server.close();
  }
});

await test('close() leaves no socket: idle ones at once, one in use when it ends, none after', async () => {
  let hold: (() => void) | null = null;
  const server = await serve((req, res) => {
    if (req.url === '/slow') {
      hold = () => json(res, { slow: true });
      return;
    }
    json(res, {});
  });
  const client = new HttpClient();
  try {
    // Two at once: two pooled connections, one of which the slow request takes.
    await Promise.all([
      client.request(server.url, GET, 1_000, undefined),
      client.request(server.url, GET, 1_000, undefined),
    ]);
    const slow = client.request(`${server.url}/slow`, GET, 2_000, undefined);
    await until(() => hold !== null, 'slow request arrived');
    assert.equal(server.open.size, 2, 'one idle, one in use');
    client.close();
    await until(() => server.open.size === 1, 'idle socket closed');
    hold!();
    assert.deepEqual((await slow).body, { slow: true });
    await until(() => server.open.size === 0, 'socket in use closed once its exchange ended');
    // Still usable after close, without a pool.
    assert.equal((await client.request(server.url, GET, 1_000, undefined)).status, 200);
    await until(() => server.open.size === 0, 'socket of a request after close closed');
  } finally {
    await server.close();
  }
});

await test('Retry-After in seconds or as an HTTP date', () => {
  assert.equal(retryAfterHeaderMs({ 'retry-after': '3' }), 3_000);
  assert.equal(retryAfterHeaderMs({ 'retry-after': '1.5' }), 1_500);
  assert.equal(retryAfterHeaderMs({}), null);
  assert.equal(retryAfterHeaderMs({ 'retry-after': 'soon' }), null);
  const now = Date.parse('2024-01-01T00:00:00Z');
  assert.equal(retryAfterHeaderMs({ 'retry-after': 'Mon, 01 Jan 2024 00:00:10 GMT' }, now), 10_000);
});
