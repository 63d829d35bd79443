/**
 * Reading the gateway's log lines back in tests, in either `log_format`: a pino JSON object,
 * or a `text` line (`level instance message (CODE) key=value ...`) parsed back into the same
 * shape, so one assertion serves both.
 */
import type { LogLine } from './spawn-gateway.js';

const LEVELS: Record<string, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
};

/** The last ` key=value` of a line (a bare word or a double-quoted string). */
const LAST_FIELD = / ([A-Za-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|[^\s"]+)$/;
const CODE_SUFFIX = / \(([A-Z][A-Z0-9_]*)\)$/;
const HEAD = /^(trace|debug|info|warn|error|fatal) +(\S+) ([\s\S]*)$/;

/** A value as the formatter wrote it: quoted strings unescaped, numbers and literals typed. */
function readValue(raw: string): unknown {
  if (raw.startsWith('"')) return JSON.parse(raw) as string;
  if (/^-?\d+(\.\d+)?$/.test(raw) || raw === 'true' || raw === 'false' || raw === 'null') {
    return JSON.parse(raw) as unknown;
  }
  return raw;
}

/**
 * A text line (without its `<N>` prefix) as a LogLine, or undefined when it is not one.
 * Fields are read from the end, so a message may hold anything but a trailing ` k=v`.
 */
export function parseTextLine(line: string): LogLine | undefined {
  const head = HEAD.exec(line.replace(/\n$/, ''));
  if (!head) return undefined;
  let rest = head[3]!;
  const fields: Array<[string, unknown]> = [];
  for (let match = LAST_FIELD.exec(rest); match; match = LAST_FIELD.exec(rest)) {
    fields.unshift([match[1]!, readValue(match[2]!)]);
    rest = rest.slice(0, match.index);
  }
  const parsed: LogLine = { level: LEVELS[head[1]!]! };
  if (head[2] !== '-') parsed.platform = head[2];
  const code = CODE_SUFFIX.exec(rest);
  if (code) {
    parsed.code = code[1]!;
    rest = rest.slice(0, code.index);
  }
  parsed.msg = rest;
  for (const [key, value] of fields) parsed[key] = value;
  return parsed;
}

/** A gateway log line in either format, or undefined for anything else (a manager line). */
export function parseLogLine(line: string): LogLine | undefined {
  const body = line.replace(/^<\d>/, '');
  if (body.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(body);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        return parsed as LogLine;
      }
    } catch {
      return undefined;
    }
    return undefined;
  }
  return parseTextLine(body);
}
