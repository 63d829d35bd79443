import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { GatewayError } from '../errors.js';

/**
 * Reads and parses a config file into plain data, without validating it: the one place the
 * file is read, for `loadConfig` and for commands that need a single section.
 * Rejects with GW_ERR_CONFIG_NOT_FOUND, GW_ERR_CONFIG_PARSE or (not a mapping)
 * GW_ERR_CONFIG_INVALID, each naming the file.
 */
export function readConfigDocument(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code ?? 'unknown';
    throw new GatewayError(
      'GW_ERR_CONFIG_NOT_FOUND',
      `${file}: cannot read config file (${errno})`,
      {
        cause: err,
        details: { file, errno },
      },
    );
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const where = first.linePos?.[0] ? `line ${first.linePos[0].line}: ` : '';
    throw new GatewayError(
      'GW_ERR_CONFIG_PARSE',
      `${file}: ${where}${first.code}: ${first.message.split('\n')[0]}`,
      {
        details: { file },
      },
    );
  }
  const raw: unknown = doc.toJS() ?? {};
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
