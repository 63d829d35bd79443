import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { locateConfig } from '../config/load.js';
import { EXIT, toGatewayError } from '../errors.js';
import { DEFAULT_UNIT, installUnit, uninstallUnit } from '../systemd/install.js';
import type { CommandContext } from './context.js';

/** Errors about the paths a unit would hold: fixed by moving files, not by retrying (78). */
const UNIT_PATH_CODES = new Set(['GW_ERR_UNIT_PATH_UNSAFE', 'GW_ERR_UNIT_PATH_EPHEMERAL']);

const PRIORITIES = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'];

/** `install`, `uninstall` and `logs`: the user unit and its journal. */
export function registerServiceCommands(program: Command, ctx: CommandContext): void {
  const { io, result } = ctx;
  const fail = (err: unknown): void => {
    const error = toGatewayError(err, 'GW_ERR_SYSTEMCTL_FAILED');
    io.err(`error ${error.code}: ${error.message}`);
    // A path the unit cannot hold is fixed by moving the file, not by trying again.
    result.code = UNIT_PATH_CODES.has(error.code) ? EXIT.CONFIG : 1;
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
    .action(async (opts: { config?: string; now?: boolean; force?: boolean; unit: string }) => {
      try {
        const config = locateConfig(opts.config, io.env);
        const installed = await installUnit({
          config,
          unit: opts.unit,
          now: opts.now === true,
          force: opts.force === true,
          env: io.env,
        });
        const what = installed.changed ? 'installed' : 'unchanged';
        io.out(`${what} ${installed.path} (config: ${config})`);
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
