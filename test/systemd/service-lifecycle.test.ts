/**
 * The gateway as a systemd user service, end to end (issue 4): installed with the real CLI
 * into a REAL user manager (scripts/systemd-harness), run against the standalone fake QQ
 * server, and judged by what systemd and journald record: ActiveState, ExecMainStatus,
 * NRestarts, Result, StatusText, the state file and `journalctl -p err`.
 *
 *   start      active follows READY=1; STATUS= names each adapter's state; $STATE_DIRECTORY
 *   stop       exit 0, state file `stopped`, no restart
 *   fatal      reconnects refused until the budget is spent: `fatal` persisted, exit 1,
 *              restarted, the err line carries the code; measures refusal → exit → READY
 *   watchdog   a SIGSTOPped gateway is killed after WatchdogSec and restarted
 *   config     an unknown key: exit 78, no restart, unit `failed`, the journal names the key
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  FakeQQProcess,
  gatewayCli,
  gatewayConfig,
  journalUntil,
  pollState,
  readStateDoc,
  removeGatewayUnit,
  reportMetric,
  showUs,
  signalGateway,
  timestampMs,
  writeDropIn,
  scenarioSkipReason,
} from '../support/service-scenario.js';
import { parseLogLine } from '../support/log-lines.js';
import { SystemdHarness, type JournalEntry } from '../support/systemd-harness.js';

const skip = await scenarioSkipReason();

/** Bounds for one wait; the file as a whole stays well under a minute. */
const WAIT_MS = 15_000;
const SECRET = `hgw-e2e-secret-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
const PROPS = [
  'ActiveState',
  'SubState',
  'Result',
  'ExecMainCode',
  'ExecMainStatus',
  'NRestarts',
  'StatusText',
  'MainPID',
  'ExecMainStartTimestamp',
  'ExecMainExitTimestamp',
  'ActiveEnterTimestamp',
] as const;
type Props = Record<(typeof PROPS)[number], string>;

/**
 * The gateway's own lines, parsed, with the entry they came from: under journald the
 * default `log_format` (auto) writes text lines, read back into the JSON lines' shape.
 */
function gatewayLines(
  entries: JournalEntry[],
): Array<{ entry: JournalEntry; line: Record<string, unknown> }> {
  return entries.flatMap((entry) => {
    if (entry.fromManager) return [];
    const line = parseLogLine(entry.message);
    return line ? [{ entry, line }] : [];
  });
}

await test(
  'the gateway under a real user manager and journald',
  { skip, timeout: 120_000 },
  async (t) => {
    const harness = await SystemdHarness.start();
    const fakes: FakeQQProcess[] = [];
    const units: string[] = [];
    t.after(async () => {
      for (const unit of units) await removeGatewayUnit(harness, unit);
      for (const fake of fakes) await fake.stop();
      await harness.stop();
    });
    const startFake = async (args: string[] = []): Promise<FakeQQProcess> => {
      const fake = await FakeQQProcess.start(SECRET, args);
      fakes.push(fake);
      return fake;
    };
    const newUnit = (prefix: string): string => {
      const unit = harness.uniqueUnitName(prefix);
      units.push(unit);
      return unit;
    };
    const show = (unit: string): Promise<Props> => showUs(harness, unit, PROPS);
    const waitShow = (unit: string, ok: (p: Props) => boolean, what: string): Promise<Props> =>
      harness.waitFor(
        async () => {
          const p = await show(unit);
          return ok(p) && p;
        },
        WAIT_MS,
        { what: `${unit}: ${what}` },
      );
    const writeConfig = async (name: string, text: string): Promise<string> => {
      const path = join(harness.stateDir, name);
      await writeFile(path, text, { mode: 0o600 });
      return path;
    };
    const install = async (config: string, unit: string, now: boolean): Promise<void> => {
      const args = ['install', '--config', config, '--unit', unit, ...(now ? ['--now'] : [])];
      const result = await gatewayCli(harness, args);
      assert.equal(result.code, 0, `install: ${result.stderr}${result.stdout}`);
      assert.match(
        result.stdout,
        new RegExp(`installed ${harness.unitDir}/${unit.replaceAll('.', '\\.')}`),
      );
    };
    // The whole manager's state dir: units of this file share StateDirectory=hermes-gateway.
    const stateDirectoryCandidates = [
      join(harness.env.XDG_CONFIG_HOME!, 'hermes-gateway', 'gateway_state.json'),
      join(harness.env.HOME!, '.local', 'state', 'hermes-gateway', 'gateway_state.json'),
    ];

    // One unit for start and stop: the stop test continues from where start left it.
    const startUnit = newUnit('hgw-start');
    let startStatePath = '';

    await t.test(
      "start: active follows READY=1, and STATUS= names each adapter's state",
      async () => {
        // Hello held back 1.5 s: READY=1 (every adapter started) comes long before `connected`.
        const fake = await startFake(['--hello-delay-ms', '1500']);
        const config = await writeConfig(
          'start.yaml',
          gatewayConfig({ fake, secret: { env: 'QQ_SECRET' } }),
        );
        await writeDropIn(harness, startUnit, [
          'RestartSec=100ms',
          `Environment=QQ_SECRET=${SECRET}`,
        ]);
        await install(config, startUnit, false);
        assert.equal(
          (await show(startUnit)).ActiveState,
          'inactive',
          'install without --now starts nothing',
        );

        const begin = await harness.systemctl(['start', '--no-block', startUnit]);
        assert.equal(begin.code, 0, begin.stderr);
        const seen: string[] = [];
        const active = await waitShow(
          startUnit,
          (p) => {
            if (seen.at(-1) !== p.ActiveState) seen.push(p.ActiveState);
            return p.ActiveState === 'active';
          },
          'active',
        );
        // Node loads for a good 100 ms before it can send READY=1: systemd shows `activating` first.
        assert.ok(seen.includes('activating'), `states seen: ${seen.join(' → ')}`);
        assert.equal(active.SubState, 'running');
        assert.match(active.StatusText, /^running: qqbot (starting|connecting|connected)\b/);
        assert.ok(
          timestampMs(active.ActiveEnterTimestamp) >= timestampMs(active.ExecMainStartTimestamp),
        );

        const connected = await waitShow(
          startUnit,
          (p) => /\bqqbot connected\b/.test(p.StatusText),
          'StatusText with qqbot connected',
        );
        assert.equal(connected.StatusText, 'running: qqbot connected');
        assert.equal(connected.MainPID, active.MainPID);

        // The journal orders it: the manager's "Started" (READY=1) well before the session's READY.
        const entries = await journalUntil(
          harness,
          startUnit,
          (all) => gatewayLines(all).some((l) => l.line.to === 'connected'),
          'the session READY line',
        );
        const started = entries.find((e) => e.fromManager && e.message.startsWith('Started '));
        const lines = gatewayLines(entries);
        const toConnected = lines.find(
          (l) => l.line.platform === 'qqbot' && l.line.to === 'connected',
        );
        assert.ok(started && toConnected, entries.map((e) => e.message).join('\n'));
        const readyToConnectedMs = (toConnected.entry.realtimeUs - started.realtimeUs) / 1000;
        assert.ok(
          readyToConnectedMs >= 1_000,
          `READY=1 only ${readyToConnectedMs} ms before connected`,
        );
        assert.equal(toConnected.entry.identifier, 'hermes-gateway');
        assert.equal(toConnected.entry.pid, Number(active.MainPID));

        // No state_file in the config: the unit's StateDirectory= ($STATE_DIRECTORY) holds it.
        const boot = lines.find((l) => l.line.msg === 'starting hermes-gateway');
        startStatePath = String(boot?.line.state_file);
        assert.ok(stateDirectoryCandidates.includes(startStatePath), startStatePath);
        const doc = readStateDoc(startStatePath);
        assert.equal(doc?.pid, Number(active.MainPID));
        assert.equal(doc?.gateway.state, 'running');
        assert.equal(doc?.platforms.qqbot?.state, 'connected');
        assert.equal(statSync(startStatePath).mode & 0o777, 0o600);

        // `status` finds the same file from a shell without $STATE_DIRECTORY, and calls it healthy.
        const status = await gatewayCli(harness, ['status', '--json', '--config', config]);
        assert.equal(status.code, 0, status.stdout + status.stderr);
        assert.equal(
          (JSON.parse(status.stdout) as { state_file: string }).state_file,
          startStatePath,
        );
      },
    );

    await t.test('stop: exit 0, state file `stopped`, no restart', async () => {
      const before = await show(startUnit);
      assert.equal(before.ActiveState, 'active', 'needs the started unit');
      const stop = await harness.systemctl(['stop', startUnit]);
      assert.equal(stop.code, 0, stop.stderr);
      const p = await show(startUnit);
      assert.deepEqual(
        [p.ActiveState, p.SubState, p.Result, p.ExecMainCode, p.ExecMainStatus, p.NRestarts],
        ['inactive', 'dead', 'success', '1', '0', '0'],
      );
      const doc = readStateDoc(startStatePath);
      assert.equal(doc?.pid, Number(before.MainPID));
      assert.equal(doc?.gateway.state, 'stopped');
      assert.equal(doc?.gateway.exit_code, 0);
      assert.equal(doc?.platforms.qqbot?.state, 'stopped');
      // Several RestartSec= later, still down.
      await delay(500);
      const later = await show(startUnit);
      assert.deepEqual([later.ActiveState, later.NRestarts], ['inactive', '0']);
      const errors = await harness.journalEntries(startUnit, { priority: 'err' });
      assert.deepEqual(
        errors.map((e) => e.message),
        [],
      );
    });

    await t.test(
      'reconnects refused until the budget is spent: fatal, exit 1, restarted',
      async () => {
        const fake = await startFake();
        const unit = newUnit('hgw-fatal');
        const statePath = join(harness.stateDir, 'fatal-state.json');
        const config = await writeConfig(
          'fatal.yaml',
          gatewayConfig({
            fake,
            secret: { env: 'QQ_SECRET' },
            stateFile: statePath,
            reconnect: { backoff_ms: [100], max_attempts: 3 },
          }),
        );
        // 300 ms: long enough to read the failed run's ExecMainStatus before the restart resets it.
        const restartSecMs = 300;
        await writeDropIn(harness, unit, [
          `RestartSec=${restartSecMs}ms`,
          `Environment=QQ_SECRET=${SECRET}`,
        ]);
        await install(config, unit, true);
        const first = await waitShow(
          unit,
          (p) => p.StatusText === 'running: qqbot connected',
          'connected',
        );
        assert.equal(first.NRestarts, '0');
        const firstPid = Number(first.MainPID);

        // The platform goes away (the socket is cut) and refuses every reconnect (503).
        await fake.control('refuse', { gateway: true });
        await fake.control('terminate');
        const fatal = await pollState(
          statePath,
          (d) => d.gateway.state === 'fatal',
          WAIT_MS,
          'fatal',
        );
        // Back in service, so the restarted gateway connects (and is not refused into a loop).
        await fake.control('refuse', { on: false });
        const refusals = (await fake.state()).gatewayRequests.filter((r) => r.status === 503);

        // The failed run, caught during RestartSec= (auto-restart) before systemd starts anew.
        const failed = await waitShow(
          unit,
          (p) => p.MainPID !== String(firstPid),
          'main process gone',
        );
        assert.deepEqual(
          [
            failed.ActiveState,
            failed.SubState,
            failed.Result,
            failed.ExecMainCode,
            failed.ExecMainStatus,
          ],
          ['activating', 'auto-restart', 'exit-code', '1', '1'],
        );

        assert.equal(fatal.pid, firstPid);
        assert.equal(fatal.gateway.exit_code, 1);
        assert.match(fatal.gateway.reason ?? '', /GW_ERR_QQ_RECONNECT_EXHAUSTED/);
        const qq = fatal.platforms.qqbot;
        assert.equal(qq?.state, 'fatal');
        assert.equal(qq?.last_error?.code, 'GW_ERR_QQ_RECONNECT_EXHAUSTED');
        assert.equal(qq?.last_error?.retryable, true);
        assert.equal(refusals.length, 3, 'one refusal per attempt of the budget');

        const again = await waitShow(
          unit,
          (p) => p.StatusText === 'running: qqbot connected' && Number(p.NRestarts) >= 1,
          'restarted and connected again',
        );
        assert.notEqual(again.MainPID, String(firstPid));
        assert.equal(again.ActiveState, 'active');

        const errors = await journalUntil(
          harness,
          unit,
          (all) => gatewayLines(all).some((l) => l.line.code === 'GW_ERR_QQ_RECONNECT_EXHAUSTED'),
          'the fatal line',
          { priority: 'err' },
        );
        const fatalLine = gatewayLines(errors).find(
          (l) => l.line.code === 'GW_ERR_QQ_RECONNECT_EXHAUSTED' && l.entry.pid === firstPid,
        );
        assert.ok(fatalLine, errors.map((e) => e.message).join('\n'));
        assert.equal(fatalLine.line.exit_code, 1);
        assert.equal(fatalLine.entry.identifier, 'hermes-gateway');
        assert.match(String(fatalLine.line.msg), /^fatal: qqbot: GW_ERR_QQ_RECONNECT_EXHAUSTED/);
        await journalUntil(
          harness,
          unit,
          (all) =>
            all.some(
              (e) =>
                e.fromManager &&
                /Main process exited, code=exited, status=1\/FAILURE/.test(e.message),
            ),
          'the exit',
        );

        // Measured: the fake's last refusal → the process's exit → the restart's READY=1.
        const lastRefusalMs = Math.max(...refusals.map((r) => r.at));
        const exitMs = timestampMs(failed.ExecMainExitTimestamp);
        const readyMs = timestampMs(again.ActiveEnterTimestamp);
        const execMs = timestampMs(again.ExecMainStartTimestamp);
        const refusalToExit = exitMs - lastRefusalMs;
        reportMetric('last_refusal_to_exit', refusalToExit, {
          fatal_persisted_after_ms: Date.parse(qq.since) - lastRefusalMs,
        });
        reportMetric('exit_to_restart_ready', readyMs - exitMs, {
          restart_sec_ms: restartSecMs,
          exec_to_ready_ms: Math.round((readyMs - execMs) * 10) / 10,
        });
        // DESIGN §9: fatal → exit in under 1 s, from the event that made the adapter give up.
        assert.ok(
          refusalToExit >= 0 && refusalToExit < 1_000,
          `refusal → exit ${refusalToExit} ms`,
        );
        assert.ok(readyMs - exitMs >= restartSecMs, 'the restart waited RestartSec=');

        const stop = await harness.systemctl(['stop', unit]);
        assert.equal(stop.code, 0, stop.stderr);
      },
    );

    await t.test(
      'watchdog: a frozen gateway is killed after WatchdogSec= and restarted',
      async () => {
        const fake = await startFake();
        const unit = newUnit('hgw-watchdog');
        const statePath = join(harness.stateDir, 'watchdog-state.json');
        const config = await writeConfig(
          'watchdog.yaml',
          gatewayConfig({ fake, secret: { env: 'QQ_SECRET' }, stateFile: statePath }),
        );
        await writeDropIn(harness, unit, [
          'WatchdogSec=1s',
          'RestartSec=100ms',
          `Environment=QQ_SECRET=${SECRET}`,
        ]);
        await install(config, unit, true);
        const running = await waitShow(
          unit,
          (p) => p.StatusText === 'running: qqbot connected',
          'connected',
        );
        const frozenPid = Number(running.MainPID);
        // Pings at half the interval keep a healthy gateway alive through several periods.
        await delay(1_500);
        const healthy = await show(unit);
        assert.deepEqual(
          [healthy.MainPID, healthy.NRestarts, healthy.ActiveState],
          [running.MainPID, '0', 'active'],
        );

        const frozenAt = Date.now();
        assert.ok(signalGateway(frozenPid, 'SIGSTOP'), `SIGSTOP ${frozenPid}`);
        try {
          let sawWatchdogResult = false;
          const restarted = await waitShow(
            unit,
            (p) => {
              sawWatchdogResult ||= p.Result === 'watchdog';
              return (
                p.MainPID !== String(frozenPid) &&
                p.ActiveState === 'active' &&
                Number(p.NRestarts) >= 1
              );
            },
            'restarted after the watchdog',
          );
          const entries = await journalUntil(
            harness,
            unit,
            (all) => all.some((e) => /Main process exited, code=killed/.test(e.message)),
            'the kill',
          );
          const timeout = entries.find(
            (e) => e.fromManager && /Watchdog timeout \(limit 1s\)/.test(e.message),
          );
          assert.ok(timeout, entries.map((e) => e.message).join('\n'));
          assert.ok(
            sawWatchdogResult ||
              entries.some((e) => /Failed with result 'watchdog'/.test(e.message)),
          );
          assert.ok(
            entries.some((e) =>
              e.message.includes(`Killing process ${frozenPid} (node) with signal SIGABRT`),
            ),
          );
          assert.ok(
            entries.some((e) => /Main process exited, code=killed, status=6\/ABRT/.test(e.message)),
          );
          // The watchdog line is an error: `journalctl -p err` (and `logs -p err`) shows it.
          const errors = await harness.journalEntries(unit, { priority: 'err' });
          assert.ok(errors.some((e) => /Watchdog timeout/.test(e.message)));

          const frozenToKill = timeout.realtimeUs / 1000 - frozenAt;
          reportMetric('watchdog_freeze_to_timeout', frozenToKill, { watchdog_sec_ms: 1_000 });
          // The last ping was at most half an interval before the freeze.
          assert.ok(
            frozenToKill >= 400 && frozenToKill <= 3_000,
            `freeze → timeout ${frozenToKill} ms`,
          );
          await pollState(
            statePath,
            (d) => d.pid === Number(restarted.MainPID) && d.platforms.qqbot?.state === 'connected',
            WAIT_MS,
            'the new run connected',
          );
        } finally {
          // Normally dead already (SIGABRT + SIGCONT from systemd); never leave it stopped.
          signalGateway(frozenPid, 'SIGCONT');
        }
        const stop = await harness.systemctl(['stop', unit]);
        assert.equal(stop.code, 0, stop.stderr);
      },
    );

    await t.test(
      'config error (an unknown key): exit 78, no restart, the journal names the key',
      async () => {
        // Never contacted: the config is rejected before any adapter starts.
        const fake = fakes[0] ?? (await startFake());
        const unit = newUnit('hgw-config');
        const config = await writeConfig(
          'config-error.yaml',
          // No state_file: a gateway that cannot read its config still records why, in $STATE_DIRECTORY.
          gatewayConfig({
            fake,
            secret: { env: 'QQ_SECRET' },
            qqbot: { reconect: { max_attempts: 3 } },
          }),
        );
        await writeDropIn(harness, unit, ['RestartSec=100ms', `Environment=QQ_SECRET=${SECRET}`]);
        await install(config, unit, false);
        const start = await harness.systemctl(['start', unit]);
        assert.notEqual(start.code, 0, 'systemctl start reports the failed start');
        const p = await show(unit);
        assert.deepEqual(
          [p.ActiveState, p.SubState, p.Result, p.ExecMainCode, p.ExecMainStatus, p.NRestarts],
          ['failed', 'failed', 'exit-code', '1', '78', '0'],
        );
        await delay(500);
        const later = await show(unit);
        assert.deepEqual(
          [later.ActiveState, later.NRestarts],
          ['failed', '0'],
          'RestartPreventExitStatus=78',
        );

        const errors = await journalUntil(
          harness,
          unit,
          (all) => gatewayLines(all).some((l) => l.line.code !== undefined),
          'the config error line',
          { priority: 'err' },
        );
        const line = gatewayLines(errors).find((l) => l.line.key === 'platforms.qqbot.reconect');
        assert.ok(line, errors.map((e) => e.message).join('\n'));
        assert.equal(line.line.code, 'GW_ERR_CONFIG_INVALID');
        assert.equal(line.line.exit_code, 78);
        assert.match(String(line.line.msg), /platforms\.qqbot\.reconect: unknown key/);
        assert.match(String(line.line.msg), new RegExp(config.replaceAll('.', '\\.')));

        const statePath = stateDirectoryCandidates.find(
          (path) => readStateDoc(path)?.pid === line.entry.pid,
        );
        assert.ok(statePath, 'the failed start wrote the state file in $STATE_DIRECTORY');
        const doc = readStateDoc(statePath)!;
        assert.equal(doc.gateway.state, 'fatal');
        assert.equal(doc.gateway.exit_code, 78);
        assert.match(doc.gateway.reason ?? '', /^GW_ERR_CONFIG_INVALID: /);
      },
    );
  },
);
