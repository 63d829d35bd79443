import type { PlatformRegistry } from '../adapters/platform.js';
import { enabledPlatforms, loadConfig, locateConfig } from '../config/load.js';
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
 * `check`: validates the config (and with --probe, the credentials); exit 0 or 78. Warnings
 * are printed on stderr; with --strict they make the check fail (78).
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
    const enabled = enabledPlatforms(config);
    if (enabled.length === 0) {
      throw new GatewayError('GW_ERR_NO_PLATFORMS', `${file}: platforms: no platform is enabled`, {
        details: { file, key: 'platforms' },
      });
    }
    if (options.probe) {
      for (const name of enabled) {
        const def = registry.get(name)!;
        if (def.probe) {
          await def.probe(config.platforms[name]!);
          io.out(`${name}: credentials accepted`);
        }
      }
    }
    if (options.strict && warnings.length > 0) {
      io.err(`${file}: ${warnings.length} warning(s), refused by --strict`);
      return EXIT.CONFIG;
    }
    io.out(`${file}: ok (platforms: ${enabled.join(', ')}; handler: ${config.handler.type})`);
    return EXIT.OK;
  } catch (err) {
    const error = toGatewayError(err, 'GW_ERR_CONFIG_INVALID');
    io.err(`error ${error.code}: ${error.message}`);
    return error.kind === 'config' || error.kind === 'platform' ? EXIT.CONFIG : exitCodeFor(error);
  }
}
