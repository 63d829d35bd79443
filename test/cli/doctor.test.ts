/**
 * `hermes-gateway doctor` and `status` outside a user manager (issue 14): each failure doctor
 * knows is staged for real, and the built CLI must name it by check id, status and code in
 * `--json`, with exit 1; `status` warns about a unit an older template wrote. The healthy case
 * runs under the systemd harness (test/systemd/unit-upgrade.test.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { chmod, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { defaultRegistry } from '../../src/adapters/registry.js';
import type { CheckResult, DoctorReport } from '../../src/cli/doctor.js';
import { credentialClaims, enabledInstances } from '../../src/config/instances.js';
import { loadConfig } from '../../src/config/load.js';
import { credentialLockKey } from '../../src/runner/credential-locks.js';
import { renderServiceUnit, UNIT_MARKER } from '../../src/systemd/install.js';
import { HolderLock } from '../../src/util/holder-lock.js';
import {
  PRODUCT_CLI,
  runGatewayCli,
  sandboxEnv,
  scratchRoot,
  writeConfig,
} from '../support/spawn-gateway.js';

const root = await scratchRoot('hgw-doctor-');
const T = { timeout: 60_000 };
const REPO = join(dirname(PRODUCT_CLI), '../../..');
const unshareWorks =
  process.getuid?.() === 0 &&
  spawnSync('unshare', ['--mount', 'true'], { stdio: 'ignore' }).status === 0;

interface Setup {
  dir: string;
  env: NodeJS.ProcessEnv;
  config: string;
  secret: string;
  stateDir: string;
  unitPath: string;
}

let counter = 0;

/** A user with a valid config, a private secret file and state dir; no user manager. */
async function setup(): Promise<Setup> {
  counter += 1;
  const dir = join(root, `case-${counter}`);
  const stateDir = join(dir, 'state');
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const secret = join(dir, 'qq_secret');
  await writeFile(secret, 'doctor-test-secret\n', { mode: 0o600 });
  const config = await writeConfig(dir, {
    state_file: join(stateDir, 'gateway_state.json'),
    handler: { type: 'echo' },
    // A distinct app id per case: the credential locks of cases never meet.
    platforms: { qqbot: { app_id: `10200${process.pid}${counter}`, client_secret_file: secret } },
  });
  // No XDG_RUNTIME_DIR and no bus: `systemctl --user` cannot reach a manager here.
  const env = sandboxEnv(dir, { XDG_RUNTIME_DIR: undefined, DBUS_SESSION_BUS_ADDRESS: undefined });
  const unitPath = join(dir, 'xdg-config', 'systemd', 'user', 'hermes-gateway.service');
  return { dir, env, config, secret, stateDir, unitPath };
}

async function doctor(
  s: Setup,
  options: { env?: NodeJS.ProcessEnv; cli?: string } = {},
): Promise<{ code: number | null; report: DoctorReport; stderr: string }> {
  const result = await runGatewayCli(['doctor', '--json', '--config', s.config], {
    cli: options.cli ?? PRODUCT_CLI,
    env: options.env ?? s.env,
    timeoutMs: 30_000,
  });
  let report: DoctorReport;
  try {
    report = JSON.parse(result.stdout) as DoctorReport;
  } catch {
    assert.fail(`doctor --json printed no JSON:\n${result.stdout}\n${result.stderr}`);
  }
  return { code: result.code, report, stderr: result.stderr };
}

function check(report: DoctorReport, id: string): CheckResult {
  const found = report.checks.find((c) => c.id === id);
  assert.ok(found, `no check ${id} in ${JSON.stringify(report.checks.map((c) => c.id))}`);
  return found;
}

/** The ids of the failed checks, by the checks' own statuses. */
function failed(report: DoctorReport): string[] {
  return report.checks.filter((c) => c.status === 'fail').map((c) => c.id);
}

/** Writes the unit install would write for this setup (its config, this CLI). */
async function installCurrentUnit(s: Setup): Promise<string> {
  const text = await renderServiceUnit(s.config);
  await mkdir(dirname(s.unitPath), { recursive: true });
  await writeFile(s.unitPath, text);
  return text;
}

await test(
  'a setup without a user manager: exactly the manager is reported, with its code',
  T,
  async () => {
    const s = await setup();
    await installCurrentUnit(s);
    const { code, report } = await doctor(s);
    assert.equal(code, 1);
    // journald is the host's: where it runs, only the manager is missing.
    assert.ok(failed(report).includes('user-manager'));
    assert.deepEqual(
      failed(report).filter((id) => id !== 'user-manager' && id !== 'journald'),
      [],
    );
    assert.deepEqual(report.problems, failed(report));
    assert.equal(report.ok, false);
    const manager = check(report, 'user-manager');
    assert.equal(manager.code, 'GW_ERR_SYSTEMD_UNREACHABLE');
    assert.match(manager.fix ?? '', /XDG_RUNTIME_DIR/);
    for (const id of [
      'node',
      'sd-notify',
      'unit',
      'config',
      'secrets',
      'state-dir',
      'credential-lock',
      'clock',
    ]) {
      assert.equal(check(report, id).status, 'ok', `${id}: ${check(report, id).message}`);
    }
    // Every problem comes with a fix.
    for (const c of report.checks)
      if (c.status === 'fail' || c.status === 'warn') assert.ok(c.fix, c.id);
  },
);

await test(
  'a secret file open to others (0644): secrets fails with chmod 600 as the fix',
  T,
  async () => {
    const s = await setup();
    await installCurrentUnit(s);
    await chmod(s.secret, 0o644);
    const { code, report } = await doctor(s);
    assert.equal(code, 1);
    const secrets = check(report, 'secrets');
    assert.equal(secrets.status, 'fail');
    assert.equal(secrets.code, 'GW_ERR_CONFIG_SECRET_FILE_MODE');
    assert.ok(secrets.fix?.startsWith('chmod 600 '), secrets.fix);
    assert.ok(secrets.fix?.includes(s.secret));
    assert.ok(report.problems.includes('secrets'));
    // The secret itself is never printed.
    assert.ok(!JSON.stringify(report).includes('doctor-test-secret'));
  },
);

await test(
  'a stale unit: doctor fails `unit` with the refresh command, status warns',
  T,
  async () => {
    const s = await setup();
    const current = await installCurrentUnit(s);
    // What the version before template versions wrote: the marker, then the template's text.
    const old = current
      .split('\n')
      .filter((line, i) => i === 0 || !line.startsWith('# hermes-gateway-'))
      .join('\n');
    assert.ok(old.startsWith(UNIT_MARKER));
    await writeFile(s.unitPath, old);
    const { code, report } = await doctor(s);
    assert.equal(code, 1);
    const unit = check(report, 'unit');
    assert.deepEqual([unit.status, unit.code], ['fail', 'GW_ERR_UNIT_STALE']);
    assert.equal(unit.fix, `hermes-gateway install --force --config ${s.config}`);

    const status = await runGatewayCli(['status', '--config', s.config], {
      cli: PRODUCT_CLI,
      env: s.env,
    });
    assert.equal(status.code, 3, 'not running: the exit code is about the gateway only');
    assert.match(status.stderr, /^warning GW_ERR_UNIT_STALE: .*template 1, this version writes 2/m);
    assert.ok(status.stderr.includes(`install --force --config ${s.config}`), status.stderr);
    const json = await runGatewayCli(['status', '--json', '--config', s.config], {
      cli: PRODUCT_CLI,
      env: s.env,
    });
    const unitJson = (
      JSON.parse(json.stdout) as { unit: { state: string; installed_template: number } }
    ).unit;
    assert.deepEqual([unitJson.state, unitJson.installed_template], ['stale', 1]);

    // Another config path in the unit than the one it says it was installed with: stale too.
    await writeFile(
      s.unitPath,
      current.replace(`--config ${s.config}`, '--config /elsewhere.yaml'),
    );
    assert.equal(check((await doctor(s)).report, 'unit').status, 'fail');
    // The current text: no warning.
    await writeFile(s.unitPath, current);
    const quiet = await runGatewayCli(['status', '--config', s.config], {
      cli: PRODUCT_CLI,
      env: s.env,
    });
    assert.ok(!quiet.stderr.includes('GW_ERR_UNIT_STALE'), quiet.stderr);
    assert.equal(check((await doctor(s)).report, 'unit').status, 'ok');
  },
);

await test(
  'no unit installed, or a foreign one: `unit` fails with the install command',
  T,
  async () => {
    const s = await setup();
    const missing = check((await doctor(s)).report, 'unit');
    assert.deepEqual([missing.status, missing.fix], ['fail', 'hermes-gateway install --now']);
    await mkdir(dirname(s.unitPath), { recursive: true });
    await writeFile(s.unitPath, '[Service]\nExecStart=/bin/true\n');
    const foreign = check((await doctor(s)).report, 'unit');
    assert.deepEqual([foreign.status, foreign.code], ['fail', 'GW_ERR_UNIT_FOREIGN']);
  },
);

await test(
  'a state directory open to others fails; a missing one is only a warning',
  T,
  async () => {
    const s = await setup();
    await installCurrentUnit(s);
    await chmod(s.stateDir, 0o755);
    const open = check((await doctor(s)).report, 'state-dir');
    assert.equal(open.status, 'fail');
    assert.equal(open.fix, `chmod 700 '${s.stateDir}'`);
    await chmod(s.stateDir, 0o700);
    assert.equal(check((await doctor(s)).report, 'state-dir').status, 'ok');
    // No probe file is left behind.
    assert.deepEqual(readdirSync(s.stateDir), []);
  },
);

await test(
  'a state directory that is not writable (a read-only mount): state-dir fails',
  { ...T, skip: unshareWorks ? false : 'needs root and unshare --mount (a read-only bind mount)' },
  async () => {
    const s = await setup();
    await installCurrentUnit(s);
    // Root writes through any mode bits, so the directory is made read-only the way a mount is.
    const script =
      'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && shift && exec "$@"';
    const wrapper = join(s.dir, 'ro-state.sh');
    await writeFile(
      wrapper,
      `#!/bin/sh\nexec unshare --mount --propagation private sh -c '${script}' sh '${s.stateDir}' '${process.execPath}' '${PRODUCT_CLI}' "$@"\n`,
      { mode: 0o755 },
    );
    const result = spawnSync(wrapper, ['doctor', '--json', '--config', s.config], {
      env: s.env,
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(result.status, 1, result.stderr);
    const stateDir = check(JSON.parse(result.stdout) as DoctorReport, 'state-dir');
    assert.equal(stateDir.status, 'fail');
    assert.equal(stateDir.code, 'GW_ERR_STATE_WRITE');
    assert.match(stateDir.message, /EROFS/);
  },
);

await test(
  'the sd-notify addon missing: sd-notify fails with GW_ERR_NOTIFY_UNAVAILABLE',
  T,
  async () => {
    const s = await setup();
    await installCurrentUnit(s);
    // The package as a global install without libsystemd-dev leaves it: everything but sd-notify.
    const pkg = join(s.dir, 'pkg');
    await mkdir(join(pkg, 'node_modules'), { recursive: true });
    for (const entry of readdirSync(join(REPO, 'node_modules'))) {
      if (entry !== 'sd-notify')
        await symlink(join(REPO, 'node_modules', entry), join(pkg, 'node_modules', entry));
    }
    await mkdir(join(pkg, 'dist'));
    await symlink(join(REPO, 'dist', 'src'), join(pkg, 'dist', 'src'));
    await symlink(join(REPO, 'systemd'), join(pkg, 'systemd'));
    // Resolve modules from the links' own paths, not from the real files' (which see sd-notify).
    const env = { ...s.env, NODE_OPTIONS: '--preserve-symlinks --preserve-symlinks-main' };
    const { code, report } = await doctor(s, {
      env,
      cli: join(pkg, 'dist', 'src', 'cli', 'main.js'),
    });
    assert.equal(code, 1);
    const addon = check(report, 'sd-notify');
    assert.deepEqual([addon.status, addon.code], ['fail', 'GW_ERR_NOTIFY_UNAVAILABLE']);
    assert.match(addon.fix ?? '', /libsystemd-dev/);
    // The same copy with the addon is fine: the staging, not the copy, made it fail.
    assert.equal(check((await doctor(s)).report, 'sd-notify').status, 'ok');
  },
);

await test('a credential lock held by another process fails; a free one is ok', T, async () => {
  const s = await setup();
  await installCurrentUnit(s);
  const registry = await defaultRegistry();
  const loaded = loadConfig(s.config, registry, s.env);
  const [claim] = credentialClaims(enabledInstances(loaded.config.platforms, registry));
  assert.ok(claim);
  assert.equal(check((await doctor(s)).report, 'credential-lock').status, 'ok');
  const taken = await HolderLock.acquire(credentialLockKey(claim.identity), 'instance other');
  assert.ok(taken.ok);
  try {
    const lock = check((await doctor(s)).report, 'credential-lock');
    assert.deepEqual([lock.status, lock.code], ['fail', 'GW_ERR_CREDENTIAL_IN_USE']);
    assert.ok(lock.message.includes(`pid ${process.pid}`), lock.message);
  } finally {
    await taken.lock.release();
  }
  // Doctor only asked: the lock is free again, and doctor never held it.
  const again = await HolderLock.acquire(credentialLockKey(claim.identity), 'test');
  assert.ok(again.ok);
  await again.lock.release();
});

await test(
  'an invalid config fails `config` with its code; checks that need it are skipped',
  T,
  async () => {
    const s = await setup();
    await writeFile(s.config, `${await readFile(s.config, 'utf8')}bogus_key: 1\n`);
    const { code, report } = await doctor(s);
    assert.equal(code, 1);
    const config = check(report, 'config');
    assert.deepEqual([config.status, config.code], ['fail', 'GW_ERR_CONFIG_INVALID']);
    assert.equal(check(report, 'secrets').status, 'skip');
    assert.equal(check(report, 'credential-lock').status, 'skip');
  },
);

await test('the text report lists every check, each problem with its fix', T, async () => {
  const s = await setup();
  const result = await runGatewayCli(['doctor', '--config', s.config], {
    cli: PRODUCT_CLI,
    env: s.env,
  });
  assert.equal(result.code, 1);
  assert.match(result.stdout, /^FAIL +unit +.*\n +fix: hermes-gateway install --now$/m);
  assert.match(result.stdout, /^OK +node /m);
  assert.match(result.stdout, /^\d+ problem\(s\): .*\bunit\b/m);
});
