/**
 * The inbound HTTP server against real sockets on loopback: routing by path, the answers it
 * gives itself (404, 405, 413, 408, 503) with nothing reaching a handler, the counted
 * rejections, listener sharing, bind failures and a listener that dies.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isGatewayError } from '../../src/errors.js';
import {
  IngressHub,
  type IngressReply,
  type IngressRequest,
  type RouteSpec,
} from '../../src/ingress/server.js';
import { createMetrics, type GatewayMetrics } from '../../src/metrics.js';
import type { ListenAddress } from '../../src/net/listen.js';
import { within } from '../support/deadline.js';

const LOOPBACK: ListenAddress = { kind: 'tcp', host: '127.0.0.1', port: 0 };

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function send(
  address: ListenAddress,
  options: {
    method?: string;
    path: string;
    body?: Buffer | string;
    headers?: http.OutgoingHttpHeaders;
  },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const target =
      address.kind === 'unix'
        ? { socketPath: address.path }
        : { host: address.host, port: address.port };
    const req = http.request(
      {
        ...target,
        method: options.method ?? 'POST',
        path: options.path,
        headers: options.headers ?? {},
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

function fixture(metrics: GatewayMetrics = createMetrics()): {
  hub: IngressHub;
  metrics: GatewayMetrics;
  seen: IngressRequest[];
  spec: (instance: string, path: string, extra?: Partial<RouteSpec>) => RouteSpec;
} {
  const hub = new IngressHub({ metrics, env: {}, closeGraceMs: 2_000 });
  const seen: IngressRequest[] = [];
  const spec = (instance: string, path: string, extra: Partial<RouteSpec> = {}): RouteSpec => ({
    listen: LOOPBACK,
    path,
    instance,
    maxBodyBytes: 1024,
    requestTimeoutMs: 2_000,
    handler: (request): Promise<IngressReply> => {
      seen.push(request);
      return Promise.resolve({ status: 200, body: { instance } });
    },
    ...extra,
  });
  return { hub, metrics, seen, spec };
}

function codeOf(answer: Answer): string | undefined {
  return (JSON.parse(answer.body) as { error?: { code?: string } }).error?.code;
}

async function sample(metrics: GatewayMetrics, name: string, labels: string): Promise<number> {
  const text = await metrics.registry.getSingleMetricAsString(name);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

await test('two instances on one listen address share a listener and are routed by path', async (t) => {
  const { hub, seen, spec } = fixture();
  t.after(() => hub.close());
  const a = await hub.register(spec('qq-a', '/qqbot/a'));
  const b = await hub.register(spec('qq-b', '/qqbot/b'));
  assert.equal(a.server, b.server, 'one listener for one address');
  assert.deepEqual(a.address, b.address);
  const raw = Buffer.from('{"op": 0,\n  "d":"\u00e9"}  ');
  const toA = await send(a.address, { path: '/qqbot/a?x=1', body: raw });
  const toB = await send(b.address, { path: '/qqbot/b', body: 'b' });
  assert.deepEqual([toA.status, JSON.parse(toA.body)], [200, { instance: 'qq-a' }]);
  assert.deepEqual([toB.status, JSON.parse(toB.body)], [200, { instance: 'qq-b' }]);
  assert.equal(seen.length, 2);
  assert.ok(seen[0]!.body.equals(raw), 'the handler gets the raw bytes, unmodified');
  await a.close();
  // The other route keeps the listener.
  assert.equal((await send(b.address, { path: '/qqbot/b', body: 'again' })).status, 200);
  assert.equal((await send(b.address, { path: '/qqbot/a', body: 'x' })).status, 404);
  await b.close();
  assert.equal(b.server.listening, false, 'the listener closes with its last route');
});

await test('the server answers 404, 405, 413 and 408 itself, counts them and calls no handler', async (t) => {
  const { hub, metrics, seen, spec } = fixture();
  t.after(() => hub.close());
  const route = await hub.register(spec('qq', '/hook', { requestTimeoutMs: 300 }));
  const at = route.address;

  const unknown = await send(at, { path: '/nope', body: '{}' });
  assert.equal(unknown.status, 404);
  assert.equal(codeOf(unknown), 'GW_ERR_INGRESS_NOT_FOUND');

  const get = await send(at, { method: 'GET', path: '/hook' });
  assert.equal(get.status, 405);
  assert.equal(get.headers.allow, 'POST');
  assert.equal(codeOf(get), 'GW_ERR_INGRESS_METHOD_NOT_ALLOWED');

  const declared = await send(at, { path: '/hook', body: Buffer.alloc(1025, 0x61) });
  assert.equal(declared.status, 413);
  // Chunked (no content-length): counted while reading.
  const chunked = await new Promise<number>((resolve, reject) => {
    if (at.kind !== 'tcp') throw new Error('tcp expected');
    const req = http.request(
      { host: at.host, port: at.port, method: 'POST', path: '/hook', agent: false },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    for (let i = 0; i < 5; i += 1) req.write(Buffer.alloc(400, 0x62));
    req.end();
  });
  assert.equal(chunked, 413);

  // A body that stops arriving: 408 after the route's request timeout, then the cut.
  const slow = await new Promise<string>((resolve, reject) => {
    if (at.kind !== 'tcp') throw new Error('tcp expected');
    const socket = connect(at.port, at.host, () => {
      socket.write('POST /hook HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{"op":');
    });
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
  assert.match(slow, /^HTTP\/1\.1 408 /);

  assert.equal(seen.length, 0, 'no handler ran');
  assert.equal(
    await sample(metrics, 'hermes_ingress_rejected_total', 'route="unrouted",reason="not_found"'),
    1,
  );
  assert.equal(
    await sample(metrics, 'hermes_ingress_rejected_total', 'route="qq",reason="method"'),
    1,
  );
  assert.equal(
    await sample(metrics, 'hermes_ingress_rejected_total', 'route="qq",reason="too_large"'),
    2,
  );
  assert.equal(
    await sample(metrics, 'hermes_ingress_rejected_total', 'route="qq",reason="timeout"'),
    1,
  );
  assert.equal(
    await sample(metrics, 'hermes_ingress_requests_total', 'route="qq",status="413"'),
    2,
  );
});

await test('a request cut by the request timeout (408) is over: closing the route does not wait for it', async (t) => {
  // The close grace is long: a request left in flight after its 408 would hold the close
  // (and the adapter's stop, and a shutdown) for all of it.
  const hub = new IngressHub({ metrics: createMetrics(), env: {}, closeGraceMs: 600_000 });
  t.after(() => hub.close());
  const { spec } = fixture();
  const route = await hub.register(spec('qq', '/hook', { requestTimeoutMs: 200 }));
  const at = route.address;
  if (at.kind !== 'tcp') throw new Error('tcp expected');
  for (const end of ['hang', 'trickle'] as const) {
    const slow = await within(
      new Promise<string>((resolve, reject) => {
        let trickle: NodeJS.Timeout | undefined;
        const socket = connect(at.port, at.host, () => {
          socket.write('POST /hook HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{"op":');
          if (end === 'trickle') trickle = setInterval(() => socket.write(' '), 20);
        });
        let text = '';
        socket.on('data', (c: Buffer) => (text += c.toString()));
        socket.on('close', () => {
          clearInterval(trickle);
          resolve(text);
        });
        socket.on('error', reject);
      }),
      10_000,
      `the 408 of a ${end} body`,
    );
    assert.match(slow, /^HTTP\/1\.1 408 /);
  }
  await within(route.close(), 10_000, 'the route closing after its requests were cut');
});

await test('a handler answers when it is done; a closing route answers 503 and waits for it', async (t) => {
  const { hub, spec } = fixture();
  t.after(() => hub.close());
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let entered!: () => void;
  const inHandler = new Promise<void>((resolve) => (entered = resolve));
  const route = await hub.register(
    spec('qq', '/hook', {
      handler: async () => {
        entered();
        await gate;
        return { status: 200, body: { op: 12, d: 0 } };
      },
    }),
  );
  const first = send(route.address, { path: '/hook', body: '{}' });
  await within(inHandler, 5_000, 'the handler to start');
  const closing = route.close();
  const during = await send(route.address, { path: '/hook', body: '{}' });
  assert.equal(during.status, 503, 'a closing route tells the platform to come back later');
  release();
  const answered = await within(first, 5_000, 'the request in flight to be answered');
  assert.deepEqual([answered.status, JSON.parse(answered.body)], [200, { op: 12, d: 0 }]);
  await within(closing, 5_000, 'the route to close');
});

await test('a handler that throws is answered 500 with a code', async (t) => {
  const { hub, metrics, spec } = fixture();
  t.after(() => hub.close());
  const route = await hub.register(
    spec('qq', '/hook', { handler: () => Promise.reject(new Error('bug')) }),
  );
  const answer = await send(route.address, { path: '/hook', body: '{}' });
  assert.equal(answer.status, 500);
  assert.equal(codeOf(answer), 'GW_ERR_INTERNAL');
  assert.equal(
    await sample(metrics, 'hermes_ingress_rejected_total', 'route="qq",reason="internal"'),
    1,
  );
});

await test('a taken address is GW_ERR_INGRESS_LISTEN (exit 78), a taken path GW_ERR_INGRESS_ROUTE_TAKEN', async (t) => {
  const { hub, spec } = fixture();
  t.after(() => hub.close());
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const port = (blocker.address() as AddressInfo).port;
  await assert.rejects(
    hub.register(spec('qq', '/hook', { listen: { kind: 'tcp', host: '127.0.0.1', port } })),
    (err: unknown) =>
      isGatewayError(err) &&
      err.code === 'GW_ERR_INGRESS_LISTEN' &&
      err.kind === 'config' &&
      err.details.errno === 'EADDRINUSE',
  );
  await assert.rejects(
    hub.probe({ kind: 'tcp', host: '127.0.0.1', port }),
    (err: unknown) => isGatewayError(err) && err.code === 'GW_ERR_INGRESS_LISTEN',
  );
  const first = await hub.register(spec('qq-a', '/hook'));
  await assert.rejects(
    hub.register(spec('qq-b', '/hook')),
    (err: unknown) => isGatewayError(err) && err.code === 'GW_ERR_INGRESS_ROUTE_TAKEN',
  );
  assert.equal((await send(first.address, { path: '/hook', body: '{}' })).status, 200);
});

await test('a unix socket listener: bound, shared, removed with its last route', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hgw-ingress-'));
  const { hub, spec } = fixture();
  t.after(async () => {
    await hub.close();
    await rm(dir, { recursive: true, force: true });
  });
  const listen: ListenAddress = { kind: 'unix', path: join(dir, 'run', 'hooks.sock') };
  const route = await hub.register(spec('qq', '/hook', { listen }));
  assert.equal((await send(listen, { path: '/hook', body: '{}' })).status, 200);
  await hub.probe(listen); // already ours: nothing to bind
  await route.close();
  await assert.rejects(send(listen, { path: '/hook', body: '{}' }), /ENOENT|ECONNREFUSED/);
});

await test('a listener that closes while routes are registered resolves their died promise', async (t) => {
  const { hub, spec } = fixture();
  t.after(() => hub.close());
  const route = await hub.register(spec('qq', '/hook'));
  route.server.close();
  const error = await within(route.died, 5_000, 'the route to learn its listener died');
  assert.equal(error.code, 'GW_ERR_INGRESS_LISTENER_DIED');
  assert.equal(error.retryable, true);
});
