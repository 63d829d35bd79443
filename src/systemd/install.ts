import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GatewayError } from '../errors.js';
import { systemctlUser } from './systemctl.js';

export const DEFAULT_UNIT = 'hermes-gateway.service';

/** First line of every unit `install` writes; how it recognises its own files. */
export const UNIT_MARKER = '# Written by `hermes-gateway install`. Re-run it to change this file.';

const here = dirname(fileURLToPath(import.meta.url));
/** The template shipped in the package's systemd/ folder (from dist/src/systemd/). */
export const UNIT_TEMPLATE = resolve(here, '../../../systemd/hermes-gateway.service');
/** The CLI entry point the unit runs. */
export const CLI_PATH = resolve(here, '../cli/main.js');

export function userUnitDir(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(xdg, 'systemd', 'user');
}

export interface RenderValues {
  node: string;
  cli: string;
  config: string;
}

/** Fills the template's @NODE@, @CLI@ and @CONFIG@ with absolute paths. */
export function renderUnit(template: string, values: RenderValues): string {
  // systemd splits ExecStart= on spaces; quote paths that contain them.
  const quote = (path: string): string => (/\s/.test(path) ? `"${path}"` : path);
  const body = template
    .replaceAll('@NODE@', quote(values.node))
    .replaceAll('@CLI@', quote(values.cli))
    .replaceAll('@CONFIG@', quote(values.config));
  return `${UNIT_MARKER}\n${body}`;
}

export interface InstallOptions {
  config: string;
  unit?: string;
  now?: boolean;
  force?: boolean;
  env: NodeJS.ProcessEnv;
}

/** Writes the user unit, reloads the manager, enables (and with `now`, starts) it. */
export async function installUnit(options: InstallOptions): Promise<string> {
  const unit = options.unit ?? DEFAULT_UNIT;
  const dir = userUnitDir(options.env);
  const path = join(dir, unit);
  if (existsSync(path) && !options.force) {
    const current = await readFile(path, 'utf8');
    if (!current.startsWith(UNIT_MARKER)) {
      throw new GatewayError(
        'GW_ERR_UNIT_FOREIGN',
        `${path} exists and was not written by hermes-gateway; move it away or pass --force`,
        { details: { path } },
      );
    }
  }
  const template = await readFile(UNIT_TEMPLATE, 'utf8');
  const text = renderUnit(template, {
    node: process.execPath,
    cli: CLI_PATH,
    config: resolve(options.config),
  });
  await mkdir(dir, { recursive: true });
  await writeFile(path, text, { mode: 0o644 });
  await systemctlUser(['daemon-reload'], options.env);
  await systemctlUser(options.now ? ['enable', '--now', unit] : ['enable', unit], options.env);
  return path;
}

export interface UninstallOptions {
  unit?: string;
  force?: boolean;
  env: NodeJS.ProcessEnv;
}

/** Stops, disables and removes the unit; resolves with the removed path, or null if none. */
export async function uninstallUnit(options: UninstallOptions): Promise<string | null> {
  const unit = options.unit ?? DEFAULT_UNIT;
  const path = join(userUnitDir(options.env), unit);
  if (!existsSync(path)) return null;
  const current = await readFile(path, 'utf8');
  if (!current.startsWith(UNIT_MARKER) && !options.force) {
    throw new GatewayError(
      'GW_ERR_UNIT_FOREIGN',
      `${path} was not written by hermes-gateway; pass --force to remove it anyway`,
      { details: { path } },
    );
  }
  await systemctlUser(['disable', '--now', unit], options.env);
  // A unit that had failed (exit 78) stays `failed` in the manager after its file is gone,
  // listed by `systemctl --user --failed` and keeping the session `degraded`. Best effort:
  // reset-failed refuses a unit the manager has already unloaded, which is just as good.
  await systemctlUser(['reset-failed', unit], options.env).catch(() => undefined);
  await rm(path);
  await systemctlUser(['daemon-reload'], options.env);
  return path;
}
