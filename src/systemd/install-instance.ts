import { homedir } from 'node:os';
import { join } from 'node:path';
import { GatewayError } from '../errors.js';
import { INSTANCE_NAME } from '../config/instances.js';
import { installUnit, PACKAGE_ROOT } from './install.js';

/**
 * The template units of docs/scale-out.md: `hermes-gateway@NAME` (one gateway per config
 * file, own state directory) and `hermes-gateway-worker@NAME`.
 */
export const TEMPLATES = {
  instance: {
    unit: 'hermes-gateway@.service',
    file: join(PACKAGE_ROOT, 'systemd', 'hermes-gateway@.service'),
    config: (env: NodeJS.ProcessEnv, name: string) => join(configRoot(env), `${name}.yaml`),
  },
  worker: {
    unit: 'hermes-gateway-worker@.service',
    file: join(PACKAGE_ROOT, 'systemd', 'hermes-gateway-worker@.service'),
    config: (env: NodeJS.ProcessEnv, name: string) =>
      join(configRoot(env), 'workers', `${name}.yaml`),
  },
} as const;

export type TemplateKind = keyof typeof TEMPLATES;

/** What %E/hermes-gateway is in a user unit: $XDG_CONFIG_HOME/hermes-gateway. */
function configRoot(env: NodeJS.ProcessEnv): string {
  return join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config'), 'hermes-gateway');
}

/** The unit of instance `name`: `hermes-gateway@NAME.service`. */
export function instanceUnit(kind: TemplateKind, name: string): string {
  if (!INSTANCE_NAME.test(name)) {
    throw new GatewayError(
      'GW_ERR_CLI_USAGE',
      `${JSON.stringify(name)} is not an instance name (a-z, 0-9, "_" and "-", up to 32)`,
      { details: { name } },
    );
  }
  return TEMPLATES[kind].unit.replace('@.', `@${name}.`);
}

/** Where the unit of `name` reads its config: ~/.config/hermes-gateway/[workers/]NAME.yaml. */
export function instanceConfigPath(
  kind: TemplateKind,
  name: string,
  env: NodeJS.ProcessEnv,
): string {
  return TEMPLATES[kind].config(env, name);
}

/**
 * The state files `status --instance NAME` may find: the config's `state_file`, else the
 * unit's StateDirectory=hermes-gateway/NAME (under $XDG_STATE_HOME, or $XDG_CONFIG_HOME on
 * systemd before 256).
 */
export function instanceStateCandidates(name: string, env: NodeJS.ProcessEnv): string[] {
  const home = env.HOME || homedir();
  const xdgState = env.XDG_STATE_HOME || join(home, '.local', 'state');
  const xdgConfig = env.XDG_CONFIG_HOME || join(home, '.config');
  return [
    join(xdgState, 'hermes-gateway', name, 'gateway_state.json'),
    join(xdgConfig, 'hermes-gateway', name, 'gateway_state.json'),
  ];
}

export interface InstallInstanceOptions {
  kind: TemplateKind;
  name: string;
  now?: boolean;
  force?: boolean;
  env: NodeJS.ProcessEnv;
}

/**
 * Writes the template unit (replacing our own, refusing a foreign one without `force`),
 * reloads the manager and enables (with `now`, starts) `NAME`'s unit. Resolves with the template's path and the config path
 * the unit will read, which the caller tells the user about when it does not exist yet.
 */
export async function installInstance(
  options: InstallInstanceOptions,
): Promise<{ path: string; unit: string; config: string }> {
  const template = TEMPLATES[options.kind];
  const unit = instanceUnit(options.kind, options.name);
  const config = instanceConfigPath(options.kind, options.name, options.env);
  // The template has no @CONFIG@: the unit names its config by its instance (%i).
  const { path } = await installUnit({
    config,
    unit: template.unit,
    template: template.file,
    enable: unit,
    now: options.now === true,
    force: options.force === true,
    env: options.env,
  });
  return { path, unit, config };
}
