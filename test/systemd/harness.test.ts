/**
 * The systemd harness itself: a real user manager starts a Type=notify unit, sees READY=1 and
 * STATUS=, restarts it on failure, and journald files its lines under the unit with their
 * syslog priority. Then stop leaves no process behind and the host's /run/systemd/system as
 * it found it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { HARNESS_SCRIPT, SystemdHarness } from '../support/systemd-harness.js';

const availability = await SystemdHarness.available();

/** True while PID runs; a zombie (exited, not yet reaped by PID 1) counts as gone. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\S+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

const SCRIPT = `#!/bin/bash
# $1: a flag file; once it exists the service fails (after removing it, so the restart lives).
set -u
echo "phase one, pid $$"
systemd-notify --ready --status="hello"
while [ ! -e "$1" ]; do sleep 0.05; done
rm -f "$1"
echo "<3>hermes-harness-probe: giving up"
exit 1
`;

const T = { timeout: 60_000, skip: availability.ok ? false : availability.reason };

await test('systemd harness', T, async (t) => {
  const hostHadRunSystemdSystem = existsSync('/run/systemd/system');
  const harness = await SystemdHarness.start();
  t.after(() => harness.stop());
  const pids: number[] = [];
  const unit = harness.uniqueUnitName('harness-probe');
  const flag = join(harness.stateDir, `${unit}.fail`);
  const script = join(harness.stateDir, `${unit}.sh`);
  await writeFile(script, SCRIPT, { mode: 0o755 });
  await harness.writeUnit(
    unit,
    [
      '[Unit]',
      'Description=hermes systemd-harness probe',
      '[Service]',
      'Type=notify',
      // systemd-notify is a child of the main process, not the main process itself.
      'NotifyAccess=all',
      `ExecStart=/bin/bash ${script} ${flag}`,
      'Restart=on-failure',
      'RestartSec=100ms',
      'TimeoutStartSec=10s',
      '',
    ].join('\n'),
  );

  await t.test('the manager runs', async (t) => {
    t.diagnostic(`mode ${harness.mode}, start took ${harness.startMs} ms`);
    const manager = await harness.systemctl(['show', '--property=SystemState', '--value']);
    assert.equal(manager.code, 0, manager.stderr);
    assert.match(manager.stdout.trim(), /^(running|degraded)$/);
    if (harness.mode === 'private') {
      pids.push(harness.managerPid!, harness.journaldPid!);
      assert.ok(alive(harness.managerPid!));
      assert.ok(alive(harness.journaldPid!));
      assert.equal(harness.createdRunSystemdSystem, false);
      // /run/systemd/system exists only inside the harness's mount namespace.
      assert.equal(existsSync('/run/systemd/system'), hostHadRunSystemdSystem);
    }
  });

  await t.test(
    'start is idempotent',
    { skip: harness.mode !== 'private' && 'an existing manager is not started by the harness' },
    () => {
      const again = spawnSync(HARNESS_SCRIPT, ['start', harness.stateDir], { encoding: 'utf8' });
      assert.equal(again.status, 0, again.stderr);
      const env = readFileSync(join(harness.stateDir, 'env'), 'utf8');
      assert.match(env, new RegExp(`HARNESS_MANAGER_PID='${harness.managerPid}'`));
    },
  );

  await t.test('a Type=notify unit becomes active with READY=1 and its STATUS=', async () => {
    const start = await harness.systemctl(['start', unit]);
    assert.equal(start.code, 0, start.stderr);
    const props = await harness.show(unit, [
      'ActiveState',
      'SubState',
      'StatusText',
      'NRestarts',
      'MainPID',
      'Result',
    ]);
    assert.deepEqual(
      { ...props, MainPID: Number(props.MainPID) > 0 },
      {
        ActiveState: 'active',
        SubState: 'running',
        StatusText: 'hello',
        NRestarts: '0',
        MainPID: true,
        Result: 'success',
      },
    );
    pids.push(Number(props.MainPID));
  });

  await t.test('exit 1 restarts it (Restart=on-failure), and it is ready again', async () => {
    const first = await harness.show(unit, ['MainPID']);
    await writeFile(flag, '');
    const props = await harness.waitFor(
      async () => {
        const p = await harness.show(unit, [
          'ActiveState',
          'SubState',
          'StatusText',
          'NRestarts',
          'MainPID',
        ]);
        return Number(p.NRestarts) >= 1 && p.ActiveState === 'active' && p;
      },
      5_000,
      { what: `${unit} restarted` },
    );
    assert.equal(props.SubState, 'running');
    assert.equal(props.StatusText, 'hello');
    assert.notEqual(props.MainPID, first.MainPID);
    pids.push(Number(props.MainPID));
  });

  await t.test(
    'journald files the unit lines with their priority: <3> shows under -p err',
    async () => {
      const errors = await harness.waitFor(
        async () => {
          const lines = await harness.journal(unit, { priority: 'err' });
          return lines.length > 0 && lines;
        },
        5_000,
        { what: 'an err line in the journal' },
      );
      // SyslogLevelPrefix= strips the "<3>" and keeps it as PRIORITY=3.
      assert.deepEqual(errors, ['hermes-harness-probe: giving up']);

      const entries = await harness.journalEntries(unit);
      const own = entries.filter((e) => !e.fromManager);
      assert.deepEqual(
        own.filter((e) => e.message.startsWith('phase one')).map((e) => e.priority),
        [6, 6],
      );
      assert.ok(
        own.some((e) => e.message === 'hermes-harness-probe: giving up' && e.priority === 3),
      );
      const manager = entries.filter((e) => e.fromManager).map((e) => e.message);
      assert.ok(
        manager.some((m) => /Scheduled restart job, restart counter is at 1/.test(m)),
        manager.join('\n'),
      );
    },
  );

  await t.test('stop leaves no process behind', async (t) => {
    const stopStarted = Date.now();
    const stop = await harness.systemctl(['stop', unit]);
    assert.equal(stop.code, 0, stop.stderr);
    const inactive = await harness.show(unit, ['ActiveState']);
    assert.equal(inactive.ActiveState, 'inactive');
    await harness.removeUnit(unit);

    const t0 = Date.now();
    await harness.stop();
    t.diagnostic(`harness stop took ${Date.now() - t0} ms (unit stop ${t0 - stopStarted} ms)`);
    await harness.stop(); // idempotent
    const survivors = pids.filter(alive);
    assert.deepEqual(survivors, []);
    assert.equal(existsSync('/run/systemd/system'), hostHadRunSystemdSystem);
    if (harness.mode === 'private') assert.equal(existsSync(harness.stateDir), false);
  });
});
