/**
 * `hermes-gateway doctor`: one command that checks what breaks gateways in the field (issue
 * 14) and prints a fix for each problem. Exit 0 when no check fails, 1 with the list of the
 * failed ones; `--json` for scripts. Doctor only looks: it takes no lock, writes nothing but
 * a probe file it removes at once, and never contacts a platform.
 */
import { constants, existsSync, statSync } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { credentialClaims, enabledInstances } from '../config/instances.js';
import { loadConfig, locateConfig, type LoadedConfig } from '../config/load.js';
import { checkControlConfig } from '../control/config.js';
import { EXIT, GatewayError, isGatewayError, toGatewayError } from '../errors.js';
import { credentialLockKey } from '../runner/credential-locks.js';
import { readStateFile } from '../state/read.js';
import { DEFAULT_UNIT, inspectServiceUnit, PACKAGE_ROOT } from '../systemd/install.js';
import { loadSdNotify } from '../systemd/notify.js';
import { capture, systemctlUser } from '../systemd/systemctl.js';
import { HolderLock } from '../util/holder-lock.js';
import { isSameProcessAlive } from '../util/proc.js';
import type { PlatformRegistry } from '../adapters/platform.js';
import type { CliIo } from './io.js';
import { candidateStatePaths, staleUnitWarning } from './status.js';

/** `ok`; `warn`: worth fixing, does not fail the run; `fail`; `skip`: cannot tell here. */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  /** Stable name for scripts: `node`, `sd-notify`, `user-manager`, `linger`, `unit`, ... */
  id: string;
  status: CheckStatus;
  message: string;
  /** What to run or change; set for every warn and fail. */
  fix?: string;
  /** The error code behind a problem, when there is one. */
  code?: string;
}

export interface DoctorReport {
  ok: boolean;
  /** Ids of the failed checks. */
  problems: string[];
  checks: CheckResult[];
}

export interface DoctorOptions {
  config?: string | undefined;
  unit?: string | undefined;
}

/** The oldest Node the package supports (package.json `engines`). */
const MIN_NODE_MAJOR = 20;
/** Where journald takes a service's stdout (StandardOutput=journal). */
const JOURNAL_STDOUT = '/run/systemd/journal/stdout';
/** Where logind records `loginctl enable-linger` (one empty file per user). */
const LINGER_DIR = '/var/lib/systemd/linger';
const JOURNAL_CONNECT_TIMEOUT_MS = 2_000;

type Check = (ctx: DoctorContext) => Promise<CheckResult> | CheckResult;

interface DoctorContext {
  env: NodeJS.ProcessEnv;
  configFile: string;
  unit: string;
  /** The loaded config, or the reason it did not load. */
  loaded: LoadedConfig | GatewayError;
  registry: PlatformRegistry;
}

function result(
  id: string,
  status: CheckStatus,
  message: string,
  fix?: string,
  code?: string,
): CheckResult {
  const out: CheckResult = { id, status, message };
  if (fix !== undefined) out.fix = fix;
  if (code !== undefined) out.code = code;
  return out;
}

const checkNode: Check = () => {
  const major = Number(process.versions.node.split('.')[0]);
  return major >= MIN_NODE_MAJOR
    ? result('node', 'ok', `Node ${process.versions.node} (needs >= ${MIN_NODE_MAJOR})`)
    : result(
        'node',
        'fail',
        `Node ${process.versions.node} is older than ${MIN_NODE_MAJOR}`,
        `install Node ${MIN_NODE_MAJOR} or newer, then install hermes-gateway again`,
      );
};

const checkSdNotify: Check = () => {
  try {
    loadSdNotify();
    return result('sd-notify', 'ok', 'the native sd-notify addon loads (Type=notify works)');
  } catch (err) {
    const error = toGatewayError(err, 'GW_ERR_NOTIFY_UNAVAILABLE');
    return result(
      'sd-notify',
      'fail',
      `${error.message.split(';')[0]}: the unit (Type=notify) would exit 78 at start`,
      'apt-get install libsystemd-dev, then install hermes-gateway again (npm install -g ./hermes-gateway-<version>.tgz; in a clone: npm rebuild sd-notify)',
      error.code,
    );
  }
};

const checkUserManager: Check = async (ctx) => {
  try {
    await systemctlUser(['show', '--property=Version'], ctx.env);
    return result('user-manager', 'ok', '`systemctl --user` reaches the user manager');
  } catch (err) {
    const error = toGatewayError(err, 'GW_ERR_SYSTEMD_UNREACHABLE');
    return result(
      'user-manager',
      'fail',
      // The fix has its own field: the message's own advice would say it twice.
      error.message.split('; log in')[0]!,
      'log in through a session with systemd (ssh, a console; not su), or export XDG_RUNTIME_DIR=/run/user/$(id -u)',
      error.code,
    );
  }
};

const checkLinger: Check = () => {
  const user = userInfo().username;
  return existsSync(join(LINGER_DIR, user))
    ? result(
        'linger',
        'ok',
        `lingering is on for ${user}: the gateway runs while you are logged out`,
      )
    : result(
        'linger',
        'warn',
        `lingering is off for ${user}: the user manager, and the gateway, stop when you log out`,
        'loginctl enable-linger "$USER"',
      );
};

const checkUnit: Check = async (ctx) => {
  const unit = await inspectServiceUnit(ctx.unit, ctx.env);
  switch (unit.state) {
    case 'current':
      return result(
        'unit',
        'ok',
        `${unit.path} is what this version writes (template ${unit.template})`,
      );
    case 'missing':
      return result(
        'unit',
        'fail',
        `${unit.path} is not installed`,
        ctx.unit === DEFAULT_UNIT
          ? 'hermes-gateway install --now'
          : `hermes-gateway install --now --unit ${ctx.unit}`,
      );
    case 'foreign':
      return result(
        'unit',
        'fail',
        `${unit.path} was not written by hermes-gateway install`,
        'move it away, or replace it: hermes-gateway install --force',
        'GW_ERR_UNIT_FOREIGN',
      );
    case 'stale':
      return result(
        'unit',
        'fail',
        staleUnitWarning(unit)?.split('; refresh it')[0] ?? `${unit.path} is stale`,
        unit.refresh ?? 'hermes-gateway install --force',
        'GW_ERR_UNIT_STALE',
      );
  }
};

const checkConfig: Check = (ctx) => {
  const { loaded } = ctx;
  if (!(loaded instanceof GatewayError)) {
    const names = enabledInstances(loaded.config.platforms, ctx.registry).map((i) => i.name);
    return result('config', 'ok', `${loaded.file} is valid (platforms: ${names.join(', ')})`);
  }
  // From a shell, doctor lacks what the unit may provide (an Environment= drop-in, credentials).
  const credential = loaded.details.key?.toString().endsWith('_credential') === true;
  if (
    loaded.code === 'GW_ERR_CONFIG_ENV_MISSING' ||
    (credential && !ctx.env.CREDENTIALS_DIRECTORY)
  ) {
    return result(
      'config',
      'warn',
      `cannot check all of ${ctx.configFile} from this shell: ${loaded.message}`,
      'if the unit sets it (a drop-in with Environment= or LoadCredential=), nothing to do; else add it',
      loaded.code,
    );
  }
  return result(
    'config',
    'fail',
    loaded.message,
    `fix what the message names in ${ctx.configFile}, then: hermes-gateway check`,
    loaded.code,
  );
};

const checkSecrets: Check = (ctx) => {
  if (ctx.loaded instanceof GatewayError) {
    return result('secrets', 'skip', 'the config did not load: its secrets are not checked');
  }
  const open = ctx.loaded.warnings.filter((w) => w.code === 'GW_ERR_CONFIG_SECRET_FILE_MODE');
  if (open.length === 0) {
    return result('secrets', 'ok', 'every secret file is readable and private to you');
  }
  const paths = open.map((w) => String(w.details.path));
  return result(
    'secrets',
    'fail',
    open.map((w) => w.message).join('; '),
    `chmod 600 ${paths.map((p) => `'${p.replaceAll("'", `'\\''`)}'`).join(' ')}`,
    'GW_ERR_CONFIG_SECRET_FILE_MODE',
  );
};

/** The state file doctor checks: the config's, else the first existing default candidate. */
function statePath(ctx: DoctorContext): string {
  if (!(ctx.loaded instanceof GatewayError) && ctx.loaded.config.state_file) {
    return ctx.loaded.config.state_file;
  }
  const candidates = candidateStatePaths({ config: ctx.configFile }, ctx.env);
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

const checkStateDir: Check = async (ctx) => {
  const dir = dirname(statePath(ctx));
  let mode: number;
  try {
    mode = (await stat(dir)).mode & 0o777;
  } catch {
    return result(
      'state-dir',
      'warn',
      `${dir} does not exist yet (the gateway or systemd's StateDirectory= creates it at start)`,
      `mkdir -m 700 -p '${dir}'`,
    );
  }
  // A real write, not access(2): root passes access() whatever the mode bits say.
  const probe = join(dir, `.hermes-gateway-doctor-${process.pid}`);
  try {
    const handle = await open(
      probe,
      constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY,
      0o600,
    );
    await handle.close();
    await rm(probe, { force: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return result(
      'state-dir',
      'fail',
      `${dir} is not writable (${code}): the gateway exits 70 at its first state write`,
      code === 'EROFS'
        ? `mount ${dir} read-write, or set state_file to a writable place`
        : `chown "$USER" '${dir}' && chmod 700 '${dir}'`,
      'GW_ERR_STATE_WRITE',
    );
  }
  const octal = mode.toString(8).padStart(4, '0');
  if ((mode & 0o077) !== 0) {
    return result(
      'state-dir',
      'fail',
      `${dir} is open to group or others (mode ${octal}): the state file names the bot's sessions`,
      `chmod 700 '${dir}'`,
    );
  }
  return result('state-dir', 'ok', `${dir} is writable and private (mode ${octal})`);
};

const checkJournald: Check = async () => {
  // Where the unit's stdout goes; connecting is all StandardOutput=journal needs of it.
  const reason = await new Promise<string | null>((resolve) => {
    const socket = createConnection(JOURNAL_STDOUT);
    const done = (value: string | null): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => done('no answer'), JOURNAL_CONNECT_TIMEOUT_MS);
    socket.once('connect', () => done(null));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });
  return reason === null
    ? result('journald', 'ok', `journald takes the gateway's logs (${JOURNAL_STDOUT})`)
    : result(
        'journald',
        'fail',
        `journald cannot be reached at ${JOURNAL_STDOUT} (${reason}): the gateway's logs would be lost`,
        'systemctl status systemd-journald (start it: systemctl start systemd-journald)',
      );
};

const checkCredentialLocks: Check = async (ctx) => {
  if (ctx.loaded instanceof GatewayError) {
    return result(
      'credential-lock',
      'skip',
      'the config did not load: its credentials are unknown',
    );
  }
  const claims = credentialClaims(enabledInstances(ctx.loaded.config.platforms, ctx.registry));
  const state = await readStateFile(statePath(ctx)).catch(() => null);
  const gatewayPid =
    state && isSameProcessAlive(state.pid, state.pid_start_time) ? state.pid : null;
  const foreign: string[] = [];
  let heldByGateway = 0;
  for (const { instance, identity } of claims) {
    const holder = await HolderLock.holder(credentialLockKey(identity));
    if (holder === null) continue;
    if (holder.pid === gatewayPid) heldByGateway += 1;
    else foreign.push(`${instance} (${identity}) is held by ${holder.holder} of pid ${holder.pid}`);
  }
  if (foreign.length > 0) {
    return result(
      'credential-lock',
      'fail',
      `${foreign.join('; ')}, not by this config's gateway: it would exit 78 (GW_ERR_CREDENTIAL_IN_USE)`,
      'stop the other gateway that runs the same bot (systemctl --user stop <its unit>, or kill <pid>)',
      'GW_ERR_CREDENTIAL_IN_USE',
    );
  }
  const free = claims.length - heldByGateway;
  const held =
    heldByGateway > 0 ? `, ${heldByGateway} held by the running gateway (pid ${gatewayPid})` : '';
  return result(
    'credential-lock',
    'ok',
    `${claims.length} credential lock(s): ${free} free${held}`,
  );
};

const checkClock: Check = async (ctx) => {
  // A clock earlier than this package's own files is certainly wrong.
  const built = statSync(PACKAGE_ROOT).mtimeMs;
  if (Date.now() < built) {
    return result(
      'clock',
      'fail',
      `the clock (${new Date().toISOString()}) is earlier than this package's files (${new Date(built).toISOString()}): tokens would look valid or expired at the wrong times`,
      'timedatectl set-ntp true (or set the time: date -s)',
    );
  }
  const sync = await capture(
    'timedatectl',
    ['show', '--property=NTPSynchronized', '--value'],
    ctx.env,
    5_000,
  ).catch(() => null);
  const answer = sync?.code === 0 ? sync.stdout.trim() : '';
  if (answer === 'no') {
    return result(
      'clock',
      'warn',
      'the clock is not synchronized (NTP): token expiry relies on it',
      'timedatectl set-ntp true',
    );
  }
  const synced = answer === 'yes' ? 'synchronized (NTP)' : 'NTP state unknown (no timedated)';
  return result('clock', 'ok', `the clock is plausible; ${synced}`);
};

/** Every check, by the id it reports, in the order a fix is best applied. */
const CHECKS: ReadonlyArray<readonly [string, Check]> = [
  ['node', checkNode],
  ['sd-notify', checkSdNotify],
  ['user-manager', checkUserManager],
  ['linger', checkLinger],
  ['unit', checkUnit],
  ['config', checkConfig],
  ['secrets', checkSecrets],
  ['state-dir', checkStateDir],
  ['journald', checkJournald],
  ['credential-lock', checkCredentialLocks],
  ['clock', checkClock],
];

function loadForDoctor(ctx: Omit<DoctorContext, 'loaded'>): LoadedConfig | GatewayError {
  try {
    const loaded = loadConfig(ctx.configFile, ctx.registry, ctx.env);
    checkControlConfig(loaded.config.control, ctx.configFile, ctx.env);
    if (enabledInstances(loaded.config.platforms, ctx.registry).length === 0) {
      throw new GatewayError('GW_ERR_NO_PLATFORMS', `${ctx.configFile}: no platform is enabled`, {
        details: { file: ctx.configFile, key: 'platforms' },
      });
    }
    return loaded;
  } catch (err) {
    return isGatewayError(err) ? err : toGatewayError(err, 'GW_ERR_CONFIG_INVALID');
  }
}

/** Runs every check; resolves with the report (a check that throws is reported as failed). */
export async function runDoctor(
  options: DoctorOptions,
  registry: PlatformRegistry,
  env: NodeJS.ProcessEnv,
): Promise<DoctorReport> {
  const base = {
    env,
    registry,
    configFile: locateConfig(options.config, env),
    unit: options.unit ?? DEFAULT_UNIT,
  };
  const ctx: DoctorContext = { ...base, loaded: loadForDoctor(base) };
  const checks: CheckResult[] = [];
  for (const [id, check] of CHECKS) {
    try {
      checks.push(await check(ctx));
    } catch (err) {
      const error = toGatewayError(err, 'GW_ERR_INTERNAL');
      checks.push(result(id, 'fail', `the check broke: ${error.message}`, 'report it', error.code));
    }
  }
  const problems = checks.filter((c) => c.status === 'fail').map((c) => c.id);
  return { ok: problems.length === 0, problems, checks };
}

/** `doctor [-c CONFIG] [--unit NAME] [--json]`: prints the report; resolves with the exit code. */
export async function doctorCommand(
  opts: { config?: string; unit: string; json?: boolean },
  registry: PlatformRegistry,
  io: CliIo,
): Promise<number> {
  const report = await runDoctor(opts, registry, io.env);
  if (opts.json) {
    io.out(JSON.stringify(report, null, 2));
  } else {
    for (const check of report.checks) {
      io.out(`${check.status.toUpperCase().padEnd(5)} ${check.id.padEnd(16)} ${check.message}`);
      if (check.fix) io.out(`${' '.repeat(23)}fix: ${check.fix}`);
    }
    io.out(
      report.ok
        ? 'all checks passed'
        : `${report.problems.length} problem(s): ${report.problems.join(', ')}`,
    );
  }
  return report.ok ? EXIT.OK : 1;
}
