/**
 * systemd notifications against a REAL unix datagram socket (NOTIFY_SOCKET), received by a
 * tiny python3 process, with the real sd-notify native module inside the spawned gateway.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { concurrent } from '../support/concurrent.js';
import { isGatewayError } from '../../src/errors.js';
import type { StateDocument } from '../../src/state/schema.js';
import { loadNotifier, watchdogPingMs } from '../../src/systemd/notify.js';
import { NotifyReceiver, field, type Datagram } from '../support/notify-receiver.js';
import {
  allConnected,
  killAllChildren,
  launchGateway,
  type Launched,
  scratchRoot,
} from '../support/spawn-gateway.js';

let counter = 0;
const receivers: NotifyReceiver[] = [];

const root = await scratchRoot('hgw-notify-');

function cleanup(): void {
  killAllChildren();
  for (const receiver of receivers) receiver.close();
}

async function withReceiver(): Promise<{ receiver: NotifyReceiver; dir: string }> {
  const dir = join(root, `n${++counter}`);
  await mkdir(dir, { recursive: true });
  // launchGateway's default state path in `dir`: read on receipt of every datagram.
  const receiver = await NotifyReceiver.start(dir, { watch: join(dir, 'gateway_state.json') });
  receivers.push(receiver);
  return { receiver, dir };
}

async function launchNotified(
  config: Record<string, unknown>,
  env: Record<string, string> = {},
): Promise<{ g: Launched; receiver: NotifyReceiver }> {
  const { receiver, dir } = await withReceiver();
  const g = await launchGateway(dir, config, { NOTIFY_SOCKET: receiver.path, ...env });
  return { g, receiver };
}

function has(d: Datagram, assignment: string): boolean {
  const [key, value] = assignment.split('=') as [string, string];
  return d.fields.some(([k, v]) => k === key && v === value);
}

await test('loadNotifier', async (t) => {
  t.after(cleanup);
  await t.test('without NOTIFY_SOCKET: a disabled no-op, even when the module is missing', () => {
    const notifier = loadNotifier({}, 'no-such-module');
    assert.equal(notifier.enabled, false);
    assert.equal(notifier.watchdogPingMs, null);
    notifier.ready('x');
    notifier.status('x');
    notifier.watchdog();
    notifier.stopping('x');
  });

  await t.test(
    'with NOTIFY_SOCKET and no native module: GW_ERR_NOTIFY_UNAVAILABLE (exit 78)',
    () => {
      assert.throws(
        () => loadNotifier({ NOTIFY_SOCKET: '/run/nowhere.sock' }, 'no-such-module'),
        (err) => {
          assert.ok(isGatewayError(err));
          assert.equal(err.code, 'GW_ERR_NOTIFY_UNAVAILABLE');
          assert.equal(err.kind, 'config');
          return true;
        },
      );
    },
  );

  await t.test('with NOTIFY_SOCKET and the native module: enabled', () => {
    const notifier = loadNotifier({ NOTIFY_SOCKET: '/run/nowhere.sock', WATCHDOG_USEC: '200000' });
    assert.equal(notifier.enabled, true);
    assert.equal(notifier.watchdogPingMs, 100);
  });
});

await test('watchdogPingMs', async (t) => {
  t.after(cleanup);
  await t.test('is half of WATCHDOG_USEC, in ms', () => {
    assert.equal(watchdogPingMs({ WATCHDOG_USEC: '200000' }), 100);
    assert.equal(watchdogPingMs({ WATCHDOG_USEC: '30000000' }), 15_000);
  });

  await t.test('is null without a usable WATCHDOG_USEC', () => {
    assert.equal(watchdogPingMs({}), null);
    assert.equal(watchdogPingMs({ WATCHDOG_USEC: '0' }), null);
    assert.equal(watchdogPingMs({ WATCHDOG_USEC: 'soon' }), null);
  });

  await t.test('is null when WATCHDOG_PID names another process, set when it names us', () => {
    assert.equal(watchdogPingMs({ WATCHDOG_USEC: '200000', WATCHDOG_PID: '1' }, 4242), null);
    assert.equal(watchdogPingMs({ WATCHDOG_USEC: '200000', WATCHDOG_PID: '4242' }, 4242), 100);
  });
});

await test('notifications from a running gateway', { concurrency: 2 }, async (t) => {
  t.after(cleanup);
  const c = concurrent(t);
  c.it(
    'READY=1 with a STATUS naming every adapter, STATUS on transitions, STOPPING=1 on SIGTERM',
    async () => {
      const { g, receiver } = await launchNotified({
        platforms: {
          scripted: {},
          scripted2: { steps: ['connecting', 'connected', 'reconnecting'] },
        },
      });
      const ready = await receiver.waitFor((d) => has(d, 'READY=1'), 'READY=1');
      // Order: `running` is on disk before READY=1 leaves (read the moment it arrived), so a
      // supervisor that acts on READY=1 never finds a state file that says otherwise.
      assert.ok(ready.state !== null, 'the state file exists when READY=1 arrives');
      const onDisk = JSON.parse(ready.state) as StateDocument;
      assert.equal(onDisk.pid, g.proc.pid);
      assert.equal(onDisk.gateway.state, 'running', 'the state file says running at READY=1');
      const readyStatus = field(ready, 'STATUS') ?? '';
      assert.match(readyStatus, /^running: /);
      assert.match(readyStatus, /\bscripted (starting|connecting|connected|reconnecting)\b/);
      assert.match(readyStatus, /\bscripted2 (starting|connecting|connected|reconnecting)\b/);
      assert.equal(field(ready, 'MAINPID'), String(g.proc.pid));

      // Every transition is followed by a STATUS= line with the new states.
      await receiver.waitFor(
        (d) =>
          /scripted connected/.test(field(d, 'STATUS') ?? '') &&
          /scripted2 reconnecting/.test(field(d, 'STATUS') ?? ''),
        'STATUS with scripted connected, scripted2 reconnecting',
      );
      await g.proc.waitForState(
        g.statePath,
        (d) => d.platforms.scripted2?.state === 'reconnecting',
        'scripted2 reconnecting',
      );
      assert.ok(receiver.with('STATUS').length >= 4);
      assert.ok(
        receiver.datagrams.indexOf(ready) ===
          receiver.datagrams.findIndex((d) => has(d, 'READY=1')),
      );
      assert.equal(receiver.with('READY').length, 1, 'READY=1 is sent once');

      g.proc.signal('SIGTERM');
      assert.equal((await g.proc.waitForExit()).code, 0);
      const stopping = await receiver.waitFor((d) => has(d, 'STOPPING=1'), 'STOPPING=1');
      assert.match(field(stopping, 'STATUS') ?? '', /^stopping: /);
      assert.ok(receiver.datagrams.indexOf(stopping) > receiver.datagrams.indexOf(ready));
      assert.equal(receiver.with('WATCHDOG').length, 0, 'no WATCHDOG_USEC, no pings');
    },
  );

  c.it('WATCHDOG=1 about every 100 ms with WATCHDOG_USEC=200000', async () => {
    const { g, receiver } = await launchNotified(
      { platforms: { scripted: {} } },
      { WATCHDOG_USEC: '200000' },
    );
    await g.proc.waitForState(g.statePath, (d) => allConnected(d), 'connected');
    await receiver.waitFor(
      () => receiver.with('WATCHDOG').length >= 6,
      'six WATCHDOG=1 pings',
      5_000,
    );
    g.proc.signal('SIGTERM');
    assert.equal((await g.proc.waitForExit()).code, 0);
    const pings = receiver.with('WATCHDOG');
    for (const ping of pings) assert.equal(ping.data, 'WATCHDOG=1');
    const gaps = pings.slice(1).map((p, i) => p.at - pings[i]!.at);
    const sorted = [...gaps].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    // Half the watchdog interval, with room for a loaded machine; never past the deadline.
    assert.ok(median >= 50 && median <= 180, `median gap ${median} ms (${gaps.join(', ')})`);
  });

  c.it('no WATCHDOG=1 when WATCHDOG_PID names another process', async () => {
    const { g, receiver } = await launchNotified(
      { heartbeat_interval_ms: 50, platforms: { scripted: {} } },
      { WATCHDOG_USEC: '200000', WATCHDOG_PID: '1' },
    );
    const start = await g.proc.waitForState(g.statePath, (d) => allConnected(d), 'connected');
    // Let the gateway tick several watchdog periods: heartbeat_at advances in the state file.
    await g.proc.waitForState(
      g.statePath,
      (d) => Date.parse(d.heartbeat_at) - Date.parse(start.heartbeat_at) >= 400,
      'heartbeat 400 ms later',
    );
    g.proc.signal('SIGTERM');
    assert.equal((await g.proc.waitForExit()).code, 0);
    await receiver.waitFor((d) => has(d, 'STOPPING=1'), 'STOPPING=1');
    assert.equal(receiver.with('READY').length, 1);
    assert.equal(receiver.with('WATCHDOG').length, 0);
  });
  await c.done();
});
