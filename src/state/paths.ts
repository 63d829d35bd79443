import { homedir } from 'node:os';
import { join } from 'node:path';

/** Default location of gateway_state.json (DESIGN §4), before config and flags override it. */
export function defaultStatePath(env: NodeJS.ProcessEnv = process.env): string {
  // systemd sets STATE_DIRECTORY from StateDirectory=; it may list several paths.
  const stateDirectory = env.STATE_DIRECTORY?.split(':')[0];
  if (stateDirectory) return join(stateDirectory, 'gateway_state.json');
  const xdgState = env.XDG_STATE_HOME || join(env.HOME || homedir(), '.local', 'state');
  return join(xdgState, 'hermes-gateway', 'gateway_state.json');
}
