import type { PlatformRegistry } from '../adapters/platform.js';
import { enabledPlatforms, loadConfig, locateConfig } from '../config/load.js';
import { checkControlConfig } from '../control/config.js';
import { EXIT, GatewayError, exitCodeFor, toGatewayError } from '../errors.js';
import type { CliIo } from './io.js';

export interface CheckOptions {
  config?: string | undefined;
  probe?: boolean | undefined;
}

/** `check`: validates the config (and with --probe, the credentials); exit 0 or 78. */
export async function checkCommand(
  options: CheckOptions,
  registry: PlatformRegistry,
  io: CliIo,
): Promise<number> {
  const file = locateConfig(options.config, io.env);
  try {
    const { config } = loadConfig(file, registry, io.env);
    // What `run` checks before starting: a config `check` passes must not exit 78 at start.
    checkControlConfig(config.control, file, io.env);
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
    io.out(`${file}: ok (platforms: ${enabled.join(', ')}; handler: ${config.handler.type})`);
    return EXIT.OK;
  } catch (err) {
    const error = toGatewayError(err, 'GW_ERR_CONFIG_INVALID');
    io.err(`error ${error.code}: ${error.message}`);
    return error.kind === 'config' || error.kind === 'platform' ? EXIT.CONFIG : exitCodeFor(error);
  }
}
