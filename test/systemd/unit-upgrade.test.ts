/**
 * Units that survive upgrades, and `doctor` on a healthy service (issue 14), under a REAL user
 * manager and journald (scripts/systemd-harness) with the standalone fake QQ server:
 *
 *   stable path  `install` run through a bin link (as `npm install -g` lays it out) writes the
 *                link into ExecStart=, not the versioned package folder behind it
 *   doctor       every check passes on the running service (exit 0; linger may only warn)
 *   stale        a unit an older template wrote: `status` warns with the refresh command,
 *                `doctor` fails `unit`; the command refreshes it and restarts it (it was
 *                running); refreshed while stopped, it stays stopped
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DoctorReport } from '../../src/cli/doctor.js';
import {
  CLI,
  FakeQQProcess,
  gatewayConfig,
  readStateDoc,
  removeGatewayUnit,
  scenarioSkipReason,
} from '../support/service-scenario.js';
import { SystemdHarness, type CommandResult } from '../support/systemd-harness.js';

const skip = await scenarioSkipReason();
const WAIT_MS = 20_000;
const SECRET = `hgw-upgrade-secret-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;

await test(
  'install through a bin link, doctor on a healthy service, refresh of a stale unit',
  { skip, timeout: 180_000 },
  async (t) => {
    const harness = await SystemdHarness.start();
    let fake: FakeQQProcess | null = null;
    const unit = harness.uniqueUnitName('hgw-upgrade');
    t.after(async () => {
      await removeGatewayUnit(harness, unit);
      await fake?.stop();
      await harness.stop();
    });
    fake = await FakeQQProcess.start(SECRET);
    // npm's global layout: <prefix>/bin/hermes-gateway -> ../lib/node_modules/.../main.js.
    const bin = join(harness.stateDir, 'prefix', 'bin', 'hermes-gateway');
    await mkdir(join(harness.stateDir, 'prefix', 'bin'), { recursive: true });
    await symlink(CLI, bin);
    const cli = (args: readonly string[]): Promise<CommandResult> =>
      harness.exec(process.execPath, [bin, ...args], { timeoutMs: 60_000 });

    const stateDir = join(harness.stateDir, 'gateway-state');
    await mkdir(stateDir, { mode: 0o700 });
    const statePath = join(stateDir, 'gateway_state.json');
    const secretFile = join(harness.stateDir, 'qq-secret');
    await writeFile(secretFile, SECRET, { mode: 0o600 });
    const config = join(harness.stateDir, 'upgrade.yaml');
    await writeFile(
      config,
      gatewayConfig({ fake, secret: { file: secretFile }, stateFile: statePath }),
      { mode: 0o600 },
    );
    const unitPath = join(harness.unitDir, unit);
    const show = (): Promise<Record<'ActiveState' | 'MainPID' | 'StatusText', string>> =>
      harness.show(unit, ['ActiveState', 'MainPID', 'StatusText']);
    const connected = (what: string): Promise<{ MainPID: string }> =>
      harness.waitFor(
        async () => {
          const s = await show();
          return s.StatusText === 'running: qqbot connected' && s;
        },
        WAIT_MS,
        { what },
      );
    const doctor = async (): Promise<{ code: number; report: DoctorReport }> => {
      const result = await cli(['doctor', '--json', '--config', config, '--unit', unit]);
      return { code: result.code, report: JSON.parse(result.stdout) as DoctorReport };
    };

    await t.test('install through the bin link writes the link into ExecStart=', async () => {
      const install = await cli(['install', '--config', config, '--unit', unit, '--now']);
      assert.equal(install.code, 0, install.stderr);
      const text = await readFile(unitPath, 'utf8');
      assert.ok(
        text.includes(`\nExecStart=${process.execPath} ${bin} run --config ${config}\n`),
        text,
      );
      assert.match(text, /^# hermes-gateway-unit-template: 2$/m);
      await connected('connected through the bin link');
    });

    await t.test('doctor: every check passes on the running service', async () => {
      const { code, report } = await doctor();
      const notOk = report.checks.filter((c) => c.status !== 'ok' && c.id !== 'linger');
      assert.deepEqual(notOk, [], JSON.stringify(report.checks, null, 2));
      assert.equal(code, 0);
      assert.deepEqual([report.ok, report.problems], [true, []]);
      // The credential lock is held, by the running gateway: that is fine.
      const pid = readStateDoc(statePath)?.pid;
      const lock = report.checks.find((c) => c.id === 'credential-lock');
      assert.ok(
        lock?.message.endsWith(`1 held by the running gateway (pid ${pid})`),
        lock?.message,
      );
    });

    const makeStale = async (): Promise<void> => {
      // What the version before template versions wrote for this install.
      const text = await readFile(unitPath, 'utf8');
      await writeFile(
        unitPath,
        text
          .split('\n')
          .filter((line, i) => i === 0 || !line.startsWith('# hermes-gateway-'))
          .join('\n'),
      );
      assert.equal((await harness.systemctl(['daemon-reload'])).code, 0);
    };

    await t.test(
      'a stale unit: status warns, doctor fails `unit`, the fix restarts it',
      async () => {
        await makeStale();
        const status = await cli(['status', '--config', config, '--unit', unit]);
        assert.equal(status.code, 0, 'the gateway itself is healthy');
        const refresh = `hermes-gateway install --force --config ${config} --unit ${unit}`;
        assert.match(
          status.stderr,
          /^warning GW_ERR_UNIT_STALE: .*template 1, this version writes 2/m,
        );
        assert.ok(status.stderr.includes(refresh), status.stderr);
        const stale = await doctor();
        assert.equal(stale.code, 1);
        assert.deepEqual(stale.report.problems, ['unit']);
        assert.equal(stale.report.checks.find((c) => c.id === 'unit')?.fix, refresh);

        const before = await show();
        const refreshed = await cli(refresh.split(' ').slice(1));
        assert.equal(refreshed.code, 0, refreshed.stderr);
        assert.match(
          refreshed.stdout,
          new RegExp(`^restarted ${unit.replaceAll('.', '\\.')} \\(it was running\\)$`, 'm'),
        );
        const after = await connected('connected after the refresh');
        assert.notEqual(after.MainPID, before.MainPID, 'restarted');
        assert.equal(readStateDoc(statePath)?.gateway.state, 'running');
        assert.equal((await doctor()).code, 0);
        const quiet = await cli(['status', '--config', config, '--unit', unit]);
        assert.ok(!quiet.stderr.includes('GW_ERR_UNIT_STALE'), quiet.stderr);
      },
    );

    await t.test('refreshed while stopped, it stays stopped', async () => {
      assert.equal((await harness.systemctl(['stop', unit])).code, 0);
      await makeStale();
      const refreshed = await cli(['install', '--force', '--config', config, '--unit', unit]);
      assert.equal(refreshed.code, 0, refreshed.stderr);
      assert.doesNotMatch(refreshed.stdout, /restarted/);
      assert.equal((await show()).ActiveState, 'inactive');
      assert.equal(readStateDoc(statePath)?.gateway.state, 'stopped');
      const unitCheck = (await doctor()).report.checks.find((c) => c.id === 'unit');
      assert.equal(unitCheck?.status, 'ok');
    });
  },
);
