/**
 * `hermes-gateway status` against real gateways: exit 0 healthy, 1 degraded (an adapter not
 * connected, or a stale heartbeat), 3 not running; `--json` for scripts.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { concurrent } from '../support/concurrent.js';
import type { StatusReport } from '../../src/cli/status.js';
import type { StateDocument } from '../../src/state/schema.js';
import { processStartTime } from '../../src/util/proc.js';
import {
  allConnected,
  killAllChildren,
  launchGateway,
  runGatewayCli,
  sandboxEnv,
  waitFor,
  type CliResult,
  type Launched,
  scratchRoot,
} from '../support/spawn-gateway.js';

let counter = 0;

const root = await scratchRoot('hgw-status-');

function launch(config: Record<string, unknown>): Promise<Launched> {
  return launchGateway(join(root, `g${++counter}`), config);
}

function status(args: string[], dir = root): Promise<CliResult> {
  return runGatewayCli(['status', ...args], { env: sandboxEnv(dir) });
}

async function statusJson(
  statePath: string,
): Promise<{ code: number | null; report: StatusReport }> {
  const result = await status(['--state', statePath, '--json']);
  return { code: result.code, report: JSON.parse(result.stdout) as StatusReport };
}

await test('status against a running gateway', { concurrency: 2 }, async (t) => {
  t.after(killAllChildren);
  const c = concurrent(t);
  c.it(
    'exit 0 when every adapter is connected; 3 after it exited, naming the last pid',
    async () => {
      const g = await launch({ platforms: { scripted: {}, scripted2: {} } });
      await g.proc.waitForState(g.statePath, (d) => allConnected(d), 'connected');

      const text = await status(['--state', g.statePath]);
      assert.equal(text.code, 0, text.stdout);
      assert.ok(text.stdout.includes(String(g.proc.pid)));

      // state_file found through the config too.
      assert.equal((await status(['--config', g.configPath])).code, 0);

      const { code, report } = await statusJson(g.statePath);
      assert.equal(code, 0);
      assert.equal(report.exit_code, 0);
      assert.equal(report.running, true);
      assert.equal(report.healthy, true);
      assert.equal(report.stale_heartbeat, false);
      assert.equal(report.state_file, g.statePath);
      assert.equal(report.error, null);
      assert.equal(typeof report.summary, 'string');
      assert.equal(report.state?.pid, g.proc.pid);
      assert.equal(report.state?.gateway.state, 'running');
      assert.equal(report.state?.platforms.scripted?.state, 'connected');

      g.proc.signal('SIGTERM');
      assert.equal((await g.proc.waitForExit()).code, 0);
      const down = await status(['--state', g.statePath]);
      assert.equal(down.code, 3);
      assert.match(down.stdout, /not running/);
      assert.ok(down.stdout.includes(`pid ${g.proc.pid}`), down.stdout);
      const afterExit = await statusJson(g.statePath);
      assert.equal(afterExit.code, 3);
      assert.equal(afterExit.report.running, false);
      assert.equal(afterExit.report.healthy, false);
      assert.equal(afterExit.report.exit_code, 3);
      assert.equal(afterExit.report.state?.pid, g.proc.pid);
      assert.equal(afterExit.report.state?.gateway.state, 'stopped');
    },
  );

  c.it('exit 1 (degraded) while an adapter stays connecting', async () => {
    const g = await launch({ platforms: { scripted: {}, scripted2: { steps: ['connecting'] } } });
    await g.proc.waitForState(
      g.statePath,
      (d) =>
        d.gateway.state === 'running' &&
        d.platforms.scripted?.state === 'connected' &&
        d.platforms.scripted2?.state === 'connecting',
      'one connected, one connecting',
    );
    const { code, report } = await statusJson(g.statePath);
    assert.equal(code, 1);
    assert.equal(report.exit_code, 1);
    assert.equal(report.running, true);
    assert.equal(report.healthy, false);
    assert.equal(report.stale_heartbeat, false);
    assert.match(report.summary, /scripted2 connecting/);
    g.proc.signal('SIGTERM');
    assert.equal((await g.proc.waitForExit()).code, 0);
  });

  c.it(
    'exit 1 with stale_heartbeat while the process is stopped (SIGSTOP), 0 again after SIGCONT',
    async () => {
      const g = await launch({ heartbeat_interval_ms: 100, platforms: { scripted: {} } });
      try {
        await g.proc.waitForState(g.statePath, (d) => allConnected(d), 'connected');
        assert.equal((await statusJson(g.statePath)).code, 0);
        g.proc.signal('SIGSTOP');
        // Poll status itself until the heartbeat is three intervals old.
        const stale = await waitFor(
          async () => {
            const result = await statusJson(g.statePath);
            return result.report.stale_heartbeat ? result : undefined;
          },
          'a stale heartbeat',
          10_000,
        );
        assert.equal(stale.code, 1);
        assert.equal(stale.report.running, true);
        assert.equal(stale.report.healthy, false);
        assert.equal(stale.report.exit_code, 1);
        g.proc.signal('SIGCONT');
        const fresh = await waitFor(
          async () => {
            const result = await statusJson(g.statePath);
            return result.code === 0 ? result : undefined;
          },
          'a fresh heartbeat after SIGCONT',
          10_000,
        );
        assert.equal(fresh.report.stale_heartbeat, false);
      } finally {
        g.proc.signal('SIGCONT');
      }
      g.proc.signal('SIGTERM');
      assert.equal((await g.proc.waitForExit()).code, 0);
    },
  );
  await c.done();
});

await test('status against a state file alone', async (t) => {
  t.after(killAllChildren);
  function liveDoc(pid: number, startTime: number | null): StateDocument {
    const now = new Date().toISOString();
    return {
      schema_version: 1,
      pid,
      pid_start_time: startTime,
      started_at: now,
      updated_at: now,
      heartbeat_at: now,
      heartbeat_interval_ms: 60_000,
      write_seq: 3,
      gateway: { state: 'running', since: now, reason: null, exit_code: null },
      platforms: {
        scripted: {
          state: 'connected',
          since: now,
          reconnect_attempt: 0,
          max_reconnect_attempts: null,
          last_error: null,
          last_event_at: null,
          resumable: false,
          detail: null,
        },
      },
    };
  }

  await t.test(
    'a live pid with the wrong start time is a reused pid: not running, exit 3',
    async () => {
      // This test process is alive; only pid_start_time tells it from the gateway.
      const startTime = processStartTime(process.pid);
      assert.notEqual(startTime, null);
      const right = join(root, 'pid-right.json');
      const wrong = join(root, 'pid-wrong.json');
      await writeFile(right, JSON.stringify(liveDoc(process.pid, startTime)));
      await writeFile(wrong, JSON.stringify(liveDoc(process.pid, (startTime ?? 0) + 12_345)));
      const control = await statusJson(right);
      assert.equal(control.code, 0, 'the same file with the right start time is healthy');
      const { code, report } = await statusJson(wrong);
      assert.equal(code, 3);
      assert.equal(report.running, false);
      assert.equal(report.exit_code, 3);
      assert.equal(report.state?.pid, process.pid);
    },
  );

  await t.test('a dead pid is not running, exit 3', async () => {
    const path = join(root, 'dead.json');
    // A pid above the kernel's pid_max cannot be alive.
    await writeFile(path, JSON.stringify(liveDoc(4_194_304 + 7, 1)));
    assert.equal((await statusJson(path)).code, 3);
  });

  await t.test('a missing or unreadable state file is exit 3 with the error', async () => {
    const missing = await statusJson(join(root, 'no-such-state.json'));
    assert.equal(missing.code, 3);
    assert.equal(missing.report.running, false);
    assert.equal(missing.report.state, null);
    assert.match(missing.report.error ?? '', /ENOENT/);
    const junkPath = join(root, 'junk.json');
    await writeFile(junkPath, '{"schema_version":');
    assert.equal((await statusJson(junkPath)).code, 3);
  });
});
