import type { PlatformRegistry } from '../adapters/platform.js';
import { enabledInstances } from '../config/instances.js';
import { loadConfig, locateConfig } from '../config/load.js';
import { checkControlConfig } from '../control/config.js';
import { EXIT, GatewayError, exitCodeFor, toGatewayError } from '../errors.js';
import type { CliIo } from './io.js';

export interface CheckOptions {
  config?: string | undefined;
  probe?: boolean | undefined;
  /** Warnings (a secret file others can read) fail the check too. */
  strict?: boolean | undefined;
}

/**
 * `check`: validates the config (and with --probe, the credentials). Exit 0 valid (and
 * accepted); 78 the config or the credentials are rejected (two instances using one
 * credential included, refused by loadConfig with the run's code); 1 the probe could not
 * tell (the token endpoint answered 5xx, timed out or was unreachable, or the probe broke).
 * Warnings are printed on stderr; with --strict they make the check fail (78).
 */
export async function checkCommand(
  options: CheckOptions,
  registry: PlatformRegistry,
  io: CliIo,
): Promise<number> {
  const file = locateConfig(options.config, io.env);
  try {
    const { config, warnings } = loadConfig(file, registry, io.env);
    // The same environment rule `run` applies (the socket must be under $XDG_RUNTIME_DIR).
    checkControlConfig(config.control, file, io.env);
    for (const warning of warnings) io.err(`warning ${warning.code}: ${warning.message}`);
    const enabled = enabledInstances(config.platforms, registry);
    if (enabled.length === 0) {
      throw new GatewayError('GW_ERR_NO_PLATFORMS', `${file}: platforms: no platform is enabled`, {
        details: { file, key: 'platforms' },
      });
    }
    if (options.probe) {
      for (const { name, definition, config: settings } of enabled) {
        if (definition.probe) {
          try {
            await definition.probe(settings);
          } catch (err) {
            const error = toGatewayError(err, 'GW_ERR_INTERNAL');
            io.err(`error ${error.code}: ${name}: ${error.message}`);
            // Only a refusal is a verdict; anything else means the answer is unknown.
            return error.kind === 'config' || error.kind === 'platform'
              ? EXIT.CONFIG
              : EXIT.RETRYABLE;
          }
          io.out(`${name}: credentials accepted`);
        }
      }
    }
    if (options.strict && warnings.length > 0) {
      io.err(`${file}: ${warnings.length} warning(s), refused by --strict`);
      return EXIT.CONFIG;
    }
    const names = enabled.map((i) => (i.type === i.name ? i.name : `${i.name} (${i.type})`));
    io.out(`${file}: ok (platforms: ${names.join(', ')}; handler: ${config.handler.type})`);
    return EXIT.OK;
  } catch (err) {
    const error = toGatewayError(err, 'GW_ERR_CONFIG_INVALID');
    io.err(`error ${error.code}: ${error.message}`);
    return error.kind === 'config' || error.kind === 'platform' ? EXIT.CONFIG : exitCodeFor(error);
  }
}
