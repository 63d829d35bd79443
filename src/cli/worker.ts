import { resolve } from 'node:path';
import { z } from 'zod';
import { loadDocument } from '../config/load.js';
import { DEFAULTS, LOG_LEVELS } from '../config/schema.js';
import { GatewayError, exitCodeFor, toGatewayError, EXIT } from '../errors.js';
import { localHandlerSchema } from '../handlers/config.js';
import { createHandler } from '../handlers/create.js';
import { brokerSchema } from '../handlers/nats/config.js';
import { LOG_FORMATS, createLogger } from '../log/logger.js';
import { loadNotifier } from '../systemd/notify.js';
import { savingCompileCacheOnReady } from './save-compile-cache.js';

/** `worker.yaml`: strict like the gateway's config; `handler:` is any local handler. */
export const workerConfigSchema = z
  .object({
    log_level: z.enum(LOG_LEVELS).default(DEFAULTS.logLevel),
    log_format: z.enum(LOG_FORMATS).default(DEFAULTS.logFormat),
    shutdown_timeout_ms: z
      .number()
      .int()
      .positive()
      .max(2_147_483_647)
      .default(DEFAULTS.shutdownTimeoutMs),
    broker: brokerSchema,
    handler: localHandlerSchema,
  })
  .strict();

export type WorkerConfig = z.infer<typeof workerConfigSchema>;

/**
 * `hermes-gateway worker -c worker.yaml`: resolves with the exit code. Same rules as `run`:
 * 0 after SIGTERM/SIGINT, 78 for a bad config or credentials the broker refuses, 1 when the
 * broker stayed out of reach for `unreachable_budget_ms`, 70 for our own bug.
 */
export async function runWorker(configPath: string, env: NodeJS.ProcessEnv): Promise<number> {
  const bootLog = createLogger({ level: DEFAULTS.logLevel, format: DEFAULTS.logFormat, env });
  const file = resolve(configPath);
  let config: WorkerConfig;
  let notifier;
  try {
    config = loadDocument(file, workerConfigSchema, env).config;
    notifier = loadNotifier(env);
  } catch (err) {
    const error = toGatewayError(err, 'GW_ERR_CONFIG_INVALID');
    bootLog.error(
      { code: error.code, exit_code: exitCodeFor(error), ...error.details },
      error.message,
    );
    return exitCodeFor(error);
  }
  const log = createLogger({ level: config.log_level, format: config.log_format, env });
  notifier = savingCompileCacheOnReady(notifier, log);
  const handler = createHandler(config.handler, { log });
  // Loaded only by this command: the NATS client costs every other command's start.
  const { createWorker } = await import('../handlers/nats/worker.js');
  let settle: (code: number) => void = () => undefined;
  const ended = new Promise<number>((resolve) => {
    settle = resolve;
  });
  let fatal: GatewayError | null = null;
  const worker = createWorker({
    broker: config.broker,
    handler,
    log,
    onFatal: (error) => {
      if (fatal !== null) return;
      fatal = error;
      log.error(
        { code: error.code, exit_code: exitCodeFor(error), ...error.details },
        error.message,
      );
      settle(exitCodeFor(error));
    },
    onStatus: (status) =>
      notifier.status(`broker ${status.state}${status.reason ? `: ${status.reason}` : ''}`),
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    log.info({ signal }, `received ${signal}`);
    settle(EXIT.OK);
  };
  const onException = (err: unknown): void => {
    const error = new GatewayError('GW_ERR_UNCAUGHT_EXCEPTION', String(err), { cause: err });
    log.error({ code: error.code }, error.message);
    settle(exitCodeFor(error));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onException);
  let watchdog: NodeJS.Timeout | null = null;
  try {
    log.info(
      { config: file, pid: process.pid, handler: config.handler.type },
      'starting hermes-gateway worker',
    );
    // READY once the config is loaded, like the gateway: reaching the broker is governed by
    // unreachable_budget_ms (exit 1), not by the unit's start timeout.
    notifier.ready(`worker started (${config.handler.type})`);
    if (notifier.watchdogPingMs !== null) {
      watchdog = setInterval(() => notifier.watchdog(), notifier.watchdogPingMs);
    }
    worker.ready.then(
      () => notifier.status(`consuming ${config.broker.partitions} partitions`),
      () => undefined, // Reported through onFatal.
    );
    const code = await ended;
    notifier.stopping(code === EXIT.OK ? 'stopping' : `failed (exit ${code})`);
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      worker.close().then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), config.shutdown_timeout_ms);
      }),
    ]);
    clearTimeout(timer);
    if (!closed) log.warn({ code: 'GW_ERR_STOP_TIMEOUT' }, 'worker did not stop in time');
    log.info({ exit_code: code, handled: worker.handled }, 'worker stopped');
    return code;
  } finally {
    if (watchdog !== null) clearInterval(watchdog);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onException);
  }
}
