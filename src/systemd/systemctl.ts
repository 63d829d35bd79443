import { spawn } from 'node:child_process';
import { GatewayError, registerErrorCodes } from '../errors.js';

registerErrorCodes({
  /** `systemctl --user` could not reach a user manager (no session bus, no XDG_RUNTIME_DIR). */
  GW_ERR_SYSTEMD_UNREACHABLE: { kind: 'config', retryable: false },
  /** A `systemctl --user` call failed for another reason; its output is in the message. */
  GW_ERR_SYSTEMCTL_FAILED: { kind: 'config', retryable: false },
  /** `install` found a unit it did not write and was not given --force. */
  GW_ERR_UNIT_FOREIGN: { kind: 'config', retryable: false },
  /** `install`: a path for ExecStart= with a newline or control character (exit 78). */
  GW_ERR_UNIT_PATH_UNSAFE: { kind: 'config', retryable: false },
  /** `install` runs from npx's cache, which npm may clean: a unit cannot point there (exit 78). */
  GW_ERR_UNIT_PATH_EPHEMERAL: { kind: 'config', retryable: false },
  /** `status`, `doctor`: the installed unit differs from what this version writes (a warning). */
  GW_ERR_UNIT_STALE: { kind: 'config', retryable: false },
});

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion, capturing its output (bounded by the caller's timeout). */
export function capture(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 30_000,
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }),
    );
  });
}

/** Messages systemctl prints when there is no user manager to talk to. */
const UNREACHABLE =
  /Failed to connect to bus|\$DBUS_SESSION_BUS_ADDRESS|XDG_RUNTIME_DIR|No medium found|Connection refused/i;

/** `systemctl --user ARGS`; rejects with a coded error naming what to do. */
export async function systemctlUser(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<CommandResult> {
  let result: CommandResult;
  try {
    result = await capture('systemctl', ['--user', ...args], env);
  } catch (err) {
    throw new GatewayError(
      'GW_ERR_SYSTEMD_UNREACHABLE',
      `cannot run systemctl: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (result.code !== 0) {
    const output = (result.stderr || result.stdout).trim();
    if (UNREACHABLE.test(output)) {
      throw new GatewayError(
        'GW_ERR_SYSTEMD_UNREACHABLE',
        `systemctl --user cannot reach a user manager (${output.split('\n')[0]}); log in through a session with systemd (or set XDG_RUNTIME_DIR=/run/user/$(id -u))`,
        { details: { args } },
      );
    }
    throw new GatewayError(
      'GW_ERR_SYSTEMCTL_FAILED',
      `systemctl --user ${args.join(' ')} failed: ${output}`,
      {
        details: { args, exit_code: result.code },
      },
    );
  }
  return result;
}
