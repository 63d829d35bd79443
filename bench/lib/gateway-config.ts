/**
 * Gateway config files pointing the qqbot or telegram platform at a fake, for the CLI and
 * in-process runs.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';

/** The environment variable the config's `client_secret: ${...}` reads. */
export const SECRET_ENV = 'BENCH_QQ_SECRET';

export interface BenchGatewayConfig {
  stateFile: string;
  tokenUrl: string;
  apiBase: string;
  appId: string;
  logLevel?: 'info' | 'warn' | 'debug';
  handler?: Record<string, unknown>;
  /** `platforms.qqbot.reconnect` keys. */
  reconnect?: Record<string, unknown>;
  /** `platforms.qqbot.timeouts` keys. */
  timeouts?: Record<string, unknown>;
  /** Other `platforms.qqbot` keys. */
  qqbot?: Record<string, unknown>;
  /** Top-level keys (e.g. `heartbeat_interval_ms`). */
  top?: Record<string, unknown>;
}

export function gatewayConfig(c: BenchGatewayConfig): Record<string, unknown> {
  return {
    state_file: c.stateFile,
    log_level: c.logLevel ?? 'info',
    shutdown_timeout_ms: 2000,
    ...c.top,
    handler: c.handler ?? { type: 'echo' },
    platforms: {
      qqbot: {
        enabled: true,
        app_id: c.appId,
        client_secret: `\${${SECRET_ENV}}`,
        token_url: c.tokenUrl,
        api_base: c.apiBase,
        ...(c.reconnect && { reconnect: c.reconnect }),
        ...(c.timeouts && { timeouts: c.timeouts }),
        ...c.qqbot,
      },
    },
  };
}

/** Writes the config as YAML in `dir`; returns its path. */
export async function writeGatewayConfig(dir: string, c: BenchGatewayConfig): Promise<string> {
  const path = join(dir, 'config.yaml');
  await writeFile(path, stringify(gatewayConfig(c)), { mode: 0o600 });
  return path;
}

/** The environment variable the Telegram config's `token: ${...}` reads. */
export const TELEGRAM_TOKEN_ENV = 'BENCH_TELEGRAM_TOKEN';

export interface BenchTelegramConfig {
  stateFile: string;
  apiBase: string;
  logLevel?: 'info' | 'warn' | 'debug';
  handler?: Record<string, unknown>;
  /** Other `platforms.telegram` keys (polling, timeouts, send, ...). */
  telegram?: Record<string, unknown>;
}

/** `platforms.telegram` against a fake Bot API; the token comes from TELEGRAM_TOKEN_ENV. */
export function telegramGatewayConfig(c: BenchTelegramConfig): Record<string, unknown> {
  return {
    state_file: c.stateFile,
    log_level: c.logLevel ?? 'info',
    shutdown_timeout_ms: 2000,
    handler: c.handler ?? { type: 'echo' },
    platforms: {
      telegram: {
        token: `\${${TELEGRAM_TOKEN_ENV}}`,
        api_base: c.apiBase,
        ...c.telegram,
      },
    },
  };
}

export async function writeTelegramConfig(dir: string, c: BenchTelegramConfig): Promise<string> {
  const path = join(dir, 'config.yaml');
  await writeFile(path, stringify(telegramGatewayConfig(c)), { mode: 0o600 });
  return path;
}
