import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Secret } from '../../src/config/secret.js';
import { controlRequest, type ControlResponse } from '../../src/control/client.js';
import { controlSchema, type ListenAddress } from '../../src/control/config.js';
import { createControlServer, type ControlServer } from '../../src/control/server.js';
import { GatewayError } from '../../src/errors.js';
import { createMetrics, type GatewayMetrics } from '../../src/metrics.js';
import { StateStore } from '../../src/state/store.js';
import { captureLogger } from '../support/capture.js';
import { RecordingAdapter } from '../handlers/helpers.js';

const TOKEN = 'control-token-abcdef0123456789';

interface Fixture {
  server: ControlServer;
  address: ListenAddress;
  adapter: RecordingAdapter;
  store: StateStore;
  metrics: GatewayMetrics;
  raw: string[];
}

async function startFixture(listen: string, extra: Record<string, unknown> = {}): Promise<Fixture> {
  const { log, raw } = captureLogger('debug');
  const adapter = new RecordingAdapter('qqbot');
  const store = new StateStore({
    path: '/nonexistent/never-written.json',
    heartbeatIntervalMs: 1_000,
    log,
  });
  const metrics = createMetrics();
  metrics.bindState(store);
  const config = controlSchema.parse({
    listen,
    token: new Secret(TOKEN),
    max_body_bytes: 1024,
    request_timeout_ms: 2_000,
    send_timeout_ms: 100,
    ...extra,
  });
  const server = createControlServer({ config, adapters: [adapter], state: store, metrics, log });
  const address = await server.start();
  return { server, address, adapter, store, metrics, raw };
}

function healthy(store: StateStore): void {
  store.setGateway({ state: 'running' });
  store.setPlatform('qqbot', { state: 'connected' });
}

function request(
  fx: Fixture,
  method: 'GET' | 'POST',
  path: string,
  options: { token?: string | null; body?: unknown } = {},
): Promise<ControlResponse> {
  return controlRequest({
    listen: fx.address,
    method,
    path,
    token: options.token === null ? undefined : (options.token ?? TOKEN),
    body: options.body,
    timeoutMs: 5_000,
  });
}

function errorCode(response: ControlResponse): unknown {
  return (response.json as { error?: { code?: unknown } } | undefined)?.error?.code;
}

const SEND = { platform: 'qqbot', chat: { type: 'c2c', id: 'OPENID1' }, text: 'hello' };

await test('control API over loopback TCP', async (t) => {
  const fx = await startFixture('127.0.0.1:0');
  t.after(async () => {
    await fx.server.close();
  });
  t.beforeEach(() => {
    fx.adapter.sent.length = 0;
    fx.adapter.behaviour = null;
    healthy(fx.store);
  });

  await t.test('binds the real port', () => {
    assert.equal(fx.address.kind, 'tcp');
    assert.ok(fx.address.kind === 'tcp' && fx.address.port > 0);
  });

  await t.test(
    'GET /healthz needs no token: 200 when running and every adapter is connected',
    async () => {
      const response = await request(fx, 'GET', '/healthz', { token: null });
      assert.equal(response.status, 200);
      assert.deepEqual(response.json, {
        status: 'ok',
        gateway: 'running',
        platforms: { qqbot: { state: 'connected', since: fx.store.platform('qqbot')!.since } },
      });
    },
  );

  await t.test('GET /healthz is 503 while an adapter reconnects or the gateway stops', async () => {
    fx.store.setPlatform('qqbot', { state: 'reconnecting' });
    const reconnecting = await request(fx, 'GET', '/healthz', { token: null });
    assert.equal(reconnecting.status, 503);
    assert.equal((reconnecting.json as { status: string }).status, 'unavailable');
    healthy(fx.store);
    fx.store.setGateway({ state: 'stopping' });
    assert.equal((await request(fx, 'GET', '/healthz', { token: null })).status, 503);
  });

  await t.test('every other endpoint is 401 without the token or with a wrong one', async () => {
    for (const [method, path] of [
      ['GET', '/metrics'],
      ['POST', '/send'],
      ['GET', '/no-such-endpoint'],
    ] as const) {
      for (const token of [null, 'wrong-token', `${TOKEN}x`, '']) {
        const response = await request(fx, method, path, { token, body: SEND });
        assert.equal(response.status, 401, `${method} ${path} with ${String(token)}`);
        assert.equal(errorCode(response), 'GW_ERR_CONTROL_UNAUTHORIZED');
      }
    }
    assert.deepEqual(fx.adapter.sent, []);
  });

  await t.test('GET /metrics is Prometheus text', async () => {
    const response = await request(fx, 'GET', '/metrics');
    assert.equal(response.status, 200);
    assert.match(response.contentType, /^text\/plain; version=0\.0\.4/);
    assert.match(
      response.text,
      /^hermes_adapter_state\{platform="qqbot",type="qqbot",state="connected"\} 1$/m,
    );
    assert.match(response.text, /^# TYPE hermes_handler_latency_seconds histogram$/m);
  });

  await t.test(
    'POST /send delivers a proactive message (no reply context) and counts it',
    async () => {
      const response = await request(fx, 'POST', '/send', { body: SEND });
      assert.equal(response.status, 200);
      assert.deepEqual(response.json, { ok: true, platform: 'qqbot', ids: ['qqbot-1'] });
      assert.deepEqual(fx.adapter.sent, [{ chat: { type: 'c2c', id: 'OPENID1' }, text: 'hello' }]);
      const metrics = await request(fx, 'GET', '/metrics');
      assert.match(
        metrics.text,
        /^hermes_deliveries_total\{platform="qqbot",type="qqbot",result="ok"\} 1$/m,
      );
    },
  );

  await t.test('bad inputs are 4xx JSON errors, and the server carries on', async () => {
    const cases: Array<[unknown, number, string]> = [
      [Buffer.from('{"platform": "qqbot",'), 400, 'GW_ERR_CONTROL_BAD_REQUEST'],
      [Buffer.from(''), 400, 'GW_ERR_CONTROL_BAD_REQUEST'],
      [{ chat: SEND.chat, text: 'x' }, 400, 'GW_ERR_CONTROL_BAD_REQUEST'],
      [{ ...SEND, text: '   ' }, 400, 'GW_ERR_CONTROL_BAD_REQUEST'],
      [{ ...SEND, chat: { type: 'room', id: 'x' } }, 400, 'GW_ERR_CONTROL_BAD_REQUEST'],
      [{ ...SEND, chat: { type: 'c2c' } }, 400, 'GW_ERR_CONTROL_BAD_REQUEST'],
      [{ ...SEND, msg_id: 'm1' }, 400, 'GW_ERR_CONTROL_BAD_REQUEST'],
      [[SEND], 400, 'GW_ERR_CONTROL_BAD_REQUEST'],
      [{ ...SEND, platform: 'telegram' }, 404, 'GW_ERR_CONTROL_UNKNOWN_PLATFORM'],
    ];
    for (const [body, status, code] of cases) {
      const response = await request(fx, 'POST', '/send', { body });
      assert.equal(response.status, status, JSON.stringify(body));
      assert.equal(errorCode(response), code);
      assert.equal(
        typeof (response.json as { error: { message: unknown } }).error.message,
        'string',
      );
    }
    assert.deepEqual(fx.adapter.sent, []);
    assert.equal((await request(fx, 'GET', '/healthz')).status, 200);
  });

  await t.test('an oversized body is 413, declared or not', async () => {
    const big = { ...SEND, text: 'x'.repeat(64 * 1024) };
    const declared = await request(fx, 'POST', '/send', { body: big });
    assert.equal(declared.status, 413);
    assert.equal(errorCode(declared), 'GW_ERR_CONTROL_BODY_TOO_LARGE');
    // Chunked: no content-length, the cap is found while reading.
    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const address = fx.address as { host: string; port: number };
      const req = http.request({
        host: address.host,
        port: address.port,
        method: 'POST',
        path: '/send',
        headers: { authorization: `Bearer ${TOKEN}`, 'transfer-encoding': 'chunked' },
      });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      for (let i = 0; i < 16; i++) req.write('y'.repeat(4096));
      req.end();
    });
    assert.equal(chunked.status, 413);
    assert.deepEqual(fx.adapter.sent, []);
  });

  await t.test(
    'an unknown chat is 404; another adapter failure is 502 with its code; a stuck send is 504',
    async () => {
      fx.adapter.behaviour = (message) => {
        if (message.chat.id === 'ghost') {
          return Promise.reject(
            new GatewayError('GW_ERR_ADAPTER_FAILED', 'no such user', {
              details: { chat_not_found: true },
            }),
          );
        }
        if (message.chat.id === 'broken') {
          return Promise.reject(new GatewayError('GW_ERR_ADAPTER_FAILED', 'platform down'));
        }
        return new Promise(() => undefined);
      };
      const ghost = await request(fx, 'POST', '/send', {
        body: { ...SEND, chat: { type: 'c2c', id: 'ghost' } },
      });
      assert.equal(ghost.status, 404);
      assert.equal(errorCode(ghost), 'GW_ERR_CONTROL_UNKNOWN_CHAT');
      assert.equal(
        (ghost.json as { error: { cause_code: string } }).error.cause_code,
        'GW_ERR_ADAPTER_FAILED',
      );
      const broken = await request(fx, 'POST', '/send', {
        body: { ...SEND, chat: { type: 'c2c', id: 'broken' } },
      });
      assert.equal(broken.status, 502);
      assert.equal(errorCode(broken), 'GW_ERR_ADAPTER_FAILED');
      const stuck = await request(fx, 'POST', '/send', { body: SEND });
      assert.equal(stuck.status, 504);
      assert.equal(errorCode(stuck), 'GW_ERR_DELIVERY_TIMEOUT');
    },
  );

  await t.test('unknown paths are 404 and wrong methods 405, with the token', async () => {
    const missing = await request(fx, 'GET', '/admin');
    assert.equal(missing.status, 404);
    assert.equal(errorCode(missing), 'GW_ERR_CONTROL_NOT_FOUND');
    const wrong = await request(fx, 'GET', '/send');
    assert.equal(wrong.status, 405);
    assert.equal(errorCode(wrong), 'GW_ERR_CONTROL_METHOD_NOT_ALLOWED');
    assert.equal((await request(fx, 'POST', '/healthz', { body: {} })).status, 405);
  });

  await t.test('the token never reaches a log line', () => {
    assert.ok(fx.raw.length > 0);
    assert.ok(!fx.raw.join('\n').includes(TOKEN));
  });
});

await test('control API over a unix socket', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hgw-control-'));
  t.after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  await t.test('listens with mode 0600, answers, and removes the socket on close', async () => {
    const path = join(dir, 'run', 'control.sock');
    const fx = await startFixture(`unix:${path}`);
    try {
      healthy(fx.store);
      assert.deepEqual(fx.address, { kind: 'unix', path });
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.equal((await request(fx, 'GET', '/healthz', { token: null })).status, 200);
      assert.equal((await request(fx, 'GET', '/metrics', { token: null })).status, 401);
      const sent = await request(fx, 'POST', '/send', { body: SEND });
      assert.equal(sent.status, 200);
    } finally {
      await fx.server.close();
    }
    assert.equal(existsSync(path), false);
  });

  await t.test(
    'a stale socket left by a dead gateway is replaced; a live one is GW_ERR_CONTROL_LISTEN',
    async () => {
      const path = join(dir, 'stale.sock');
      // A gateway killed with SIGKILL leaves its socket file behind with nobody listening.
      const dead = spawn(
        process.execPath,
        [
          '-e',
          `require('node:net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      await once(dead.stdout, 'data');
      dead.kill('SIGKILL');
      await once(dead, 'exit');
      assert.equal(statSync(path).isSocket(), true);
      const first = await startFixture(path);
      try {
        healthy(first.store);
        assert.equal((await request(first, 'GET', '/healthz', { token: null })).status, 200);
        // `path` is now live: a second gateway must not steal it.
        await assert.rejects(startFixture(path), (err: unknown) => {
          assert.ok(err instanceof GatewayError);
          assert.equal(err.code, 'GW_ERR_CONTROL_LISTEN');
          return true;
        });
        assert.equal((await request(first, 'GET', '/healthz', { token: null })).status, 200);
      } finally {
        await first.server.close();
      }
    },
  );

  await t.test('a regular file at the path is never deleted', async () => {
    const path = join(dir, 'not-a-socket');
    await writeFile(path, 'precious');
    await assert.rejects(
      startFixture(path),
      (err: unknown) => err instanceof GatewayError && err.code === 'GW_ERR_CONTROL_LISTEN',
    );
    assert.equal(existsSync(path), true);
  });
});

await test('control API listen failures', async (t) => {
  await t.test('a port in use is GW_ERR_CONTROL_LISTEN', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as { port: number };
    try {
      await assert.rejects(startFixture(`127.0.0.1:${port}`), (err: unknown) => {
        assert.ok(err instanceof GatewayError);
        assert.equal(err.code, 'GW_ERR_CONTROL_LISTEN');
        assert.equal(err.details.errno, 'EADDRINUSE');
        return true;
      });
    } finally {
      await new Promise<void>((resolve) => busy.close(() => resolve()));
    }
  });

  await t.test('close is idempotent', async () => {
    const fx = await startFixture('127.0.0.1:0');
    await Promise.all([fx.server.close(), fx.server.close()]);
    await fx.server.close();
  });
});
