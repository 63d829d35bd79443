import type * as Commander from 'commander';
import type { PlatformRegistry } from '../adapters/platform.js';
import { defaultRegistry, registryForPlatforms } from '../adapters/registry.js';
import { EXIT } from '../errors.js';
import { INSTANCE_NAME } from '../config/instances.js';
import type { CommandContext, PlatformSource } from './context.js';
import { DEMO_CHOICES } from './demo-platforms.js';
import { processIo, type CliIo } from './io.js';
import type { SendOptions } from './send.js';
import type { InstallCliOptions } from './service.js';
import { DEFAULT_UNIT } from '../systemd/unit-name.js';
import { requireLibrary } from '../util/require-library.js';

const { Command, CommanderError, Option } = requireLibrary('commander') as typeof Commander;
type Command = Commander.Command;

export interface CliDeps {
  /** Every platform the CLI knows (tests add their own); default: the shipped ones, loaded as needed. */
  registry?: PlatformRegistry;
  io?: CliIo;
}

/** The shipped platforms, each loaded when a command needs it (src/adapters/registry.ts). */
const SHIPPED_PLATFORMS: PlatformSource = {
  all: defaultRegistry,
  forPlatforms: registryForPlatforms,
};

/** A registry given whole (tests' extra platforms): every command gets all of it. */
function givenPlatforms(registry: PlatformRegistry): PlatformSource {
  const all = (): Promise<PlatformRegistry> => Promise.resolve(registry);
  return { all, forPlatforms: all };
}

/** What `logs --priority` takes besides 0-7 (journalctl's names). */
const PRIORITIES = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'];

/**
 * Builds the command tree. Each action stores its exit code in `result.code`; commander
 * itself only parses, so no command calls process.exit. Exported for the docs test, which
 * checks every documented command line against it.
 *
 * Only the tree lives here: each action imports the module that does the work when it runs,
 * so `run` (what systemd starts, and waits for until READY=1) loads none of the others.
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
      const { runGateway } = await import('./run.js');
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
        const { statusCommand } = await import('./status.js');
        result.code = await statusCommand(opts, await registry.all(), io);
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
      const { checkCommand } = await import('./check.js');
      result.code = await checkCommand(opts, await registry.all(), io);
    });

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
      const { installCommand } = await import('./service.js');
      result.code = await installCommand(opts, io);
    });

  program
    .command('uninstall')
    .description('stop, disable and remove the systemd user unit')
    .option('--force', 'remove a unit file that hermes-gateway did not write')
    .option('--unit <name>', 'unit name', DEFAULT_UNIT)
    .action(async (opts: { force?: boolean; unit: string }) => {
      const { uninstallCommand } = await import('./service.js');
      result.code = await uninstallCommand(opts, io);
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
      const { logsCommand } = await import('./service.js');
      result.code = await logsCommand(opts, io);
    });

  program
    .command('demo')
    .description(
      'run the whole gateway against bundled fake platforms and show a message round trip',
    )
    .addOption(
      new Option(
        '-p, --platform <name>',
        'the fake platform to run against; all = every one at once',
      )
        .choices(DEMO_CHOICES)
        .default('qqbot'),
    )
    .action(async (opts: { platform: string }) => {
      const { runDemo } = await import('./demo.js');
      result.code = await runDemo(ctx, opts.platform);
    });

  program
    .command('send')
    .description(
      'send a proactive message through the running gateway (needs control.listen); exit 0 sent, 1 refused, 3 gateway not reachable',
    )
    .argument(
      '<target>',
      'INSTANCE:CHATTYPE:CHAT, INSTANCE a key under platforms:, CHATTYPE one of c2c, group, channel, dm',
    )
    .argument('<text...>', 'the message (several words are joined with spaces)')
    .option('-c, --config <path>', 'config file, to find control.listen and control.token')
    .option(
      '--timeout-ms <ms>',
      'how long to wait for the gateway (default: control.send_timeout_ms + 5 s)',
    )
    .option('--json', "print the control API's JSON answer")
    .action(async (target: string, words: string[], opts: SendOptions) => {
      const { sendCommand } = await import('./send.js');
      result.code = await sendCommand(target, words, opts, io);
    });

  program
    .command('worker')
    .description(
      'run a handler for the events a gateway hands to the NATS broker (docs/scale-out.md)',
    )
    .requiredOption('-c, --config <path>', 'worker config file (worker.yaml)')
    .action(async (opts: { config: string }) => {
      const { runWorker } = await import('./worker.js');
      result.code = await runWorker(opts.config, io.env);
    });

  program
    .command('doctor')
    .description(
      'check what breaks gateways in the field and print a fix for each problem; exit 0 all well, 1 otherwise',
    )
    .option('-c, --config <path>', 'config file the service uses')
    .option('--unit <name>', 'user unit to check', DEFAULT_UNIT)
    .option('--json', 'print a JSON report')
    .action(async (opts: { config?: string; unit: string; json?: boolean }) => {
      const { doctorCommand } = await import('./doctor.js');
      result.code = await doctorCommand(opts, await registry.all(), io);
    });

  return program;
}

const VERSION = '0.1.0';

/** Parses argv (as process.argv) and runs the command; resolves with the exit code. */
export async function runCli(argv: string[], deps: CliDeps = {}): Promise<number> {
  const io = deps.io ?? processIo;
  const registry = deps.registry ? givenPlatforms(deps.registry) : SHIPPED_PLATFORMS;
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
