/**
 * One registry of every error code the gateway can report. Append-only: a code is never
 * reused or renamed, because operators grep logs and the state file for it. Every code is
 * documented in the README (a test checks both directions).
 */
import { secretScrubber } from './util/scrub.js';

export type ErrorKind =
  /** A config file or credential problem: restarting cannot help (exit 78). */
  | 'config'
  /** A platform answer that restarting cannot fix either (banned bot, invalid intents: exit 78). */
  | 'platform'
  /** A transient failure: the process exits 1 and systemd restarts it. */
  | 'transient'
  /** A bug or an environment failure inside the gateway itself (exit 70). */
  | 'internal';

interface CodeInfo {
  readonly kind: ErrorKind;
  readonly retryable: boolean;
}

export const ERROR_CODES = {
  // Core
  GW_ERR_ADAPTER_RETURNED: { kind: 'transient', retryable: true },
  GW_ERR_ADAPTER_FAILED: { kind: 'transient', retryable: true },
  GW_ERR_BACKGROUND_TASK: { kind: 'transient', retryable: true },
  GW_ERR_STOP_TIMEOUT: { kind: 'internal', retryable: true },
  GW_ERR_STATE_WRITE: { kind: 'internal', retryable: true },
  GW_ERR_STATE_READ: { kind: 'internal', retryable: false },
  GW_ERR_UNCAUGHT_EXCEPTION: { kind: 'internal', retryable: true },
  GW_ERR_UNHANDLED_REJECTION: { kind: 'internal', retryable: true },
  GW_ERR_INTERNAL: { kind: 'internal', retryable: true },
  GW_ERR_NOTIFY_UNAVAILABLE: { kind: 'config', retryable: false },
  // Configuration
  GW_ERR_CONFIG_NOT_FOUND: { kind: 'config', retryable: false },
  GW_ERR_CONFIG_PARSE: { kind: 'config', retryable: false },
  GW_ERR_CONFIG_INVALID: { kind: 'config', retryable: false },
  GW_ERR_CONFIG_ENV_MISSING: { kind: 'config', retryable: false },
  GW_ERR_CONFIG_SECRET_UNREADABLE: { kind: 'config', retryable: false },
  GW_ERR_CONFIG_SECRET_INLINE: { kind: 'config', retryable: false },
  GW_ERR_NO_PLATFORMS: { kind: 'config', retryable: false },
  // Instances
  GW_ERR_CREDENTIAL_IN_USE: { kind: 'config', retryable: false },
  // Hardening (issue #16): config and secret files, the state file's path and its one writer
  GW_ERR_CONFIG_FILE_NOT_REGULAR: { kind: 'config', retryable: false },
  GW_ERR_CONFIG_FILE_TOO_LARGE: { kind: 'config', retryable: false },
  GW_ERR_CONFIG_FILE_ENCODING: { kind: 'config', retryable: false },
  GW_ERR_CONFIG_SECRET_FILE_MODE: { kind: 'config', retryable: false },
  GW_ERR_STATE_PATH_UNSAFE: { kind: 'config', retryable: false },
  GW_ERR_ALREADY_RUNNING: { kind: 'config', retryable: false },
  // CLI
  GW_ERR_CLI_USAGE: { kind: 'config', retryable: false },
} as const satisfies Record<string, CodeInfo>;

/** Codes registered by modules outside this file (adapters, handlers) join the same registry. */
const extraCodes = new Map<string, CodeInfo>();

export type CoreErrorCode = keyof typeof ERROR_CODES;

/**
 * Adds codes to the registry. Adapters call this at import time for their own codes so that
 * `GatewayError` can look up the defaults and the README test sees every code.
 */
export function registerErrorCodes(codes: Record<string, CodeInfo>): void {
  for (const [code, info] of Object.entries(codes)) {
    if (!/^GW_ERR_[A-Z0-9_]+$/.test(code)) throw new Error(`bad error code name ${code}`);
    if (code in ERROR_CODES || extraCodes.has(code)) {
      const existing = lookupCode(code);
      if (existing?.kind === info.kind && existing.retryable === info.retryable) continue;
      throw new Error(`error code ${code} registered twice with different meanings`);
    }
    extraCodes.set(code, info);
  }
}

export function lookupCode(code: string): CodeInfo | undefined {
  return (ERROR_CODES as Record<string, CodeInfo>)[code] ?? extraCodes.get(code);
}

export function allErrorCodes(): string[] {
  return [...Object.keys(ERROR_CODES), ...extraCodes.keys()].sort();
}

export interface GatewayErrorOptions {
  /** Overrides the registry's default for this one occurrence (e.g. an unknown close code). */
  retryable?: boolean;
  cause?: unknown;
  /** Extra machine-readable facts (close code, HTTP status, key path); never secrets. */
  details?: Record<string, unknown>;
}

/** An error with a stable machine code. Every error that reaches the runner should be one. */
export class GatewayError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly kind: ErrorKind;
  readonly details: Record<string, unknown>;

  constructor(code: string, message: string, options: GatewayErrorOptions = {}) {
    // Messages and details carry text from outside (platform answers, exception messages),
    // which may echo a credential: scrubbed here, every log line and state write is too.
    super(
      secretScrubber.scrub(message),
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    const info = lookupCode(code);
    if (!info) throw new Error(`unregistered error code ${code}`);
    this.name = 'GatewayError';
    this.code = code;
    this.kind = info.kind;
    this.retryable = options.retryable ?? info.retryable;
    this.details = (secretScrubber.scrubDeep(options.details) ?? {}) as Record<string, unknown>;
  }
}

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof GatewayError;
}

/** Wraps anything thrown into a GatewayError so the runner always has a code to persist. */
export function toGatewayError(err: unknown, fallbackCode: string): GatewayError {
  if (err instanceof GatewayError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new GatewayError(fallbackCode, message, { cause: err });
}

/** Exit codes of DESIGN §5. */
export const EXIT = {
  OK: 0,
  RETRYABLE: 1,
  USAGE: 2,
  INTERNAL: 70,
  CONFIG: 78,
} as const;

/** Maps a fatal error to the process exit code systemd acts on. */
export function exitCodeFor(err: GatewayError): number {
  switch (err.kind) {
    case 'internal':
      return EXIT.INTERNAL;
    case 'config':
      return EXIT.CONFIG;
    case 'platform':
    case 'transient':
      return err.retryable ? EXIT.RETRYABLE : EXIT.CONFIG;
  }
}
