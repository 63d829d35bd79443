import { spawn } from 'node:child_process';
import { locateConfig } from '../config/load.js';
import { EXIT, GatewayError, toGatewayError } from '../errors.js';
import { existsSync } from 'node:fs';
import { installUnit, socketUnitName, uninstallUnit } from '../systemd/install.js';
import type { CliIo } from './io.js';

/** Errors about the paths a unit would hold: fixed by moving files, not by retrying (78). */
const UNIT_PATH_CODES = new Set(['GW_ERR_UNIT_PATH_UNSAFE', 'GW_ERR_UNIT_PATH_EPHEMERAL']);

export interface InstallCliOptions {
  config?: string;
  now?: boolean;
  force?: boolean;
  unit: string;
  instance?: string;
  worker?: string;
  socket?: string;
}

/** `install --instance NAME` / `install --worker NAME`: the template units (docs/scale-out.md). */
async function installTemplateCommand(opts: InstallCliOptions, io: CliIo): Promise<number> {
  if (opts.instance !== undefined && opts.worker !== undefined) {
    throw new GatewayError('GW_ERR_CLI_USAGE', 'give --instance or --worker, not both');
  }
  const kind = opts.instance !== undefined ? 'instance' : 'worker';
  const { installInstance } = await import('../systemd/install-instance.js');
  const installed = await installInstance({
    kind,
    name: (opts.instance ?? opts.worker)!,
    now: opts.now === true,
    force: opts.force === true,
    env: io.env,
  });
  io.out(`installed ${installed.path} (config: ${installed.config})`);
  if (!existsSync(installed.config)) io.out(`write ${installed.config} before starting it`);
  io.out(
    opts.now
      ? `started ${installed.unit}`
      : `enabled; start it with: systemctl --user start ${installed.unit}`,
  );
  return EXIT.OK;
}

/** The exit code of a failed `install` or `uninstall`, with the error printed. */
function failed(err: unknown, io: CliIo): number {
  const error = toGatewayError(err, 'GW_ERR_SYSTEMCTL_FAILED');
  io.err(`error ${error.code}: ${error.message}`);
  // A path the unit cannot hold is fixed by moving the file, not by trying again.
  return UNIT_PATH_CODES.has(error.code)
    ? EXIT.CONFIG
    : error.code === 'GW_ERR_CLI_USAGE'
      ? EXIT.USAGE
      : 1;
}

/** `install`: writes and enables the user unit; resolves with the exit code. */
export async function installCommand(opts: InstallCliOptions, io: CliIo): Promise<number> {
  try {
    if (opts.instance !== undefined || opts.worker !== undefined) {
      return await installTemplateCommand(opts, io);
    }
    const config = locateConfig(opts.config, io.env);
    const installed = await installUnit({
      config,
      unit: opts.unit,
      now: opts.now === true,
      force: opts.force === true,
      ...(opts.socket === undefined ? {} : { socket: opts.socket }),
      env: io.env,
    });
    const what = installed.changed ? 'installed' : 'unchanged';
    io.out(`${what} ${installed.path} (config: ${config})`);
    if (opts.socket !== undefined) {
      io.out(`installed ${socketUnitName(opts.unit)} (listening on ${opts.socket})`);
    }
    if (installed.restarted) io.out(`restarted ${opts.unit} (it was running)`);
    else if (installed.wasActive) io.out(`${opts.unit} is running`);
    else if (opts.now) io.out(`started ${opts.unit}`);
    else io.out(`enabled; start it with: systemctl --user start ${opts.unit}`);
    io.out('to keep it running while you are logged out: loginctl enable-linger "$USER"');
    return EXIT.OK;
  } catch (err) {
    return failed(err, io);
  }
}

/** `uninstall`: stops, disables and removes the user unit; resolves with the exit code. */
export async function uninstallCommand(
  opts: { force?: boolean; unit: string },
  io: CliIo,
): Promise<number> {
  try {
    const path = await uninstallUnit({ unit: opts.unit, force: opts.force === true, env: io.env });
    io.out(path ? `removed ${path}` : `${opts.unit} is not installed`);
    return EXIT.OK;
  } catch (err) {
    return failed(err, io);
  }
}

/**
 * `logs`: the unit's journal through journalctl (options checked by the command tree);
 * resolves with journalctl's exit code.
 */
export function logsCommand(
  opts: { follow?: boolean; priority?: string; lines: string; unit: string },
  io: CliIo,
): Promise<number> {
  const args = ['--user-unit', opts.unit, '-n', opts.lines, '--no-pager'];
  if (opts.follow) args.push('-f');
  if (opts.priority !== undefined) args.push('-p', opts.priority);
  return new Promise<number>((resolve) => {
    const child = spawn('journalctl', args, { stdio: 'inherit', env: io.env });
    child.on('error', (err) => {
      io.err(`error GW_ERR_SYSTEMCTL_FAILED: cannot run journalctl: ${err.message}`);
      resolve(1);
    });
    child.on('close', (code) => resolve(code ?? 1));
  });
}
