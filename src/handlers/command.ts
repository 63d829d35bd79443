import { spawn } from 'node:child_process';
import type { InboundEvent } from '../adapters/contract.js';
import { Secret } from '../config/secret.js';
import { GatewayError } from '../errors.js';
import type { CommandHandlerConfig } from './config.js';
import type { Handler, HandlerDeps, Reply } from './handler.js';
import './errors.js';

/** Variables a child inherits from the gateway; anything else (credentials!) stays out. */
const INHERITED_ENV = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'];

/** How much of stderr is kept for the log line of a failed command. */
const STDERR_KEEP_BYTES = 2048;

function childEnv(config: CommandHandlerConfig, event: InboundEvent): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of INHERITED_ENV) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  env.HERMES_EVENT_ID = event.id;
  env.HERMES_PLATFORM = event.platform;
  env.HERMES_CHAT_TYPE = event.chat.type;
  env.HERMES_CHAT_ID = event.chat.id;
  for (const [name, value] of Object.entries(config.env)) {
    env[name] = value instanceof Secret ? value.reveal() : value;
  }
  return env;
}

/** Signals the child's whole process group (it was started as a group leader). */
function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/**
 * Runs `argv` (no shell) with the event as one line of JSON on stdin; its stdout, without
 * trailing whitespace, is the reply (empty: no reply). The command runs in its own process
 * group, so on a timeout, an oversized output or a stop, the whole group gets SIGTERM and,
 * after `kill_grace_ms`, SIGKILL. The command's exit decides the outcome: once it exited,
 * its output is read until the pipes close or `output_drain_ms` passed, whichever is first;
 * then what is left of its group (a descendant holding stdout) is killed. `handle` settles
 * only once the child has exited.
 */
export function createCommandHandler(config: CommandHandlerConfig, _deps: HandlerDeps): Handler {
  const [file, ...args] = config.argv as [string, ...string[]];
  return {
    type: 'command',
    handle(event, signal): Promise<Reply[]> {
      return new Promise<Reply[]>((resolve, reject) => {
        if (signal.aborted) {
          reject(new GatewayError('GW_ERR_HANDLER_CANCELLED', 'handler cancelled: stopping'));
          return;
        }
        const child = spawn(file, args, {
          cwd: config.cwd,
          env: childEnv(config, event),
          stdio: ['pipe', 'pipe', 'pipe'],
          detached: true,
        });
        const stdout: Buffer[] = [];
        let stdoutBytes = 0;
        let stderr = '';
        let failure: GatewayError | null = null;
        let exited = false;
        let killing = false;
        let graceTimer: NodeJS.Timeout | null = null;
        let drainTimer: NodeJS.Timeout | null = null;
        let settled = false;

        const stop = (why: GatewayError): void => {
          failure ??= why;
          if (killing) return;
          killing = true;
          killGroup(child.pid, 'SIGTERM');
          graceTimer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), config.kill_grace_ms);
          // A leader that is already gone cannot close pipes a stray holder keeps open.
          if (exited) destroyStreams();
        };
        const destroyStreams = (): void => {
          child.stdout.destroy();
          child.stderr.destroy();
        };
        const onAbort = (): void =>
          stop(new GatewayError('GW_ERR_HANDLER_CANCELLED', 'handler cancelled: stopping'));
        const timer = setTimeout(() => {
          stop(
            new GatewayError(
              'GW_ERR_HANDLER_COMMAND_TIMEOUT',
              `command ${file} did not finish within ${config.timeout_ms} ms; killed`,
              { details: { command: file, timeout_ms: config.timeout_ms } },
            ),
          );
        }, config.timeout_ms);
        signal.addEventListener('abort', onAbort, { once: true });

        const settle = (err: GatewayError | null, replies: Reply[] = []): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (graceTimer !== null) clearTimeout(graceTimer);
          if (drainTimer !== null) clearTimeout(drainTimer);
          signal.removeEventListener('abort', onAbort);
          // Whatever of the group outlived its leader gets no grace period.
          if (killing) killGroup(child.pid, 'SIGKILL');
          if (err) reject(err);
          else resolve(replies);
        };

        child.stdout.on('data', (chunk: Buffer) => {
          stdoutBytes += chunk.length;
          if (stdoutBytes > config.max_output_bytes) {
            stop(
              new GatewayError(
                'GW_ERR_HANDLER_RESPONSE_TOO_LARGE',
                `command ${file} wrote more than ${config.max_output_bytes} bytes; killed`,
                { details: { command: file, max_output_bytes: config.max_output_bytes } },
              ),
            );
            return;
          }
          stdout.push(chunk);
        });
        child.stderr.on('data', (chunk: Buffer) => {
          if (stderr.length < STDERR_KEEP_BYTES) {
            stderr += chunk.toString('utf8').slice(0, STDERR_KEEP_BYTES - stderr.length);
          }
        });
        // A command that does not read its stdin makes this write fail with EPIPE: harmless.
        child.stdin.on('error', () => undefined);
        child.stdin.end(`${JSON.stringify(event)}\n`);

        child.on('exit', () => {
          exited = true;
          if (killing) {
            destroyStreams();
            return;
          }
          // The command is done: its timeout no longer applies, only a bounded drain of
          // what it wrote. A descendant that inherited stdout would otherwise keep 'close'
          // from ever coming.
          clearTimeout(timer);
          drainTimer = setTimeout(() => {
            killing = true;
            killGroup(child.pid, 'SIGKILL');
            destroyStreams();
          }, config.output_drain_ms);
        });
        child.on('error', (err: NodeJS.ErrnoException) => {
          // Only a failed spawn gets here before 'close'; a kill failure is ignored above.
          if (child.pid !== undefined) return;
          settle(
            new GatewayError(
              'GW_ERR_HANDLER_COMMAND_SPAWN',
              `cannot start command ${file}: ${err.code ?? err.message}`,
              { cause: err, details: { command: file, errno: err.code ?? null } },
            ),
          );
        });
        child.on('close', (code, signalName) => {
          if (failure) {
            settle(failure);
            return;
          }
          if (code !== 0) {
            const how = code === null ? `was killed by ${signalName}` : `exited with ${code}`;
            settle(
              new GatewayError('GW_ERR_HANDLER_COMMAND_EXIT', `command ${file} ${how}`, {
                details: {
                  command: file,
                  exit_code: code,
                  signal: signalName,
                  stderr: stderr.trim(),
                },
              }),
            );
            return;
          }
          const text = Buffer.concat(stdout).toString('utf8').replace(/\s+$/, '');
          settle(null, text === '' ? [] : [{ text }]);
        });
      });
    },
  };
}
