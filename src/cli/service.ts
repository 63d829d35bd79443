import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { locateConfig } from '../config/load.js';
import { EXIT, GatewayError, toGatewayError } from '../errors.js';
import { existsSync } from 'node:fs';
import { DEFAULT_UNIT, installUnit, socketUnitName, uninstallUnit } from '../systemd/install.js';
import type { CommandContext } from './context.js';

/** Errors about the paths a unit would hold: fixed by moving files, not by retrying (78). */
const UNIT_PATH_CODES = new Set(['GW_ERR_UNIT_PATH_UNSAFE', 'GW_ERR_UNIT_PATH_EPHEMERAL']);

const PRIORITIES = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'];

interface InstallCliOptions {
  config?: string;
  now?: boolean;
  force?: boolean;
  unit: string;
  instance?: string;
  worker?: string;
  socket?: string;
}

/** `install --instance NAME` / `install --worker NAME`: the template units (docs/scale-out.md). */
async function installTemplateCommand(
  opts: InstallCliOptions,
  io: CommandContext['io'],
): Promise<number> {
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

/** `install`, `uninstall` and `logs`: the user unit and its journal. */
export function registerServiceCommands(program: Command, ctx: CommandContext): void {
  const { io, result } = ctx;
  const fail = (err: unknown): void => {
    const error = toGatewayError(err, 'GW_ERR_SYSTEMCTL_FAILED');
    io.err(`error ${error.code}: ${error.message}`);
    // A path the unit cannot hold is fixed by moving the file, not by trying again.
    result.code = UNIT_PATH_CODES.has(error.code)
      ? EXIT.CONFIG
      : error.code === 'GW_ERR_CLI_USAGE'
        ? EXIT.USAGE
        : 1;
  };

  program
    .command('install')
    .description('install the systemd user unit (enable it; start it with --now)')
    .option('-c, --config <path>', 'config file the service will use')
    .option('--now', 'start the service right away')
    .option(
      '--force',
      'overwrite a unit file that hermes-gateway did not write (a unit of ours is refreshed either way; a running one is restarted)',
    )
    .option('--unit <name>', 'unit name', DEFAULT_UNIT)
    .option(
      '--instance <name>',
      'install hermes-gateway@NAME (config ~/.config/hermes-gateway/NAME.yaml)',
    )
    .option(
      '--worker <name>',
      'install hermes-gateway-worker@NAME (config ~/.config/hermes-gateway/workers/NAME.yaml)',
    )
    .option(
      '--socket <listen>',
      'also install a socket unit that listens on this webhook.listen address (socket activation)',
    )
    .action(async (opts: InstallCliOptions) => {
      try {
        if (opts.instance !== undefined || opts.worker !== undefined) {
          result.code = await installTemplateCommand(opts, io);
          return;
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
        result.code = EXIT.OK;
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('uninstall')
    .description('stop, disable and remove the systemd user unit')
    .option('--force', 'remove a unit file that hermes-gateway did not write')
    .option('--unit <name>', 'unit name', DEFAULT_UNIT)
    .action(async (opts: { force?: boolean; unit: string }) => {
      try {
        const path = await uninstallUnit({
          unit: opts.unit,
          force: opts.force === true,
          env: io.env,
        });
        io.out(path ? `removed ${path}` : `${opts.unit} is not installed`);
        result.code = EXIT.OK;
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('logs')
    .description("show the service's journal (journalctl)")
    .option('-f, --follow', 'keep printing new lines')
    .option(
      '-p, --priority <level>',
      `only this priority and above (${PRIORITIES.join(', ')}, or 0-7)`,
    )
    .option('-n, --lines <count>', 'how many recent lines', '100')
    .option('--unit <name>', 'unit name', DEFAULT_UNIT)
    .action(async (opts: { follow?: boolean; priority?: string; lines: string; unit: string }) => {
      if (
        opts.priority !== undefined &&
        !PRIORITIES.includes(opts.priority) &&
        !/^[0-7]$/.test(opts.priority)
      ) {
        io.err(`error GW_ERR_CLI_USAGE: --priority must be one of ${PRIORITIES.join(', ')} or 0-7`);
        result.code = EXIT.USAGE;
        return;
      }
      if (!/^\d+$/.test(opts.lines)) {
        io.err('error GW_ERR_CLI_USAGE: --lines must be a whole number');
        result.code = EXIT.USAGE;
        return;
      }
      const args = ['--user-unit', opts.unit, '-n', opts.lines, '--no-pager'];
      if (opts.follow) args.push('-f');
      if (opts.priority !== undefined) args.push('-p', opts.priority);
      result.code = await new Promise<number>((resolve) => {
        const child = spawn('journalctl', args, { stdio: 'inherit', env: io.env });
        child.on('error', (err) => {
          io.err(`error GW_ERR_SYSTEMCTL_FAILED: cannot run journalctl: ${err.message}`);
          resolve(1);
        });
        child.on('close', (code) => resolve(code ?? 1));
      });
    });
}
