/**
 * The `text` log format: one pino JSON line rewritten as `level instance message (CODE)
 * key=value ...`, for people reading the journal. journald already records the time, the
 * pid and the host, so they are dropped here.
 */

/** Fields that have their own column, or that journald records anyway (`code` and `platform`
 * have theirs too when they are strings). */
const OWN_COLUMN = new Set(['level', 'time', 'pid', 'hostname', 'msg']);

/** pino's numeric levels, by name for the level column. */
const LEVEL_NAMES = new Map<number, string>([
  [10, 'trace'],
  [20, 'debug'],
  [30, 'info'],
  [40, 'warn'],
  [50, 'error'],
  [60, 'fatal'],
]);

/**
 * Characters that would split one event over several journal lines or reach a terminal as
 * a control sequence: C0 and C1 controls, DEL and the Unicode line separators.
 */
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
/** A value needs quotes when it is empty or has a space, a quote, `=` or anything escaped. */
// eslint-disable-next-line no-control-regex
const NEEDS_QUOTES = /^$|[\s"=\\\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

function escapeChar(char: string): string {
  switch (char) {
    case '\n':
      return '\\n';
    case '\r':
      return '\\r';
    case '\t':
      return '\\t';
    default:
      return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
  }
}

/** Free text (the message, the instance): controls escaped, nothing else touched. */
export function escapeText(text: string): string {
  return text.replace(UNPRINTABLE, escapeChar);
}

/** A `key=value` value: bare when it is a plain word, else double-quoted with escapes. */
export function quoteValue(value: string): string {
  if (!NEEDS_QUOTES.test(value)) return value;
  return `"${value.replace(/["\\]/g, (c) => `\\${c}`).replace(UNPRINTABLE, escapeChar)}"`;
}

/** Appends `key=value` pairs for one field; objects become dotted keys (`err.message=...`). */
function pushFields(out: string[], key: string, value: unknown, depth: number): void {
  if (value === undefined) return;
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && depth < 3) {
    for (const [k, v] of Object.entries(value)) pushFields(out, `${key}.${k}`, v, depth + 1);
    return;
  }
  // A list of words reads better as `a,b` than as JSON; anything richer stays JSON.
  const words =
    Array.isArray(value) && value.every((v) => typeof v === 'string' || typeof v === 'number');
  const text = typeof value === 'string' ? value : words ? value.join(',') : JSON.stringify(value);
  out.push(`${escapeText(key)}=${quoteValue(text)}`);
}

/**
 * One text line (with its trailing newline) from one pino JSON line. A line that is not a
 * JSON object is passed on as it came, so nothing pino writes is ever lost.
 */
export function formatTextLine(json: string): string {
  let record: unknown;
  try {
    record = JSON.parse(json);
  } catch {
    return json;
  }
  if (record === null || typeof record !== 'object' || Array.isArray(record)) return json;
  const fields = record as Record<string, unknown>;
  const level =
    typeof fields.level === 'number'
      ? (LEVEL_NAMES.get(fields.level) ?? String(fields.level))
      : '-';
  const instance = typeof fields.platform === 'string' && fields.platform ? fields.platform : '-';
  let line = `${level.padEnd(5)} ${escapeText(instance)} ${escapeText(typeof fields.msg === 'string' ? fields.msg : '')}`;
  if (typeof fields.code === 'string') line += ` (${escapeText(fields.code)})`;
  const rest: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (OWN_COLUMN.has(key)) continue;
    if ((key === 'code' || key === 'platform') && typeof value === 'string') continue;
    pushFields(rest, key, value, 0);
  }
  if (rest.length > 0) line += ` ${rest.join(' ')}`;
  return `${line}\n`;
}
