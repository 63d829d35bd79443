/**
 * In-process doubles for the runner's collaborators that are not under test: a pino logger
 * writing into an array, and a notifier that records what it would have sent to systemd.
 */
import type { DestinationStream } from 'pino';
import { createLogger, type Logger, type LogLevel } from '../../src/log/logger.js';
import type { Notifier } from '../../src/systemd/notify.js';
import type { LogLine } from './spawn-gateway.js';

export interface CapturedLog {
  log: Logger;
  /** Every line, parsed. */
  lines: LogLine[];
  /** Every line as pino wrote it. */
  raw: string[];
}

/** A real pino logger (the product's own configuration) whose lines land in memory. */
export function captureLogger(level: LogLevel = 'debug', env: NodeJS.ProcessEnv = {}): CapturedLog {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const destination: DestinationStream = {
    write(line: string): void {
      raw.push(line);
      const match = /^<\d>/.exec(line);
      lines.push(JSON.parse(match ? line.slice(match[0].length) : line) as LogLine);
    },
  };
  return { log: createLogger({ level, env, destination, pretty: false }), lines, raw };
}

export interface RecordingNotifier extends Notifier {
  readonly sent: Array<{ kind: 'ready' | 'status' | 'watchdog' | 'stopping'; status?: string }>;
}

/** A notifier that sends nothing and remembers every call. */
export function recordingNotifier(watchdogPingMs: number | null = null): RecordingNotifier {
  const sent: RecordingNotifier['sent'] = [];
  return {
    enabled: false,
    watchdogPingMs,
    sent,
    ready: (status) => sent.push({ kind: 'ready', status }),
    status: (status) => sent.push({ kind: 'status', status }),
    watchdog: () => sent.push({ kind: 'watchdog' }),
    stopping: (status) => sent.push({ kind: 'stopping', status }),
  };
}
