/**
 * The runner in-process: real StateStore on a temp dir, scripted adapters, a real pino logger
 * writing into memory and a recording notifier. Every assertion is on the outcome's exit
 * code, the persisted state file and the `code` of log lines.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type {
  Adapter,
  AdapterContext,
  AdapterOwnedState,
  OutboundMessage,
  SendResult,
} from '../../src/adapters/contract.js';
import { GatewayError, isGatewayError } from '../../src/errors.js';
import { Runner, type RunOutcome } from '../../src/runner/runner.js';
import type { StateDocument } from '../../src/state/schema.js';
import { StateStore } from '../../src/state/store.js';
import { captureLogger, recordingNotifier, type RecordingNotifier } from '../support/capture.js';
import { within } from '../support/deadline.js';
import {
  ScriptedAdapter,
  releaseStuckAdapters,
  scriptedSchema,
} from '../support/scripted-platform.js';
import { scratchRoot, waitFor, waitForState } from '../support/spawn-gateway.js';

let counter = 0;
const running: Runner[] = [];

const root = await scratchRoot('hgw-runner-');

/** Stops every runner a failed assertion left alive, and the stuck adapters' timers. */
function stopRunners(): void {
  // A failed assertion must not leave a runner (and its tick timer) alive.
  for (const runner of running.splice(0)) runner.stop('test cleanup');
  releaseStuckAdapters();
}

function scripted(name: string, config: Record<string, unknown> = {}): ScriptedAdapter {
  return new ScriptedAdapter(name, scriptedSchema.parse(config));
}

/** An adapter whose life is a function, for behaviours the scripted platform lacks. */
class FnAdapter implements Adapter {
  constructor(
    readonly name: string,
    private readonly life: (ctx: AdapterContext, signal: AbortSignal) => Promise<void>,
  ) {}
  run(ctx: AdapterContext, signal: AbortSignal): Promise<void> {
    return this.life(ctx, signal);
  }
  send(_message: OutboundMessage): Promise<SendResult> {
    return Promise.resolve({ ids: [] });
  }
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

interface Harness {
  runner: Runner;
  store: StateStore;
  path: string;
  dir: string;
  logs: ReturnType<typeof captureLogger>;
  notifier: RecordingNotifier;
  outcome: Promise<RunOutcome>;
}

async function start(
  adapters: Adapter[],
  options: {
    shutdownTimeoutMs?: number;
    heartbeatIntervalMs?: number;
    watchdogPingMs?: number;
  } = {},
): Promise<Harness> {
  const dir = join(root, `r${++counter}`);
  await mkdir(dir);
  const path = join(dir, 'gateway_state.json');
  const logs = captureLogger('debug');
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 60_000;
  const store = new StateStore({ path, heartbeatIntervalMs, log: logs.log });
  const notifier = recordingNotifier(options.watchdogPingMs ?? null);
  const runner = new Runner({
    adapters,
    store,
    log: logs.log,
    notifier,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? 2_000,
    heartbeatIntervalMs,
  });
  running.push(runner);
  const outcome = runner.run();
  return { runner, store, path, dir, logs, notifier, outcome };
}

function readDoc(path: string): StateDocument {
  return JSON.parse(readFileSync(path, 'utf8')) as StateDocument;
}

/** Bounds how long a test waits for the runner to end, so a hang fails instead of stalling. */
function ended(h: Pick<Harness, 'outcome'>, timeoutMs = 5_000): Promise<RunOutcome> {
  return within(h.outcome, timeoutMs, 'the runner to end');
}

function allConnected(names: string[]) {
  return (doc: StateDocument): boolean =>
    names.every((n) => doc.platforms[n]?.state === 'connected');
}

await test('Runner: an adapter ending on its own is fatal', async (t) => {
  t.after(stopRunners);
  await t.test(
    'silent return: persists fatal with GW_ERR_ADAPTER_RETURNED, then exits 1',
    async () => {
      const h = await start([scripted('alpha', { then: 'return', after_ms: 20 })]);
      const outcome = await ended(h);
      // Read right after run() resolved: the final state was persisted before the outcome.
      const doc = readDoc(h.path);
      assert.equal(outcome.exitCode, 1);
      assert.equal(outcome.error?.code, 'GW_ERR_ADAPTER_RETURNED');
      assert.equal(doc.gateway.state, 'fatal');
      assert.equal(doc.gateway.exit_code, 1);
      assert.match(doc.gateway.reason ?? '', /GW_ERR_ADAPTER_RETURNED/);
      assert.equal(doc.platforms.alpha?.state, 'fatal');
      assert.equal(doc.platforms.alpha?.last_error?.code, 'GW_ERR_ADAPTER_RETURNED');
      assert.equal(doc.platforms.alpha?.last_error?.retryable, true);
      const fatal = h.logs.lines.find((l) => l.code === 'GW_ERR_ADAPTER_RETURNED');
      assert.equal(fatal?.level, 50);
      assert.equal(fatal?.exit_code, 1);
      assert.equal(fatal?.platform, 'alpha');
    },
  );

  await t.test('a non-retryable error exits 78, with the error persisted', async () => {
    const h = await start([
      scripted('alpha', { then: 'throw', retryable: false, error_code: 'GW_ERR_ADAPTER_FAILED' }),
    ]);
    const outcome = await ended(h);
    const doc = readDoc(h.path);
    assert.equal(outcome.exitCode, 78);
    assert.equal(doc.gateway.state, 'fatal');
    assert.equal(doc.gateway.exit_code, 78);
    assert.equal(doc.platforms.alpha?.state, 'fatal');
    assert.deepEqual(
      {
        code: doc.platforms.alpha?.last_error?.code,
        retryable: doc.platforms.alpha?.last_error?.retryable,
      },
      { code: 'GW_ERR_ADAPTER_FAILED', retryable: false },
    );
    assert.equal(doc.platforms.alpha?.resumable, false);
  });

  await t.test('a retryable error exits 1', async () => {
    const h = await start([scripted('alpha', { then: 'throw', retryable: true })]);
    const outcome = await ended(h);
    assert.equal(outcome.exitCode, 1);
    assert.equal(readDoc(h.path).gateway.exit_code, 1);
  });

  await t.test('a config-kind error exits 78 and an internal one 70', async () => {
    const config = await start([
      scripted('alpha', { then: 'throw', error_code: 'GW_ERR_CONFIG_INVALID' }),
    ]);
    assert.equal((await ended(config)).exitCode, 78);
    const internal = await start([
      scripted('alpha', { then: 'throw', error_code: 'GW_ERR_INTERNAL' }),
    ]);
    assert.equal((await ended(internal)).exitCode, 70);
    assert.equal(readDoc(internal.path).gateway.exit_code, 70);
  });

  await t.test(
    'a plain Error, thrown synchronously from run(), is fatal as GW_ERR_ADAPTER_FAILED',
    async () => {
      const h = await start([
        new FnAdapter('alpha', () => {
          throw new Error('not even a promise');
        }),
      ]);
      const outcome = await ended(h);
      assert.equal(outcome.exitCode, 1);
      assert.equal(readDoc(h.path).platforms.alpha?.last_error?.code, 'GW_ERR_ADAPTER_FAILED');
    },
  );
});

await test('Runner: background tasks (ctx.track)', async (t) => {
  t.after(stopRunners);
  await t.test(
    'a rejecting tracked task is fatal with its error, and the adapter is stopped',
    async () => {
      const h = await start([
        scripted('alpha', { then: 'reject_background', retryable: false, after_ms: 10 }),
      ]);
      const outcome = await ended(h);
      const doc = readDoc(h.path);
      assert.equal(outcome.exitCode, 78);
      assert.equal(outcome.error?.code, 'GW_ERR_ADAPTER_FAILED');
      assert.equal(doc.gateway.state, 'fatal');
      assert.equal(doc.platforms.alpha?.state, 'fatal');
      assert.equal(doc.platforms.alpha?.last_error?.code, 'GW_ERR_ADAPTER_FAILED');
    },
  );

  await t.test('a tracked plain Error becomes GW_ERR_BACKGROUND_TASK (exit 1)', async () => {
    let aborted = false;
    const h = await start([
      new FnAdapter('alpha', async (ctx, signal) => {
        await ctx.transition('connecting');
        await ctx.transition('connected');
        ctx.track('poller', Promise.reject(new Error('poll failed')));
        await untilAborted(signal);
        aborted = true;
      }),
    ]);
    const outcome = await ended(h);
    assert.equal(outcome.exitCode, 1);
    assert.equal(outcome.error?.code, 'GW_ERR_BACKGROUND_TASK');
    assert.equal(readDoc(h.path).platforms.alpha?.last_error?.code, 'GW_ERR_BACKGROUND_TASK');
    assert.ok(aborted, 'the adapter was told to stop');
  });

  await t.test('a tracked task failing after a stop request is not fatal', async () => {
    const h = await start([
      new FnAdapter('alpha', async (ctx, signal) => {
        await ctx.transition('connecting');
        await ctx.transition('connected');
        await untilAborted(signal);
        ctx.track('teardown', Promise.reject(new Error('socket closed')));
      }),
    ]);
    await waitForState(h.path, allConnected(['alpha']), 'alpha connected');
    h.runner.stop('test');
    const outcome = await ended(h);
    assert.equal(outcome.exitCode, 0);
    assert.equal(readDoc(h.path).gateway.state, 'stopped');
  });
});

await test('Runner: stopping', async (t) => {
  t.after(stopRunners);
  await t.test('stop: every adapter stopped, gateway stopped, exit 0', async () => {
    const h = await start([
      scripted('alpha'),
      scripted('beta'),
      scripted('gamma', { steps: ['connecting'] }),
    ]);
    await waitForState(h.path, allConnected(['alpha', 'beta']), 'alpha and beta connected');
    h.runner.stop('stop requested (test)');
    const outcome = await ended(h);
    const doc = readDoc(h.path);
    assert.equal(outcome.exitCode, 0);
    assert.equal(outcome.error, null);
    assert.equal(doc.gateway.state, 'stopped');
    assert.equal(doc.gateway.exit_code, 0);
    assert.equal(doc.gateway.reason, 'stop requested (test)');
    for (const name of ['alpha', 'beta', 'gamma']) {
      assert.equal(doc.platforms[name]?.state, 'stopped', name);
      assert.equal(doc.platforms[name]?.last_error, null, name);
    }
    assert.ok(!h.logs.lines.some((l) => l.level >= 50), 'no error line on a clean stop');
  });

  await t.test(
    'tells systemd READY once (naming every adapter), STATUS on transitions, then STOPPING',
    async () => {
      const h = await start([scripted('alpha'), scripted('beta')]);
      await waitForState(h.path, allConnected(['alpha', 'beta']), 'both connected');
      h.runner.stop('test');
      await ended(h);
      const ready = h.notifier.sent.filter((s) => s.kind === 'ready');
      assert.equal(ready.length, 1);
      assert.match(ready[0]?.status ?? '', /alpha \w+/);
      assert.match(ready[0]?.status ?? '', /beta \w+/);
      const statuses = h.notifier.sent.filter((s) => s.kind === 'status').map((s) => s.status);
      assert.ok(
        statuses.includes('running: alpha connected, beta connected'),
        statuses.join(' | '),
      );
      const kinds = h.notifier.sent.map((s) => s.kind);
      assert.ok(kinds.indexOf('ready') < kinds.indexOf('stopping'));
      assert.equal(kinds.filter((k) => k === 'stopping').length, 1);
    },
  );

  await t.test('stop is idempotent and a second stop does not change the outcome', async () => {
    const h = await start([scripted('alpha')]);
    await waitForState(h.path, allConnected(['alpha']), 'alpha connected');
    h.runner.stop('first');
    h.runner.stop('second');
    h.runner.fail(new GatewayError('GW_ERR_INTERNAL', 'late failure'));
    const outcome = await ended(h);
    assert.equal(outcome.exitCode, 0);
    assert.equal(readDoc(h.path).gateway.reason, 'first');
  });

  await t.test(
    'an adapter that ignores its stop signal is abandoned at the deadline (GW_ERR_STOP_TIMEOUT)',
    async () => {
      const shutdownTimeoutMs = 150;
      const h = await start([scripted('stuck', { then: 'ignore_stop' }), scripted('fine')], {
        shutdownTimeoutMs,
      });
      await waitForState(h.path, allConnected(['stuck', 'fine']), 'both connected');
      const stopAt = Date.now();
      h.runner.stop('test');
      const outcome = await ended(h);
      const tookMs = Date.now() - stopAt;
      assert.ok(tookMs >= shutdownTimeoutMs - 5, `ended after ${tookMs} ms, before the deadline`);
      assert.ok(tookMs < shutdownTimeoutMs + 1_000, `ended after ${tookMs} ms`);
      const doc = readDoc(h.path);
      assert.equal(outcome.exitCode, 0);
      assert.equal(doc.gateway.state, 'stopped');
      assert.equal(doc.platforms.stuck?.state, 'stopped');
      assert.equal(doc.platforms.stuck?.last_error?.code, 'GW_ERR_STOP_TIMEOUT');
      assert.equal(doc.platforms.stuck?.detail, 'abandoned');
      assert.equal(doc.platforms.fine?.state, 'stopped');
      assert.equal(doc.platforms.fine?.last_error, null);
      const line = h.logs.lines.find((l) => l.code === 'GW_ERR_STOP_TIMEOUT');
      assert.equal(line?.level, 50);
      assert.equal(line?.platform, 'stuck');
    },
  );

  await t.test('with two adapters, a fatal in one stops the other', async () => {
    let betaSawAbort = false;
    const h = await start([
      new FnAdapter('beta', async (ctx, signal) => {
        await ctx.transition('connecting');
        await ctx.transition('connected');
        await untilAborted(signal);
        betaSawAbort = true;
      }),
      scripted('alpha', { then: 'throw', after_ms: 30 }),
    ]);
    const outcome = await ended(h);
    const doc = readDoc(h.path);
    assert.equal(outcome.exitCode, 1);
    assert.ok(betaSawAbort, 'beta was asked to stop');
    assert.equal(doc.gateway.state, 'fatal');
    assert.equal(doc.platforms.alpha?.state, 'fatal');
    assert.equal(doc.platforms.alpha?.last_error?.code, 'GW_ERR_ADAPTER_FAILED');
    assert.equal(doc.platforms.beta?.state, 'stopped');
    assert.equal(doc.platforms.beta?.last_error, null);
  });

  await t.test(
    'a fatal with an adapter that ignores its stop still ends within the deadline',
    async () => {
      const h = await start(
        [
          scripted('stuck', { then: 'ignore_stop' }),
          scripted('alpha', { then: 'return', after_ms: 30 }),
        ],
        { shutdownTimeoutMs: 100 },
      );
      const outcome = await ended(h);
      const doc = readDoc(h.path);
      assert.equal(outcome.exitCode, 1);
      assert.equal(doc.gateway.state, 'fatal');
      assert.equal(doc.platforms.alpha?.last_error?.code, 'GW_ERR_ADAPTER_RETURNED');
      assert.equal(doc.platforms.stuck?.last_error?.code, 'GW_ERR_STOP_TIMEOUT');
    },
  );
});

await test('Runner: the state file', async (t) => {
  t.after(stopRunners);
  await t.test(
    'a state write failure mid-run exits 70 and logs GW_ERR_STATE_WRITE with the path',
    async () => {
      const h = await start([scripted('alpha')], { heartbeatIntervalMs: 20 });
      await waitForState(h.path, allConnected(['alpha']), 'alpha connected');
      // Replace the state directory by a regular file: the next atomic write fails (ENOTDIR,
      // or ENOENT when the 20 ms heartbeat writes between the rename and the new file).
      // (Renamed away, not deleted: the heartbeat may be writing into it at this moment.)
      await rename(h.dir, `${h.dir}.gone`);
      await writeFile(h.dir, 'not a directory');
      const outcome = await ended(h);
      assert.equal(outcome.exitCode, 70);
      assert.equal(outcome.error?.code, 'GW_ERR_STATE_WRITE');
      const errors = h.logs.lines.filter((l) => l.code === 'GW_ERR_STATE_WRITE' && l.level === 50);
      assert.equal(errors.length, 1, 'one fatal, one error line');
      const line = errors[0]!;
      assert.equal(line.path, h.path, 'the error line names the code and the path');
      assert.equal(line.level, 50);
      assert.ok(['ENOTDIR', 'ENOENT'].includes(String(line.errno)), `errno ${String(line.errno)}`);
      const fatal = h.logs.lines.find((l) => l.code === 'GW_ERR_STATE_WRITE' && l.exit_code === 70);
      assert.ok(fatal, 'the fatal line carries the exit code');
    },
  );

  await t.test('refreshes heartbeat_at on the tick', async () => {
    const h = await start([scripted('alpha')], { heartbeatIntervalMs: 30 });
    const first = await waitForState(h.path, allConnected(['alpha']), 'alpha connected');
    await waitForState(
      h.path,
      (doc) => Date.parse(doc.heartbeat_at) > Date.parse(first.heartbeat_at),
      'a newer heartbeat_at',
      3_000,
    );
    h.runner.stop('test');
    assert.equal((await ended(h)).exitCode, 0);
  });

  await t.test('pings the watchdog from the tick when systemd asks for it', async () => {
    const h = await start([scripted('alpha')], { watchdogPingMs: 20 });
    await waitFor(
      () => h.notifier.sent.filter((s) => s.kind === 'watchdog').length >= 4,
      'four watchdog pings',
      3_000,
    );
    h.runner.stop('test');
    await ended(h);
    const count = h.notifier.sent.filter((s) => s.kind === 'watchdog').length;
    // The tick is gone after the end: no ping arrives later.
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(h.notifier.sent.filter((s) => s.kind === 'watchdog').length, count);
  });

  await t.test('persists each transition before the adapter continues', async () => {
    const seen: Array<string | undefined> = [];
    let path = '';
    const h = await start([
      new FnAdapter('alpha', async (ctx, signal) => {
        for (const state of ['connecting', 'connected', 'reconnecting', 'connected'] as const) {
          await ctx.transition(state, { reconnectAttempt: state === 'reconnecting' ? 1 : 0 });
          seen.push(readDoc(path).platforms.alpha?.state);
        }
        await untilAborted(signal);
      }),
    ]);
    path = h.path;
    await waitFor(() => seen.length === 4, 'four transitions');
    assert.deepEqual(seen, ['connecting', 'connected', 'reconnecting', 'connected']);
    h.runner.stop('test');
    await ended(h);
  });

  await t.test(
    'rejects an invalid transition with GW_ERR_INTERNAL and leaves the state alone',
    async () => {
      const rejections: unknown[] = [];
      let path = '';
      let stateAfter: string | undefined;
      const tryMove = async (ctx: AdapterContext, to: AdapterOwnedState): Promise<void> => {
        try {
          await ctx.transition(to);
        } catch (err) {
          rejections.push(err);
        }
      };
      const h = await start([
        new FnAdapter('alpha', async (ctx, signal) => {
          await ctx.transition('connecting');
          await ctx.transition('connected');
          await tryMove(ctx, 'connecting'); // connected -> connecting
          // Runner-owned states cannot be entered by an adapter either.
          await tryMove(ctx, 'stopped' as AdapterOwnedState);
          await tryMove(ctx, 'fatal' as AdapterOwnedState);
          stateAfter = readDoc(path).platforms.alpha?.state;
          await untilAborted(signal);
        }),
      ]);
      path = h.path;
      await waitFor(() => stateAfter !== undefined, 'the adapter to try its transitions');
      assert.equal(rejections.length, 3);
      for (const err of rejections) {
        assert.ok(isGatewayError(err));
        assert.equal(err.code, 'GW_ERR_INTERNAL');
      }
      assert.deepEqual((rejections[0] as GatewayError).details, {
        from: 'connected',
        to: 'connecting',
      });
      assert.equal(stateAfter, 'connected');
      h.runner.stop('test');
      assert.equal((await ended(h)).exitCode, 0);
      assert.equal(readDoc(h.path).platforms.alpha?.state, 'stopped');
    },
  );

  await t.test('continues write_seq from the previous file', async () => {
    const dir = join(root, `r${++counter}`);
    await mkdir(dir);
    const path = join(dir, 'gateway_state.json');
    const first = new StateStore({ path, heartbeatIntervalMs: 60_000, log: captureLogger().log });
    for (let i = 0; i < 7; i++) await first.commit();
    const logs = captureLogger();
    const store = new StateStore({ path, heartbeatIntervalMs: 60_000, log: logs.log });
    const runner = new Runner({
      adapters: [scripted('alpha', { then: 'return' })],
      store,
      log: logs.log,
      notifier: recordingNotifier(),
      shutdownTimeoutMs: 1_000,
      heartbeatIntervalMs: 60_000,
    });
    running.push(runner);
    const outcome = await ended({ outcome: runner.run() });
    assert.equal(outcome.exitCode, 1);
    assert.ok(readDoc(path).write_seq > 7);
  });
});
