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

function unsafePath(path: string, what: string, why: string): GatewayError {
  return new GatewayError(
    'GW_ERR_UNIT_PATH_UNSAFE',
    `the ${what} path ${JSON.stringify(path)} ${why}; a unit file cannot hold it safely: move it`,
    { details: { path, what } },
  );
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * One ExecStart= word (systemd.service(5) "Command lines", systemd.unit(5) "Specifiers"):
 * specifiers are resolved first (`%` → `%%`), then the line is split into words, where a
 * double-quoted word takes C escapes (`\\`, `\"`); in arguments `$` expands variables
 * (`$` → `$$`), in the executable it does not. A newline would end the line and start a
 * directive of its own, so control characters are refused, not escaped.
 */
function execWord(path: string, what: string, executable: boolean): string {
  if (CONTROL.test(path)) throw unsafePath(path, what, 'contains a newline or control character');
  // systemd refuses an executable name with these even when escaped ("special characters").
  if (executable && /["\\]/.test(path)) throw unsafePath(path, what, 'contains " or \\');
  let word = path.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('%', '%%');
  if (!executable) word = word.replaceAll('$', '$$$$');
  return word === path && !/[\s';]/.test(path) ? path : `"${word}"`;
}

/**
 * Fills the template's @NODE@, @CLI@ and @CONFIG@ with absolute paths, escaped for
 * ExecStart=. Throws GW_ERR_UNIT_PATH_UNSAFE (exit 78) for a path no unit file can hold.
 */
export function renderUnit(template: string, values: RenderValues): string {
  const node = execWord(values.node, 'node', true);
  const cli = execWord(values.cli, 'CLI', false);
  const config = execWord(values.config, 'config', false);
  // Functions, not strings: a replacement string would read `$$` as `$` and undo the escape.
  const body = template
    .replaceAll('@NODE@', () => node)
    .replaceAll('@CLI@', () => cli)
    .replaceAll('@CONFIG@', () => config);
  return `${UNIT_MARKER}\n${body}`;
}

export interface InstallOptions {
  config: string;
  unit?: string;
  /** The unit file's template (systemd/hermes-gateway.service by default). */
  template?: string;
  /** The unit to enable, when not `unit` itself (an instance of a template unit). */
  enable?: string;
  now?: boolean;
  force?: boolean;
  /** `install --socket LISTEN`: also write and enable the socket unit (see renderSocketUnit()). */
  socket?: string;
  env: NodeJS.ProcessEnv;
}

/**
 * Throws GW_ERR_UNIT_FOREIGN when `path` exists and `install` did not write it (the socket
 * unit's check; installUnit keeps its own inline copy until the packaging change lands).
 */
async function refuseForeign(path: string): Promise<void> {
  if (!existsSync(path)) return;
  if ((await readFile(path, 'utf8')).startsWith(UNIT_MARKER)) return;
  throw new GatewayError(
    'GW_ERR_UNIT_FOREIGN',
    `${path} exists and was not written by hermes-gateway; move it away or pass --force`,
    { details: { path } },
  );
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
  const template = await readFile(options.template ?? UNIT_TEMPLATE, 'utf8');
  const text = renderUnit(template, {
    node: process.execPath,
    cli: CLI_PATH,
    config: resolve(options.config),
  });
  await mkdir(dir, { recursive: true });
  await writeFile(path, text, { mode: 0o644 });
  const socket = options.socket === undefined ? null : await writeSocketUnit(dir, unit, options);
  await systemctlUser(['daemon-reload'], options.env);
  // The socket first: a service started after it gets its listener passed (LISTEN_FDS).
  if (socket !== null) {
    await systemctlUser(
      options.now ? ['enable', '--now', socket] : ['enable', socket],
      options.env,
    );
  }
  const enable = options.enable ?? unit;
  await systemctlUser(options.now ? ['enable', '--now', enable] : ['enable', enable], options.env);
  return path;
}

/** `hermes-gateway.service` -> `hermes-gateway.socket`: a socket unit passes its listener to the service of its own name. */
export function socketUnitName(unit: string): string {
  return `${unit.replace(/\.service$/, '')}.socket`;
}

/**
 * The socket unit for `install --socket LISTEN` (systemd.socket(5)): systemd binds the webhook
 * address and hands it to the gateway, so callbacks that arrive during a restart wait in the
 * kernel's queue (up to its backlog) and the gateway needs no right to bind a privileged port. LISTEN must be the
 * `webhook.listen` of the config, written the same way: that is how the gateway matches them.
 */
export function renderSocketUnit(unit: string, listen: string): string {
  if (CONTROL.test(listen) || /\s/.test(listen) || listen === '') {
    throw unsafePath(listen, 'socket', 'is not one address');
  }
  const address = listen.startsWith('unix:') ? listen.slice('unix:'.length) : listen;
  const lines = [
    UNIT_MARKER,
    '# Socket activation of the webhook listener (docs/platforms/qqbot.md, "Webhook").',
    '[Unit]',
    'Description=hermes-gateway webhook listener',
    '',
    '[Socket]',
    `ListenStream=${address.replaceAll('%', '%%')}`,
    // A unix socket is reached by the reverse proxy's user; requests are verified anyway.
    ...(address.startsWith('/') ? ['SocketMode=0666'] : []),
    `Service=${unit}`,
    '',
    '[Install]',
    'WantedBy=sockets.target',
    '',
  ];
  return lines.join('\n');
}

async function writeSocketUnit(
  dir: string,
  unit: string,
  options: InstallOptions,
): Promise<string> {
  const name = socketUnitName(unit);
  const path = join(dir, name);
  if (!options.force) await refuseForeign(path);
  await writeFile(path, renderSocketUnit(unit, options.socket!), { mode: 0o644 });
  return name;
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
  await removeSocketUnit(unit, options.env);
  // A unit that had failed (exit 78) stays `failed` in the manager after its file is gone,
  // listed by `systemctl --user --failed` and keeping the session `degraded`. Best effort:
  // reset-failed refuses a unit the manager has already unloaded, which is just as good.
  await systemctlUser(['reset-failed', unit], options.env).catch(() => undefined);
  await rm(path);
  await systemctlUser(['daemon-reload'], options.env);
  return path;
}

/** Stops, disables and removes the socket unit `install --socket` wrote, if there is one. */
async function removeSocketUnit(unit: string, env: NodeJS.ProcessEnv): Promise<void> {
  const name = socketUnitName(unit);
  const path = join(userUnitDir(env), name);
  if (!existsSync(path) || !(await readFile(path, 'utf8')).startsWith(UNIT_MARKER)) return;
  await systemctlUser(['disable', '--now', name], env);
  await rm(path);
}
