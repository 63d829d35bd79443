import { lstatSync, statSync, type Stats } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { GatewayError } from '../errors.js';

/** Default location of gateway_state.json (DESIGN §4), before config and flags override it. */
export function defaultStatePath(env: NodeJS.ProcessEnv = process.env): string {
  // systemd sets STATE_DIRECTORY from StateDirectory=; it may list several paths.
  const stateDirectory = env.STATE_DIRECTORY?.split(':')[0];
  if (stateDirectory) return join(stateDirectory, 'gateway_state.json');
  const xdgState = env.XDG_STATE_HOME || join(env.HOME || homedir(), '.local', 'state');
  return join(xdgState, 'hermes-gateway', 'gateway_state.json');
}

/**
 * Refuses a state path the gateway must not write through (GW_ERR_STATE_PATH_UNSAFE): a
 * symlink (the atomic rename would replace its target, wherever it points), anything but a
 * regular file, or a directory owned by another user (who could plant such a link). A missing
 * file or directory is fine: the store creates them, owned by us.
 */
export function checkStatePath(path: string): void {
  const unsafe = (why: string): never => {
    throw new GatewayError('GW_ERR_STATE_PATH_UNSAFE', `state file ${path}: ${why}`, {
      details: { path },
    });
  };
  const entry = lstatOrNull(path);
  if (entry?.isSymbolicLink()) unsafe('is a symlink; refusing to write through it');
  if (entry && !entry.isFile()) unsafe('is not a regular file');
  const dir = dirname(path);
  let owner: number;
  try {
    owner = statSync(dir).uid;
  } catch {
    return;
  }
  const uid = process.getuid?.();
  if (uid !== undefined && owner !== uid) {
    unsafe(`its directory ${dir} is owned by uid ${owner}, not by this user (uid ${uid})`);
  }
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}
