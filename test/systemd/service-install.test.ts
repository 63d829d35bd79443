/**
 * The CLI's service commands and systemd credentials, end to end (issue 4), against a REAL
 * user manager and journald (scripts/systemd-harness) and the standalone fake QQ server:
 *
 *   credentials  LoadCredential= read through $CREDENTIALS_DIRECTORY (client_secret_credential)
 *                connects; the secret is in no journal line (even at debug) and not in the state
 *   rejected     a wrong secret from SetCredential=: exit 78, no restart, unit `failed`;
 *                `hermes-gateway logs -p err` prints the fatal line
 *   install      refuses a foreign unit (GW_ERR_UNIT_FOREIGN) unless --force; what it writes
 *                passes `systemd-analyze --user verify`; `uninstall` stops, disables, removes
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { UNIT_MARKER } from '../../src/systemd/install.js';
import {
  CLI,
  FakeQQProcess,
  gatewayCli,
  gatewayConfig,
  journalUntil,
  readStateDoc,
  removeGatewayUnit,
  writeDropIn,
  scenarioSkipReason,
} from '../support/service-scenario.js';
import { parseLogLine } from '../support/log-lines.js';
import { SystemdHarness } from '../support/systemd-harness.js';

const skip = await scenarioSkipReason();

const WAIT_MS = 15_000;
const SECRET = `hgw-e2e-secret-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
const WRONG_SECRET = `hgw-wrong-secret-${Math.random().toString(36).slice(2, 10)}`;
const PROPS = [
  'ActiveState',
  'SubState',
  'Result',
  'ExecMainStatus',
  'NRestarts',
  'StatusText',
  'MainPID',
  'UnitFileState',
  'LoadState',
] as const;

await test(
  'service commands and credentials under a real user manager',
  { skip, timeout: 120_000 },
  async (t) => {
    const harness = await SystemdHarness.start();
    const units: string[] = [];
    let fake: FakeQQProcess | null = null;
    t.after(async () => {
      for (const unit of units) await removeGatewayUnit(harness, unit);
      await fake?.stop();
      await harness.stop();
    });
    fake = await FakeQQProcess.start(SECRET);
    const qq = fake;
    const newUnit = (prefix: string): string => {
      const unit = harness.uniqueUnitName(prefix);
      units.push(unit);
      return unit;
    };
    const show = (unit: string): Promise<Record<(typeof PROPS)[number], string>> =>
      harness.show(unit, PROPS);
    const writeConfig = async (name: string, text: string): Promise<string> => {
      const path = join(harness.stateDir, name);
      await writeFile(path, text, { mode: 0o600 });
      return path;
    };
    /** Every line the unit ever logged (gateway and manager), all priorities. */
    const wholeJournal = async (unit: string): Promise<string> =>
      // Complete: up to the gateway's last line, written just before it exited.
      (
        await journalUntil(
          harness,
          unit,
          (all) => all.some((e) => parseLogLine(e.message)?.msg === 'gateway ended'),
          'the last line',
        )
      )
        .map((e) => e.message)
        .join('\n');
    /** The secret never leaves its source: not in the journal, not in the state file. */
    const assertNoSecret = async (
      unit: string,
      statePath: string,
      secret: string,
    ): Promise<void> => {
      const journal = await wholeJournal(unit);
      assert.ok(journal.length > 0);
      assert.ok(!journal.includes(secret), 'the secret is in the journal');
      const state = readFileSync(statePath, 'utf8');
      assert.ok(!state.includes(secret), 'the secret is in the state file');
    };

    const rejectedUnit = newUnit('hgw-rejected');

    await t.test(
      'LoadCredential=: client_secret_credential reads $CREDENTIALS_DIRECTORY',
      async () => {
        const unit = newUnit('hgw-credential');
        const secretFile = join(harness.stateDir, 'qq-secret');
        await writeFile(secretFile, `${SECRET}\n`, { mode: 0o600 });
        const statePath = join(harness.stateDir, 'credential-state.json');
        const config = await writeConfig(
          'credential.yaml',
          gatewayConfig({
            fake: qq,
            secret: { credential: 'qq_secret' },
            stateFile: statePath,
            // Debug too: not even the most talkative level may print the secret.
            logLevel: 'debug',
          }),
        );
        await writeDropIn(harness, unit, [`LoadCredential=qq_secret:${secretFile}`]);
        const install = await gatewayCli(harness, [
          'install',
          '--config',
          config,
          '--unit',
          unit,
          '--now',
        ]);
        assert.equal(install.code, 0, install.stderr);
        const p = await harness.waitFor(
          async () => {
            const s = await show(unit);
            return s.StatusText === 'running: qqbot connected' && s;
          },
          WAIT_MS,
          { what: 'connected with the credential' },
        );
        // The gateway read the secret where systemd put it, and the fake accepted it.
        const environ = readFileSync(`/proc/${p.MainPID}/environ`, 'utf8').split('\0');
        const credentials = environ.find((v) => v.startsWith('CREDENTIALS_DIRECTORY='))?.slice(22);
        assert.ok(credentials, 'CREDENTIALS_DIRECTORY is set');
        // The credential is mounted in the manager's mount namespace: look through the gateway's root.
        const inside = (pid: number | string | undefined): string =>
          `/proc/${pid}/root${join(credentials, 'qq_secret')}`;
        assert.equal(readFileSync(inside(p.MainPID), 'utf8'), `${SECRET}\n`);
        assert.ok((await qq.state()).counts.tokenRequests >= 1);
        assert.equal(readStateDoc(statePath)?.platforms.qqbot?.state, 'connected');

        const stop = await harness.systemctl(['stop', unit]);
        assert.equal(stop.code, 0, stop.stderr);
        assert.equal(readStateDoc(statePath)?.gateway.state, 'stopped');
        await assertNoSecret(unit, statePath, SECRET);
        // systemd removes the credentials once the unit is down.
        assert.ok(harness.managerPid !== undefined);
        assert.ok(!existsSync(inside(harness.managerPid)));
      },
    );

    await t.test(
      'SetCredential= with a wrong secret: exit 78, no restart, unit failed',
      async () => {
        const statePath = join(harness.stateDir, 'rejected-state.json');
        const config = await writeConfig(
          'rejected.yaml',
          gatewayConfig({
            fake: qq,
            secret: { credential: 'qq_secret' },
            stateFile: statePath,
            logLevel: 'debug',
          }),
        );
        await writeDropIn(harness, rejectedUnit, [
          'RestartSec=100ms',
          `SetCredential=qq_secret:${WRONG_SECRET}`,
        ]);
        const install = await gatewayCli(harness, [
          'install',
          '--config',
          config,
          '--unit',
          rejectedUnit,
        ]);
        assert.equal(install.code, 0, install.stderr);
        // READY=1 (adapters started) usually precedes the token's refusal, so the start job may
        // well succeed: the unit's fate is in its properties, not in this exit code.
        await harness.systemctl(['start', rejectedUnit]);
        const failed = await harness.waitFor(
          async () => {
            const s = await show(rejectedUnit);
            return s.ActiveState === 'failed' && s;
          },
          WAIT_MS,
          { what: 'failed' },
        );
        assert.deepEqual(
          [failed.SubState, failed.Result, failed.ExecMainStatus, failed.NRestarts],
          ['failed', 'exit-code', '78', '0'],
        );
        await delay(500);
        const later = await show(rejectedUnit);
        assert.deepEqual(
          [later.ActiveState, later.NRestarts],
          ['failed', '0'],
          'RestartPreventExitStatus=78',
        );

        const doc = readStateDoc(statePath);
        assert.equal(doc?.gateway.state, 'fatal');
        assert.equal(doc?.gateway.exit_code, 78);
        assert.equal(doc?.platforms.qqbot?.last_error?.code, 'GW_ERR_QQ_CREDENTIALS_REJECTED');
        assert.equal(doc?.platforms.qqbot?.last_error?.retryable, false);
        const errors = (
          await journalUntil(
            harness,
            rejectedUnit,
            (all) => all.some((e) => e.message.includes('GW_ERR_QQ_CREDENTIALS_REJECTED')),
            'the fatal line',
            { priority: 'err' },
          )
        ).map((e) => e.message);
        assert.ok(
          errors.some((m) => {
            const line = parseLogLine(m);
            return line?.code === 'GW_ERR_QQ_CREDENTIALS_REJECTED' && line.exit_code === 78;
          }),
          errors.join('\n'),
        );
        await assertNoSecret(rejectedUnit, statePath, WRONG_SECRET);
      },
    );

    await t.test('`logs -p err --unit X` prints the fatal line and nothing below err', async () => {
      const logs = await gatewayCli(harness, ['logs', '-p', 'err', '--unit', rejectedUnit]);
      assert.equal(logs.code, 0, logs.stderr);
      const lines = logs.stdout.split('\n').filter((l) => l.trim() !== '');
      const fatal = lines.find((l) =>
        /hermes-gateway\[\d+\]: error qqbot fatal: qqbot: GW_ERR_QQ_CREDENTIALS_REJECTED: .* \(GW_ERR_QQ_CREDENTIALS_REJECTED\)/.test(
          l,
        ),
      );
      assert.ok(fatal, logs.stdout);
      assert.ok(!logs.stdout.includes('starting hermes-gateway'), 'an info line passed -p err');
      // Without -p, the info lines are there too.
      const all = await gatewayCli(harness, ['logs', '--unit', rejectedUnit, '-n', '1000']);
      assert.equal(all.code, 0, all.stderr);
      assert.match(all.stdout, /starting hermes-gateway/);
      assert.ok(!all.stdout.includes(WRONG_SECRET));
    });

    await t.test(
      'uninstall of a failed unit leaves nothing behind, not even the failure',
      async () => {
        assert.equal((await show(rejectedUnit)).ActiveState, 'failed', 'needs the failed unit');
        const removed = await gatewayCli(harness, ['uninstall', '--unit', rejectedUnit]);
        assert.equal(removed.code, 0, removed.stderr);
        assert.ok(!existsSync(join(harness.unitDir, rejectedUnit)));
        const gone = await show(rejectedUnit);
        assert.deepEqual([gone.ActiveState, gone.LoadState], ['inactive', 'not-found']);
        const failedUnits = await harness.systemctl([
          'list-units',
          '--failed',
          '--all',
          '--plain',
          '--no-legend',
        ]);
        assert.ok(!failedUnits.stdout.includes(rejectedUnit), failedUnits.stdout);
      },
    );

    await t.test(
      'install refuses a foreign unit, --force replaces it, uninstall removes it',
      async () => {
        const unit = newUnit('hgw-install');
        const path = join(harness.unitDir, unit);
        const foreign = '[Unit]\nDescription=not ours\n[Service]\nExecStart=/bin/true\n';
        await writeFile(path, foreign);
        const secretFile = join(harness.stateDir, 'install-secret');
        await writeFile(secretFile, SECRET, { mode: 0o600 });
        const config = await writeConfig(
          'install.yaml',
          gatewayConfig({
            fake: qq,
            secret: { file: secretFile },
            stateFile: join(harness.stateDir, 'install-state.json'),
          }),
        );

        const refused = await gatewayCli(harness, [
          'install',
          '--config',
          config,
          '--unit',
          unit,
          '--now',
        ]);
        assert.equal(refused.code, 1);
        assert.match(refused.stderr, /^error GW_ERR_UNIT_FOREIGN: /);
        assert.equal(await readFile(path, 'utf8'), foreign, 'the foreign unit is untouched');
        const keep = await gatewayCli(harness, ['uninstall', '--unit', unit]);
        assert.equal(keep.code, 1);
        assert.match(keep.stderr, /^error GW_ERR_UNIT_FOREIGN: /);
        assert.ok(existsSync(path));

        const forced = await gatewayCli(harness, [
          'install',
          '--config',
          config,
          '--unit',
          unit,
          '--now',
          '--force',
        ]);
        assert.equal(forced.code, 0, forced.stderr);
        assert.match(forced.stdout, new RegExp(`started ${unit.replaceAll('.', '\\.')}`));
        const text = await readFile(path, 'utf8');
        assert.ok(text.startsWith(`${UNIT_MARKER}\n`));
        assert.ok(
          text.includes(`ExecStart=${process.execPath} ${CLI} run --config ${config}\n`),
          text,
        );
        const running = await show(unit);
        assert.deepEqual([running.ActiveState, running.UnitFileState], ['active', 'enabled']);
        const wants = join(harness.unitDir, 'default.target.wants', unit);
        assert.ok(existsSync(wants), 'enabled: WantedBy=default.target');

        // What install wrote passes systemd's own checks (no output at all: not even a warning).
        const verify = await harness.exec('systemd-analyze', ['--user', 'verify', path]);
        assert.deepEqual(
          { code: verify.code, output: (verify.stdout + verify.stderr).trim() },
          { code: 0, output: '' },
        );

        // Installing again over its own unit needs no --force.
        const again = await gatewayCli(harness, ['install', '--config', config, '--unit', unit]);
        assert.equal(again.code, 0, again.stderr);

        const removed = await gatewayCli(harness, ['uninstall', '--unit', unit]);
        assert.equal(removed.code, 0, removed.stderr);
        assert.equal(removed.stdout.trim(), `removed ${path}`);
        assert.ok(!existsSync(path));
        assert.ok(!existsSync(wants), 'disabled');
        const gone = await show(unit);
        assert.deepEqual([gone.ActiveState, gone.LoadState], ['inactive', 'not-found']);
        const stopped = readStateDoc(join(harness.stateDir, 'install-state.json'));
        assert.equal(stopped?.gateway.state, 'stopped', 'uninstall stopped it cleanly');

        const nothing = await gatewayCli(harness, ['uninstall', '--unit', unit]);
        assert.equal(nothing.code, 0);
        assert.equal(nothing.stdout.trim(), `${unit} is not installed`);
      },
    );
  },
);
