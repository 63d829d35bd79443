import { GatewayError } from '../errors.js';

/** `${NAME}` or `${NAME:-default}`; `$${` escapes a literal `${`. */
const PATTERN = /\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * True when the whole string is one `${VAR}` reference without a default (the accepted form
 * for inline secrets): `${VAR:-value}` would carry the secret in the file itself.
 */
export function isWholeReference(value: string): boolean {
  return /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(value.trim());
}

/** Replaces `${VAR}` references in one string value; `keyPath` and `file` name it in errors. */
export function interpolate(
  value: string,
  env: NodeJS.ProcessEnv,
  keyPath: string,
  file: string,
): string {
  return value.replace(
    PATTERN,
    (whole, escape: string, name: string, fallback: string | undefined) => {
      if (escape) return whole.slice(1);
      const found = env[name];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      throw new GatewayError(
        'GW_ERR_CONFIG_ENV_MISSING',
        `${file}: ${keyPath}: environment variable ${name} is not set`,
        { details: { key: keyPath, file, variable: name } },
      );
    },
  );
}
