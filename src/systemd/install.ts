import { existsSync, realpathSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { GatewayError } from '../errors.js';
import { CLI_FROM_ROOT, packageRoot } from '../util/package-root.js';
import { capture, systemctlUser } from './systemctl.js';
import { DEFAULT_UNIT } from './unit-name.js';

export { DEFAULT_UNIT };

/** First line of every unit `install` writes; how it recognises its own files. */
export const UNIT_MARKER = '# Written by `hermes-gateway install`. Re-run it to change this file.';

/**
 * The line after the marker: what `install` was given (the config path), as JSON, so that
 * `status` and `doctor` can render what this version would write for the same install and
 * compare it with the installed file.
 */
const INSTALL_LINE = '# hermes-gateway-install: ';

/** Each template's first line carries its version (bumped with every change of the template). */
const TEMPLATE_VERSION_LINE = /^# hermes-gateway-unit-template: (\d+)$/m;

/** The package's root folder. */
export const PACKAGE_ROOT = packageRoot();
/** The template shipped in the package's systemd/ folder. */
export const UNIT_TEMPLATE = join(PACKAGE_ROOT, 'systemd', 'hermes-gateway.service');
/** The CLI entry point, where this copy of the package has it. */
export const CLI_PATH = join(PACKAGE_ROOT, CLI_FROM_ROOT);

function realpathOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * The path of the CLI that a unit can keep across upgrades. Started through a link to this
 * very CLI (npm's global bin link `<prefix>/bin/hermes-gateway`, pnpm's shim target), that
 * link: `npm install -g` replaces what it points to, never the link. Otherwise (a clone, run
 * as `node dist/src/cli/main.js`) the CLI's own path, which `git pull` keeps. npx's cache is
 * refused (GW_ERR_UNIT_PATH_EPHEMERAL): npm may clean or replace it at any time.
 */
export function stableCliPath(invokedAs: string | undefined = process.argv[1]): string {
  const real = realpathOrSelf(CLI_PATH);
  let cli = CLI_PATH;
  if (invokedAs && isAbsolute(invokedAs) && invokedAs !== real) {
    if (realpathOrSelf(invokedAs) === real) cli = invokedAs;
  }
  if (real.split('/').includes('_npx')) {
    throw new GatewayError(
      'GW_ERR_UNIT_PATH_EPHEMERAL',
      `hermes-gateway runs from npx's cache (${real}), which npm cleans and replaces: a unit cannot point there; install it globally first (npm install -g ./hermes-gateway-<version>.tgz), then run hermes-gateway install`,
      { details: { path: real } },
    );
  }
  return cli;
}

export function userUnitDir(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(xdg, 'systemd', 'user');
}

export interface RenderValues {
  node: string;
  cli: string;
  config: string;
}

/** The template version a unit text carries (a unit written before versions: 1). */
export function templateVersion(text: string): number {
  const match = TEMPLATE_VERSION_LINE.exec(text);
  return match ? Number(match[1]) : 1;
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
  const install = JSON.stringify({ config: values.config });
  return `${UNIT_MARKER}\n${INSTALL_LINE}${install}\n${body}`;
}

/** The inverse of execWord for an argument: the path a `--config` word in ExecStart= names. */
function unescapeExecWord(word: string): string {
  const quoted = /^"((?:[^"\\]|\\.)*)"$/.exec(word);
  const inner = quoted ? quoted[1]!.replace(/\\(.)/g, '$1') : word;
  return inner.replaceAll('%%', '%').replaceAll('$$', '$');
}

/**
 * What `install` was given for an installed unit of ours: the install line, or for a unit
 * written before it existed (template 1), the `--config` word of its ExecStart=.
 */
function installedValues(text: string): { config: string } | null {
  const line = text.split('\n')[1] ?? '';
  if (line.startsWith(INSTALL_LINE)) {
    try {
      const value = JSON.parse(line.slice(INSTALL_LINE.length)) as { config?: unknown };
      return typeof value.config === 'string' ? { config: value.config } : null;
    } catch {
      return null;
    }
  }
  const exec = /^ExecStart=.* run --config ("(?:[^"\\]|\\.)*"|\S+)$/m.exec(text);
  return exec ? { config: unescapeExecWord(exec[1]!) } : null;
}

/** The service unit this version writes for `config`. */
export async function renderServiceUnit(
  config: string,
  templateFile: string = UNIT_TEMPLATE,
): Promise<string> {
  const template = await readFile(templateFile, 'utf8');
  return renderUnit(template, {
    node: process.execPath,
    cli: stableCliPath(),
    config: resolve(config),
  });
}

/** Where a user unit of this name lives. */
export function userUnitPath(unit: string, env: NodeJS.ProcessEnv): string {
  return join(userUnitDir(env), unit);
}

/** How an installed unit compares with what this version would write. */
export interface UnitInspection {
  unit: string;
  path: string;
  /** `missing`: no file; `foreign`: not written by install; `stale`: differs; `current`. */
  state: 'missing' | 'foreign' | 'stale' | 'current';
  /** Template version of the installed file (null when missing or foreign). */
  installed_template: number | null;
  /** Template version this version of hermes-gateway writes. */
  template: number;
  /** The config path the unit was installed with, when it says. */
  config: string | null;
  /** The command that rewrites it (null when current or missing). */
  refresh: string | null;
}

/** Quotes a word for a POSIX shell when it needs it. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * Compares the installed unit with what `install` would write now for the same config: a
 * different template, node, CLI path or config makes it `stale`, with the command that
 * refreshes it. Resolves; rejects only when the template cannot be read.
 */
export async function inspectServiceUnit(
  unit: string,
  env: NodeJS.ProcessEnv,
): Promise<UnitInspection> {
  const path = userUnitPath(unit, env);
  const template = templateVersion(await readFile(UNIT_TEMPLATE, 'utf8'));
  const base = { unit, path, template, installed_template: null, config: null, refresh: null };
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return { ...base, state: 'missing' };
  }
  if (!text.startsWith(UNIT_MARKER)) return { ...base, state: 'foreign' };
  const values = installedValues(text);
  const installed = {
    ...base,
    installed_template: templateVersion(text),
    config: values?.config ?? null,
  };
  let expected: string | null = null;
  if (values) {
    try {
      expected = await renderServiceUnit(values.config);
    } catch {
      // Paths this version cannot write (npx's cache): the installed unit cannot be current.
    }
  }
  if (expected === text) return { ...installed, state: 'current' };
  const args = ['hermes-gateway', 'install', '--force'];
  if (values) args.push('--config', values.config);
  if (unit !== DEFAULT_UNIT) args.push('--unit', unit);
  return { ...installed, state: 'stale', refresh: args.map(shellWord).join(' ') };
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

/** What writing one unit file did. */
export interface WrittenUnit {
  unit: string;
  path: string;
  /** False when the file already held exactly this text. */
  changed: boolean;
}

/**
 * Writes one unit file of ours, refusing (GW_ERR_UNIT_FOREIGN) to replace a file install did
 * not write unless `force`. Every unit kind install writes goes through here.
 */
export async function writeUnitFile(
  unit: string,
  text: string,
  options: { force?: boolean | undefined; env: NodeJS.ProcessEnv },
): Promise<WrittenUnit> {
  const path = userUnitPath(unit, options.env);
  let current: string | null = null;
  if (existsSync(path)) {
    current = await readFile(path, 'utf8');
    if (!current.startsWith(UNIT_MARKER) && !options.force) {
      throw new GatewayError(
        'GW_ERR_UNIT_FOREIGN',
        `${path} exists and was not written by hermes-gateway; move it away or pass --force`,
        { details: { path } },
      );
    }
  }
  if (current === text) return { unit, path, changed: false };
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text, { mode: 0o644 });
  return { unit, path, changed: true };
}

/** Whether the manager runs the unit now (`systemctl --user is-active`: exit 0). */
async function isActive(unit: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const result = await capture('systemctl', ['--user', 'is-active', '--quiet', unit], env).catch(
    () => null,
  );
  return result?.code === 0;
}

export interface InstallResult {
  path: string;
  /** The unit file's text changed (a fresh install or a refresh). */
  changed: boolean;
  /** It was running with the old file and was restarted on the new one. */
  restarted: boolean;
  /** It was running before install. */
  wasActive: boolean;
}

/**
 * Writes the user unit, reloads the manager, enables (and with `now`, starts) it. A unit that
 * was running and whose file changed (a refresh after an upgrade) is restarted, so it runs
 * what the file says; one that was stopped stays stopped (unless `now`). The restart is
 * systemd's: a clean stop (SIGTERM, the gateway's drain) before the start.
 */
export async function installUnit(options: InstallOptions): Promise<InstallResult> {
  const unit = options.unit ?? DEFAULT_UNIT;
  // The unit that runs: `unit` itself, or an instance of a template unit (`enable`).
  const enable = options.enable ?? unit;
  const text = await renderServiceUnit(options.config, options.template);
  const wasActive = await isActive(enable, options.env);
  const written = await writeUnitFile(unit, text, options);
  const socket =
    options.socket === undefined
      ? null
      : await writeUnitFile(socketUnitName(unit), renderSocketUnit(unit, options.socket), options);
  await systemctlUser(['daemon-reload'], options.env);
  // The socket first: a service started after it gets its listener passed (LISTEN_FDS).
  if (socket !== null) {
    await systemctlUser(
      options.now ? ['enable', '--now', socket.unit] : ['enable', socket.unit],
      options.env,
    );
  }
  await systemctlUser(options.now ? ['enable', '--now', enable] : ['enable', enable], options.env);
  const restarted = written.changed && wasActive;
  // try-restart: only if it is still running (a stop in between is respected).
  if (restarted) await systemctlUser(['try-restart', enable], options.env);
  return { path: written.path, changed: written.changed, restarted, wasActive };
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
