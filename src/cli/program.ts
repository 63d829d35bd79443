import { Command, CommanderError, Option } from 'commander';
import type { PlatformRegistry } from '../adapters/platform.js';
import { defaultRegistry } from '../adapters/registry.js';
import { EXIT } from '../errors.js';
import { INSTANCE_NAME } from '../config/instances.js';
import { checkCommand } from './check.js';
import { registerDemoCommand } from './demo.js';
import { registerDoctorCommand } from './doctor.js';
import type { CommandContext } from './context.js';
import { processIo, type CliIo } from './io.js';
import { runGateway } from './run.js';
import { registerSendCommand } from './send.js';
import { registerServiceCommands } from './service.js';
import { statusCommand } from './status.js';
import { registerWorkerCommand } from './worker.js';
import { DEFAULT_UNIT } from '../systemd/install.js';

export interface CliDeps {
  registry?: PlatformRegistry;
  io?: CliIo;
}

/**
 * Builds the command tree. Each action stores its exit code in `result.code`; commander
 * itself only parses, so no command calls process.exit. Exported for the docs test, which
 * checks every documented command line against it.
 */
export function buildProgram(ctx: CommandContext): Command {
  const { registry, io, result } = ctx;
  const program = new Command('hermes-gateway')
    .description(
      'Keeps chat bots alive: platform adapters, handlers, a truthful state file, systemd supervision.',
    )
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (s) => io.out(s.replace(/\n$/, '')),
      writeErr: (s) => io.err(s.replace(/\n$/, '')),
    })
    .exitOverride();

  program
    .command('run')
    .description('run the gateway in the foreground (what the systemd unit starts)')
    .option(
      '-c, --config <path>',
      'config file (default: $HERMES_GATEWAY_CONFIG or ~/.config/hermes-gateway/config.yaml)',
    )
    .option('-s, --state <path>', 'state file (overrides state_file in the config)')
    .action(async (opts: { config?: string; state?: string }) => {
      result.code = await runGateway(opts, registry, io.env);
    });

  program
    .command('status')
    .description(
      'show whether the gateway runs and how each adapter is; exit 0 healthy, 1 degraded, 3 down',
    )
    .option('-c, --config <path>', 'config file, to find state_file')
    .option('-s, --state <path>', 'state file to read')
    .option('--instance <name>', 'the gateway of hermes-gateway@NAME (docs/scale-out.md)')
    .option('--json', 'print a JSON report')
    .option('--unit <name>', 'user unit to compare with what this version writes', DEFAULT_UNIT)
    .action(
      async (opts: {
        config?: string;
        state?: string;
        json?: boolean;
        instance?: string;
        unit: string;
      }) => {
        if (opts.instance !== undefined && !INSTANCE_NAME.test(opts.instance)) {
          io.err(
            `error GW_ERR_CLI_USAGE: ${JSON.stringify(opts.instance)} is not an instance name`,
          );
          result.code = EXIT.USAGE;
          return;
        }
        result.code = await statusCommand(opts, registry, io);
      },
    );

  program
    .command('check')
    .description(
      'validate the config (with --probe, the credentials); exit 0 valid, 78 rejected, 1 could not tell',
    )
    .option('-c, --config <path>', 'config file')
    .addOption(
      new Option(
        '--probe',
        'also ask each platform whether the credentials are accepted (exit 0 accepted, 78 rejected, 1 could not tell)',
      ),
    )
    .addOption(
      new Option('--strict', 'fail (exit 78) on warnings too, e.g. a secret file others can read'),
    )
    .action(async (opts: { config?: string; probe?: boolean; strict?: boolean }) => {
      result.code = await checkCommand(opts, registry, io);
    });

  // Further commands live in their own files, each with a register function.
  for (const register of EXTRA_COMMANDS) register(program, ctx);

  return program;
}

const EXTRA_COMMANDS: Array<(program: Command, ctx: CommandContext) => void> = [
  registerServiceCommands,
  registerDemoCommand,
  registerSendCommand,
  registerWorkerCommand,
  registerDoctorCommand,
];

const VERSION = '0.1.0';

/** Parses argv (as process.argv) and runs the command; resolves with the exit code. */
export async function runCli(argv: string[], deps: CliDeps = {}): Promise<number> {
  const io = deps.io ?? processIo;
  const registry = deps.registry ?? defaultRegistry();
  const result = { code: EXIT.OK as number };
  const program = buildProgram({ registry, io, result });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are successes; every parse error is a usage error (exit 2).
      // `help <command>` ends with code 'commander.help' and exitCode 0, a bare program with
      // exitCode 1: commander's own exitCode tells success from a usage error.
      if (
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        (err.code === 'commander.help' && err.exitCode === 0)
      ) {
        return EXIT.OK;
      }
      return EXIT.USAGE;
    }
    throw err;
  }
  return result.code;
}
