import type { PlatformRegistry } from '../adapters/platform.js';
import { enabledInstances } from '../config/instances.js';
import { loadConfig, locateConfig } from '../config/load.js';
import { checkControlConfig } from '../control/config.js';
import { EXIT, GatewayError, exitCodeFor, toGatewayError } from '../errors.js';
import type { CliIo } from './io.js';

export interface CheckOptions {
  config?: string | undefined;
  probe?: boolean | undefined;
}

/**
 * `check`: validates the config (and with --probe, the credentials); exit 0 or 78. Two
 * instances using one credential are refused here too (loadConfig), with the run's code.
 */
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
    const enabled = enabledInstances(config.platforms, registry);
    if (enabled.length === 0) {
      throw new GatewayError('GW_ERR_NO_PLATFORMS', `${file}: platforms: no platform is enabled`, {
        details: { file, key: 'platforms' },
      });
    }
    if (options.probe) {
      for (const { name, definition, config: settings } of enabled) {
        if (definition.probe) {
          await definition.probe(settings);
          io.out(`${name}: credentials accepted`);
        }
      }
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
