/**
 * A global install on a fresh machine without libsystemd-dev (issue 14): the packed tarball
 * is installed with `npm install -g --prefix <tmp>` (dependencies from the npm registry, native
 * modules built from source), ONCE for the whole file, with systemd's headers hidden (a tmpfs
 * over /usr/include/systemd in a private mount namespace), so sd-notify's optional build
 * fails as it would there. Then, from that prefix: `--version`, `demo`, `check`; `run` under
 * NOTIFY_SOCKET fails fast with GW_ERR_NOTIFY_UNAVAILABLE (78); `doctor` names the addon; and,
 * under the systemd harness, the unit that install writes points at <prefix>/bin, fails with
 * 78 as Type=notify and runs connected with the documented Type=simple fallback.
 *
 * Slow by nature (better-sqlite3's SQLite compiles from source: ~2 min on an idle 2-core VM,
 * far more on a loaded one), so the one install is shared by every case.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DoctorReport } from '../../src/cli/doctor.js';
import { packProject, REPO, runCommand, type CommandOutcome } from '../support/package.js';
import {
  FakeQQProcess,
  gatewayConfig,
  journalUntil,
  readStateDoc,
  removeGatewayUnit,
  scenarioSkipReason,
  writeDropIn,
} from '../support/service-scenario.js';
import { sandboxEnv, scratchRoot } from '../support/spawn-gateway.js';
import { SystemdHarness } from '../support/systemd-harness.js';

/** The install's bound: generous, the build competes with every other test for the CPU. */
const INSTALL_TIMEOUT_MS = 20 * 60_000;
const CLI_TIMEOUT_MS = 30_000;
const SECRET = `hgw-global-secret-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;

const root = await scratchRoot('hgw-global-');
const version = (
  JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }
).version;
const SYSTEMD_HEADER = '/usr/include/systemd/sd-daemon.h';
const canHide =
  process.getuid?.() === 0 &&
  spawnSync('unshare', ['--mount', 'true'], { stdio: 'ignore' }).status === 0;
/** How this machine is made to lack libsystemd-dev for the install. */
const without = !existsSync(SYSTEMD_HEADER)
  ? 'none needed: libsystemd-dev is not installed'
  : canHide
    ? 'headers hidden by a tmpfs over /usr/include/systemd'
    : 'not root: sd-notify left out with --omit=optional';

const prefix = join(root, 'prefix');
const bin = join(prefix, 'bin', 'hermes-gateway');
const pkgDir = join(prefix, 'lib', 'node_modules', 'hermes-gateway');
let installed: CommandOutcome | null = null;

/** `<prefix>/bin/hermes-gateway ARGS` with a sandboxed HOME (no user manager unless `env`). */
function cli(args: readonly string[], env?: NodeJS.ProcessEnv): Promise<CommandOutcome> {
  return runCommand(bin, args, {
    cwd: root,
    env: env ?? sandboxEnv(root),
    timeoutMs: CLI_TIMEOUT_MS,
  });
}

await test(
  `npm install -g of the tarball succeeds without libsystemd-dev (${without})`,
  { timeout: INSTALL_TIMEOUT_MS + 240_000 },
  async (t) => {
    const packed = await packProject(root);
    await mkdir(prefix);
    const npm = [
      'install',
      '--global',
      '--prefix',
      prefix,
      // Tarballs from the local cache when it has them (CI's `npm ci` filled it); else the registry.
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      ...(without.startsWith('not root') ? ['--omit=optional'] : []),
      packed.tarball,
    ];
    const hide = 'mount -t tmpfs -o size=1m,mode=755 none /usr/include/systemd && exec npm "$@"';
    installed = without.startsWith('headers')
      ? await runCommand(
          'unshare',
          ['--mount', '--propagation', 'private', 'sh', '-c', hide, 'sh', ...npm],
          {
            cwd: root,
            timeoutMs: INSTALL_TIMEOUT_MS,
          },
        )
      : await runCommand('npm', npm, { cwd: root, timeoutMs: INSTALL_TIMEOUT_MS });
    assert.equal(installed.code, 0, installed.stderr);
    t.diagnostic(`npm install -g took ${Math.round(installed.durationMs / 1000)} s`);
    // npm dropped the optional addon whose build failed; the required one was built from source.
    assert.ok(!existsSync(join(pkgDir, 'node_modules', 'sd-notify')), 'sd-notify was dropped');
    assert.ok(
      existsSync(join(pkgDir, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node')),
      'better-sqlite3 was built',
    );
    // The bin link npm made is what users run, and what a unit must name.
    assert.ok(existsSync(bin));
  },
);

const needInstall = (): string | false => (installed?.code === 0 ? false : 'the install failed');

await test('--version, demo and check run from the prefix', { timeout: 120_000 }, async (t) => {
  if (needInstall()) return t.skip(needInstall() as string);
  const v = await cli(['--version']);
  assert.deepEqual([v.code, v.stdout.trim()], [0, version]);
  const demo = await cli(['demo']);
  assert.equal(demo.code, 0, demo.stderr);
  const secret = join(root, 'qq_secret');
  await writeFile(secret, 'not-a-real-secret\n', { mode: 0o600 });
  const config = join(root, 'check.yaml');
  await writeFile(
    config,
    `handler:\n  type: echo\nplatforms:\n  qqbot:\n    app_id: '102000000'\n    client_secret_file: ${secret}\n`,
  );
  const check = await cli(['check', '--config', config]);
  assert.equal(check.code, 0, check.stderr);
});

await test(
  'run under NOTIFY_SOCKET without the addon fails fast: 78, GW_ERR_NOTIFY_UNAVAILABLE',
  { timeout: 60_000 },
  async (t) => {
    if (needInstall()) return t.skip(needInstall() as string);
    const dir = join(root, 'notify');
    await mkdir(dir);
    const secret = join(dir, 'qq_secret');
    await writeFile(secret, 'not-a-real-secret\n', { mode: 0o600 });
    const statePath = join(dir, 'gateway_state.json');
    const config = join(dir, 'config.yaml');
    await writeFile(
      config,
      // An endpoint nobody answers: a gateway that went on would never connect anyway.
      `state_file: ${statePath}\nhandler:\n  type: echo\nplatforms:\n  qqbot:\n    app_id: '102000001'\n    client_secret_file: ${secret}\n    token_url: http://127.0.0.1:9/token\n    api_base: http://127.0.0.1:9\n`,
    );
    const run = await cli(
      ['run', '--config', config],
      sandboxEnv(root, { NOTIFY_SOCKET: join(dir, 'notify.sock') }),
    );
    assert.equal(run.code, 78, run.stdout + run.stderr);
    assert.match(run.stdout, /"code":"GW_ERR_NOTIFY_UNAVAILABLE"/);
    // It names the fix.
    assert.match(run.stdout, /libsystemd-dev.*npm install -g /);
    assert.ok(run.durationMs < 10_000, `${run.durationMs} ms`);
    assert.equal(readStateDoc(statePath)?.gateway.state, 'fatal');

    const doctor = await cli(['doctor', '--json', '--config', config]);
    assert.equal(doctor.code, 1);
    const addon = (JSON.parse(doctor.stdout) as DoctorReport).checks.find(
      (c) => c.id === 'sd-notify',
    );
    assert.deepEqual([addon?.status, addon?.code], ['fail', 'GW_ERR_NOTIFY_UNAVAILABLE']);
  },
);

const harnessSkip = await scenarioSkipReason();

await test(
  'the unit a global install writes: ExecStart names <prefix>/bin; Type=notify fails 78, Type=simple connects',
  { skip: harnessSkip, timeout: 180_000 },
  async (t) => {
    if (needInstall()) return t.skip(needInstall() as string);
    const harness = await SystemdHarness.start();
    const unit = harness.uniqueUnitName('hgw-global');
    let fake: FakeQQProcess | null = null;
    t.after(async () => {
      await removeGatewayUnit(harness, unit);
      await fake?.stop();
      await harness.stop();
    });
    fake = await FakeQQProcess.start(SECRET);
    const secretFile = join(harness.stateDir, 'qq-secret');
    await writeFile(secretFile, SECRET, { mode: 0o600 });
    const statePath = join(harness.stateDir, 'global-state.json');
    const config = join(harness.stateDir, 'global.yaml');
    await writeFile(
      config,
      gatewayConfig({ fake, secret: { file: secretFile }, stateFile: statePath }),
      {
        mode: 0o600,
      },
    );
    const run = (args: readonly string[]): Promise<CommandOutcome> =>
      harness.exec(bin, args, { timeoutMs: 60_000 }).then((r) => ({ ...r, durationMs: 0 }));

    const install = await run(['install', '--config', config, '--unit', unit]);
    assert.equal(install.code, 0, install.stderr);
    const text = await readFile(join(harness.unitDir, unit), 'utf8');
    // The bin link survives `npm install -g` upgrades; the package folder behind it is replaced.
    assert.ok(
      text.includes(`\nExecStart=${process.execPath} ${bin} run --config ${config}\n`),
      text,
    );

    await harness.systemctl(['start', unit]);
    const failed = await harness.waitFor(
      async () => {
        const s = await harness.show(unit, ['ActiveState', 'ExecMainStatus', 'NRestarts']);
        return s.ActiveState === 'failed' && s;
      },
      20_000,
      { what: 'the Type=notify unit failed' },
    );
    assert.deepEqual([failed.ExecMainStatus, failed.NRestarts], ['78', '0']);
    const errors = await journalUntil(
      harness,
      unit,
      (all) => all.some((e) => e.message.includes('GW_ERR_NOTIFY_UNAVAILABLE')),
      'the notify error in the journal',
      { priority: 'err' },
    );
    assert.ok(errors.length > 0);

    // The message's other fix: no notifications at all. NotifyAccess=none too: with the
    // template's NotifyAccess=main, systemd sets NOTIFY_SOCKET even for Type=simple.
    await writeDropIn(harness, unit, ['Type=simple', 'NotifyAccess=none', 'WatchdogSec=0']);
    await harness.systemctl(['daemon-reload']);
    await harness.systemctl(['reset-failed', unit]);
    assert.equal((await harness.systemctl(['start', unit])).code, 0);
    await harness.waitFor(
      () => readStateDoc(statePath)?.platforms.qqbot?.state === 'connected',
      20_000,
      { what: 'connected as Type=simple' },
    );
    const status = await run(['status', '--config', config, '--unit', unit]);
    assert.equal(status.code, 0, status.stdout + status.stderr);
  },
);
