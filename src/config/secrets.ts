import { isAbsolute, join, resolve } from 'node:path';
import { GatewayError } from '../errors.js';
import { interpolate, isWholeReference } from './interpolate.js';
import { MAX_SECRET_FILE_BYTES, readTextFile } from './read.js';
import { Secret } from './secret.js';

/** Keys whose values are secrets wherever they appear in the config. */
export const SECRET_KEYS = new Set([
  'client_secret',
  'secret',
  'api_key',
  'token',
  'bot_token',
  // The broker's (handler type nats, worker): a password and a creds file's content.
  'password',
  'creds',
  // Telegram's webhook.secret_token (the X-Telegram-Bot-Api-Secret-Token header).
  'secret_token',
]);

interface WalkContext {
  env: NodeJS.ProcessEnv;
  file: string;
  baseDir: string;
  /** Problems that do not stop the gateway (a secret file others can read). */
  warnings: GatewayError[];
}

function readSecretFile(
  path: string,
  keyPath: string,
  ctx: WalkContext,
  checkMode: boolean,
): Secret {
  const { text, stats } = readTextFile(path, {
    file: ctx.file,
    key: keyPath,
    unreadableCode: 'GW_ERR_CONFIG_SECRET_UNREADABLE',
    maxBytes: MAX_SECRET_FILE_BYTES,
  });
  // Systemd credentials live in a directory only the service can enter: only *_file is checked.
  if (checkMode && (stats.mode & 0o077) !== 0) {
    const mode = (stats.mode & 0o777).toString(8).padStart(4, '0');
    ctx.warnings.push(
      new GatewayError(
        'GW_ERR_CONFIG_SECRET_FILE_MODE',
        `${ctx.file}: ${keyPath}: secret file ${path} is open to group or others (mode ${mode}): chmod 600 it`,
        { details: { key: keyPath, file: ctx.file, path, mode } },
      ),
    );
  }
  // Files written by editors and `echo` end in a newline that is not part of the secret.
  const value = text.replace(/\r?\n$/, '');
  if (value === '') {
    throw new GatewayError(
      'GW_ERR_CONFIG_SECRET_UNREADABLE',
      `${ctx.file}: ${keyPath}: secret file ${path} is empty`,
      { details: { key: keyPath, file: ctx.file, path } },
    );
  }
  return new Secret(value);
}

function join_(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function resolveObject(
  obj: Record<string, unknown>,
  path: string,
  ctx: WalkContext,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(obj)) {
    const keyPath = join_(path, key);
    const fileMatch = /^(.*)_(file|credential)$/.exec(key);
    if (fileMatch && SECRET_KEYS.has(fileMatch[1]!)) {
      const base = fileMatch[1]!;
      const kind = fileMatch[2]!;
      if (typeof raw !== 'string' || raw === '') {
        throw new GatewayError(
          'GW_ERR_CONFIG_INVALID',
          `${ctx.file}: ${keyPath}: expected a non-empty string`,
          {
            details: { key: keyPath, file: ctx.file },
          },
        );
      }
      if ([base, `${base}_file`, `${base}_credential`].filter((k) => k in obj).length > 1) {
        throw new GatewayError(
          'GW_ERR_CONFIG_INVALID',
          `${ctx.file}: ${keyPath}: give only one of ${base}, ${base}_file and ${base}_credential`,
          { details: { key: keyPath, file: ctx.file } },
        );
      }
      const value = interpolate(raw, ctx.env, keyPath, ctx.file);
      let secretPath: string;
      if (kind === 'file') {
        secretPath = isAbsolute(value) ? value : resolve(ctx.baseDir, value);
      } else {
        const dir = ctx.env.CREDENTIALS_DIRECTORY;
        if (!dir) {
          throw new GatewayError(
            'GW_ERR_CONFIG_SECRET_UNREADABLE',
            `${ctx.file}: ${keyPath}: CREDENTIALS_DIRECTORY is not set (is LoadCredential= in the unit?)`,
            { details: { key: keyPath, file: ctx.file } },
          );
        }
        if (value.includes('/')) {
          throw new GatewayError(
            'GW_ERR_CONFIG_INVALID',
            `${ctx.file}: ${keyPath}: a credential name has no "/"`,
            {
              details: { key: keyPath, file: ctx.file },
            },
          );
        }
        secretPath = join(dir, value);
      }
      out[base] = readSecretFile(secretPath, keyPath, ctx, kind === 'file');
      continue;
    }
    if (SECRET_KEYS.has(key)) {
      if (typeof raw !== 'string' || !isWholeReference(raw)) {
        // DESIGN §6: a secret is never only inline in a file that gets copied and shared.
        throw new GatewayError(
          'GW_ERR_CONFIG_SECRET_INLINE',
          `${ctx.file}: ${keyPath}: a secret must come from the environment ("\${VAR}", without a ":-" default), ${key}_file or ${key}_credential, not inline`,
          { details: { key: keyPath, file: ctx.file } },
        );
      }
      out[key] = new Secret(interpolate(raw, ctx.env, keyPath, ctx.file));
      continue;
    }
    out[key] = resolveValue(raw, keyPath, ctx);
  }
  return out;
}

function resolveValue(value: unknown, path: string, ctx: WalkContext): unknown {
  if (typeof value === 'string') return interpolate(value, ctx.env, path, ctx.file);
  if (Array.isArray(value)) return value.map((item, i) => resolveValue(item, `${path}[${i}]`, ctx));
  if (value !== null && typeof value === 'object') {
    return resolveObject(value as Record<string, unknown>, path, ctx);
  }
  return value;
}

/**
 * Interpolates `${VAR}` in every string and resolves secrets (`X`, `X_file`, `X_credential`)
 * into Secret objects, before the schema sees the document. Warnings (a secret file others
 * can read) are appended to `warnings`.
 */
export function resolveConfigValues(
  doc: unknown,
  env: NodeJS.ProcessEnv,
  file: string,
  baseDir: string,
  warnings: GatewayError[] = [],
): unknown {
  return resolveValue(doc, '', { env, file, baseDir, warnings });
}
