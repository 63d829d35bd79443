import { fstatSync } from 'node:fs';
import { createRequire } from 'node:module';
import pino, { type DestinationStream, type Level, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';
import { formatTextLine } from './text-format.js';
import { scrub } from '../util/scrub.js';

export type LogLevel = Level;
export type { Logger };

/** The `log_format` setting: `auto` is `text` when stdout is the journal, JSON otherwise. */
export const LOG_FORMATS = ['auto', 'json', 'text'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * Paths pino blanks out wherever they appear. The Secret wrapper already serialises as
 * "[redacted]"; this is the second fence for raw strings that slip into a log call.
 */
export const REDACT_PATHS = [
  'client_secret',
  'clientSecret',
  'access_token',
  'token',
  'secret',
  'api_key',
  'authorization',
  '*.client_secret',
  '*.clientSecret',
  '*.access_token',
  '*.token',
  '*.secret',
  '*.api_key',
  '*.authorization',
  '*.Authorization',
  'headers.authorization',
  'headers.Authorization',
];

/** Syslog priorities journald reads from a `<N>` line prefix (sd-daemon(3)). */
const SYSLOG_PRIORITY: Record<Level, number> = {
  fatal: 3,
  error: 3,
  warn: 4,
  info: 6,
  debug: 7,
  trace: 7,
};

export interface LoggerOptions {
  level: LogLevel;
  env?: NodeJS.ProcessEnv;
  /** Where lines go; stdout by default. Tests pass their own stream. */
  destination?: DestinationStream;
  /** Forces pretty output on or off; by default only a TTY gets it (in `auto` JSON mode). */
  pretty?: boolean;
  /** `log_format`; `auto` by default (the boot logger, before the config is read). */
  format?: LogFormat;
}

/**
 * Whether stdout is journald's stream. systemd sets JOURNAL_STREAM to the `dev:inode` of the
 * stream it connected (systemd.exec(5)); a child whose stdout was redirected elsewhere inherits
 * the variable, so the variable alone does not say it, the inode comparison does.
 */
export function stdoutIsJournal(env: NodeJS.ProcessEnv, fd = 1): boolean {
  const match = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!match) return false;
  try {
    const stat = fstatSync(fd, { bigint: true });
    return stat.dev === BigInt(match[1]!) && stat.ino === BigInt(match[2]!);
  } catch {
    return false;
  }
}

/** The format lines are written in: `auto` resolved against where stdout goes. */
export function resolveLogFormat(format: LogFormat, env: NodeJS.ProcessEnv): 'json' | 'text' {
  if (format !== 'auto') return format;
  return stdoutIsJournal(env) ? 'text' : 'json';
}

/**
 * A destination that prefixes each line with `<N>` by its pino level, so that under journald
 * `journalctl -p err` finds every error line, then writes it as `format` renders it. Each
 * pino write is exactly one line, already redacted: both formats get pino's redaction.
 */
function journalDestination(
  inner: DestinationStream,
  format: (line: string) => string = (line) => line,
): DestinationStream {
  const prefixes = new Map<number, string>(
    Object.entries(SYSLOG_PRIORITY).map(([level, prio]) => [
      pino.levels.values[level]!,
      `<${prio}>`,
    ]),
  );
  return {
    write(line: string): void {
      // Cheap: pino writes "{"level":30,..." first, so the level is at a fixed offset.
      const match = /^\{"level":(\d+)/.exec(line);
      const prefix = (match && prefixes.get(Number(match[1]))) ?? '<6>';
      inner.write(prefix + format(line));
    },
  };
}

/**
 * pino-pretty, loaded only when a terminal wants it: it costs start-up time and memory, and
 * it is a dev dependency, absent from a production install (then the lines stay JSON).
 */
function prettyDestination(): DestinationStream | null {
  let build: typeof PinoPretty;
  try {
    build = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  } catch (err) {
    if ((err as { code?: unknown }).code === 'MODULE_NOT_FOUND') return null;
    throw err;
  }
  return build({ sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l' });
}

export function createLogger(options: LoggerOptions): Logger {
  const env = options.env ?? process.env;
  const base = options.destination ?? pino.destination({ dest: 1, sync: true });
  const setting = options.format ?? 'auto';
  const format = resolveLogFormat(setting, env);
  const pretty =
    options.pretty ??
    (setting === 'auto' && options.destination === undefined && process.stdout.isTTY);
  let destination: DestinationStream = base;
  // The text format is a formatter on the destination, not a transport: no worker thread,
  // lines stay synchronous and ordered, and a fatal line is out before process.exit.
  const render = format === 'text' ? formatTextLine : undefined;
  if (env.JOURNAL_STREAM) destination = journalDestination(base, render);
  else if (render) destination = { write: (line: string) => base.write(render(line)) };
  else if (pretty) destination = prettyDestination() ?? base;
  return pino(
    {
      level: options.level,
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Last fence: any form of a live secret in a finished line (src/util/scrub.ts).
      hooks: { streamWrite: scrub },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (_label, number) => ({ level: number }) },
    },
    destination,
  );
}

export { journalDestination };
