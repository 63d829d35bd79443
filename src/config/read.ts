import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { LineCounter, isScalar, parseDocument, visit, type Document } from 'yaml';
import { GatewayError } from '../errors.js';

/** Largest config file read (docs/configuration.md): real configs are a few KiB. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Largest secret file read: a token or key is at most a few hundred bytes. */
export const MAX_SECRET_FILE_BYTES = 64 * 1024;
/** Longest piece of a value (or YAML message) quoted back in an error. */
export const MAX_QUOTED_CHARS = 120;

/** `text`, cut to `max` characters with a note of how much was left out. */
export function cutText(text: string, max = MAX_QUOTED_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more chars)`;
}

/** What to call the file in errors: the config file itself, or a secret file under a key. */
export interface FileRole {
  /** The config file (for `details.file`). */
  file: string;
  /** The key naming a secret file; absent for the config file itself. */
  key?: string | undefined;
  /** Code for a file that cannot be opened (missing, permissions). */
  unreadableCode: string;
  maxBytes: number;
}

/** A file read as text, with the status of what was read (for its mode and owner). */
export interface TextFile {
  text: string;
  stats: Stats;
}

function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Reads a config or secret file: a regular file only (a FIFO would block forever, /dev/zero
 * would never end), at most `role.maxBytes`, decoded strictly as UTF-8. The file is opened
 * non-blocking and checked through its descriptor, so what is checked is what is read.
 * Throws GatewayErrors naming the file (and the key, for a secret file):
 * `role.unreadableCode`, GW_ERR_CONFIG_FILE_NOT_REGULAR, GW_ERR_CONFIG_FILE_TOO_LARGE,
 * GW_ERR_CONFIG_FILE_ENCODING.
 */
export function readTextFile(path: string, role: FileRole): TextFile {
  const where = role.key === undefined ? path : `${role.file}: ${role.key}: ${path}`;
  const details = { file: role.file, ...(role.key !== undefined && { key: role.key, path }) };
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code ?? 'unknown';
    throw new GatewayError(role.unreadableCode, `${where}: cannot read the file (${errno})`, {
      cause: err,
      details: { ...details, errno },
    });
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) {
      throw new GatewayError(
        'GW_ERR_CONFIG_FILE_NOT_REGULAR',
        `${where}: ${kindOf(stats)}, not a regular file`,
        { details },
      );
    }
    const tooLarge = (): GatewayError =>
      new GatewayError(
        'GW_ERR_CONFIG_FILE_TOO_LARGE',
        `${where}: larger than ${role.maxBytes} bytes`,
        { details: { ...details, max_bytes: role.maxBytes } },
      );
    if (stats.size > role.maxBytes) throw tooLarge();
    // Read up to one byte past the cap: the size may have changed since fstat.
    const buffer = Buffer.alloc(role.maxBytes + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > role.maxBytes) throw tooLarge();
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(buffer.subarray(0, length));
    } catch (err) {
      throw new GatewayError('GW_ERR_CONFIG_FILE_ENCODING', `${where}: not valid UTF-8`, {
        cause: err,
        details,
      });
    }
    return { text, stats };
  } finally {
    closeSync(fd);
  }
}

/**
 * Duplicate keys, found in one pass with a set per mapping. (The parser's own `uniqueKeys`
 * compares each key with every earlier one: 40k keys took a minute.) Returns the first
 * duplicate's offset and key, or null.
 */
function firstDuplicateKey(doc: Document): { offset: number; key: string } | null {
  let found: { offset: number; key: string } | null = null;
  visit(doc, {
    Map(_, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        const key: unknown = isScalar(pair.key) ? pair.key.value : String(pair.key);
        if (seen.has(key)) {
          found = {
            offset: isScalar(pair.key) ? (pair.key.range?.[0] ?? 0) : 0,
            key: String(key),
          };
          return visit.BREAK;
        }
        seen.add(key);
      }
      return undefined;
    },
  });
  return found;
}

/**
 * The last document parsed: `run` reads its config three times before it is running (the
 * state file setting, the platforms to load, the whole config), and the YAML parse is most
 * of that time at start (docs/performance.md). Only the same text of the same file is
 * answered from here, so an edited file is parsed again.
 */
let lastParsed: { file: string; text: string; raw: Record<string, unknown> } | null = null;

/**
 * Reads and parses a config file into plain data, without validating it: the one place the
 * file is read, for `loadConfig` and for commands that need a single section. Each call
 * reads the file and returns data of its own (a copy when the text is what was parsed last).
 * Rejects with GW_ERR_CONFIG_NOT_FOUND, the file errors of `readTextFile`,
 * GW_ERR_CONFIG_PARSE (syntax, duplicate key, alias bomb) or (not a mapping)
 * GW_ERR_CONFIG_INVALID, each naming the file.
 */
export function readConfigDocument(file: string): Record<string, unknown> {
  const { text } = readTextFile(file, {
    file,
    unreadableCode: 'GW_ERR_CONFIG_NOT_FOUND',
    maxBytes: MAX_CONFIG_BYTES,
  });
  if (lastParsed !== null && lastParsed.file === file && lastParsed.text === text) {
    return structuredClone(lastParsed.raw);
  }
  const raw = parseConfigText(file, text);
  lastParsed = { file, text, raw: structuredClone(raw) };
  return raw;
}

/** The YAML text of `file` as plain data; the errors of readConfigDocument. */
function parseConfigText(file: string, text: string): Record<string, unknown> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: false, lineCounter });
  const parseError = (message: string): GatewayError =>
    new GatewayError('GW_ERR_CONFIG_PARSE', `${file}: ${message}`, { details: { file } });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const where = first.linePos?.[0] ? `line ${first.linePos[0].line}: ` : '';
    throw parseError(`${where}${first.code}: ${cutText(first.message.split('\n')[0] ?? '')}`);
  }
  const duplicate = firstDuplicateKey(doc);
  if (duplicate !== null) {
    const { line } = lineCounter.linePos(duplicate.offset);
    throw parseError(
      `line ${line}: DUPLICATE_KEY: map keys must be unique ("${cutText(duplicate.key)}")`,
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    // The parser refuses an alias bomb (aliases expanding to millions of nodes) by throwing.
    throw parseError(`ALIAS_COUNT: ${cutText(err instanceof Error ? err.message : String(err))}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new GatewayError(
      'GW_ERR_CONFIG_INVALID',
      `${file}: the top level must be a mapping of keys`,
      {
        details: { file, key: '(top level)' },
      },
    );
  }
  return raw as Record<string, unknown>;
}
