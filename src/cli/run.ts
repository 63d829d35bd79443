import type { PlatformRegistry } from '../adapters/platform.js';
import {
  enabledPlatforms,
  loadConfig,
  locateConfig,
  stateFileSetting,
  type LoadedConfig,
} from '../config/load.js';
import { DEFAULTS } from '../config/schema.js';
import { GatewayError, exitCodeFor, toGatewayError } from '../errors.js';
import { createLogger, type Logger } from '../log/logger.js';
import { Runner, type RunOutcome } from '../runner/runner.js';
import { defaultStatePath } from '../state/paths.js';
import { StateStore } from '../state/store.js';
import { loadNotifier } from '../systemd/notify.js';
import { createPipeline } from '../handlers/pipeline.js';
import { checkControlConfig } from '../control/config.js';
import { createControlServer } from '../control/server.js';
import { bindStateMetrics, metrics } from '../metrics.js';
import { DeliveryStore, deliveryStorePath } from '../delivery/store.js';

export interface RunOptions {
  config?: string | undefined;
  state?: string | undefined;
}

/**
 * Persists a fatal state for a gateway that could not even start (bad config), so the
 * state file does not keep the previous run's `connected`. Best effort: if the path itself is
 * the problem, the log line is all we can give.
 */
async function persistStartupFailure(
  path: string,
  error: GatewayError,
  log: Logger,
): Promise<void> {
  const store = new StateStore({ path, heartbeatIntervalMs: DEFAULTS.heartbeatIntervalMs, log });
  // write_seq only grows, across restarts too (a failed start is one more write to the file).
  await store.resumeSequence();
  store.setGateway({
    state: 'fatal',
    since: store.iso(),
    reason: `${error.code}: ${error.message}`,
    exit_code: exitCodeFor(error),
  });
  try {
    await store.commit();
  } catch {
    // Already logged by the store with the path.
  }
}

/** `hermes-gateway run`: resolves with the process exit code once the gateway has ended. */
export async function runGateway(
  options: RunOptions,
  registry: PlatformRegistry,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const bootLog = createLogger({ level: DEFAULTS.logLevel, env });
  const configFile = locateConfig(options.config, env);
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig(configFile, registry, env);
    checkControlConfig(loaded.config.control, configFile, env);
    if (enabledPlatforms(loaded.config).length === 0) {
      throw new GatewayError(
        'GW_ERR_NO_PLATFORMS',
        `${configFile}: platforms: no platform is enabled`,
        {
          details: { file: configFile, key: 'platforms' },
        },
      );
    }
  } catch (err) {
    const error = toGatewayError(err, 'GW_ERR_CONFIG_INVALID');
    const exitCode = exitCodeFor(error);
    bootLog.error({ code: error.code, exit_code: exitCode, ...error.details }, error.message);
    // The configured state_file is the one `status` reads: it must not keep the previous
    // run's last word. It is read without the rest of the config, which just failed.
    const statePath = options.state ?? stateFileSetting(configFile, env) ?? defaultStatePath(env);
    await persistStartupFailure(statePath, error, bootLog);
    return exitCode;
  }
  const { config } = loaded;
  const log = createLogger({ level: config.log_level, env });
  const statePath = options.state ?? config.state_file ?? defaultStatePath(env);
  const store = new StateStore({
    path: statePath,
    heartbeatIntervalMs: config.heartbeat_interval_ms,
    log,
  });

  let notifier;
  try {
    notifier = loadNotifier(env);
  } catch (err) {
    const error = toGatewayError(err, 'GW_ERR_NOTIFY_UNAVAILABLE');
    log.error({ code: error.code, exit_code: exitCodeFor(error) }, error.message);
    await persistStartupFailure(statePath, error, log);
    return exitCodeFor(error);
  }

  // The delivery store is opened before anything connects: the resume points it holds decide
  // how the adapters start. It cannot be opened or written: fatal (exit 70), like the state file.
  let delivery: DeliveryStore | null = null;
  let failDelivery: (error: GatewayError) => void = () => undefined;
  if (config.delivery.enabled) {
    try {
      delivery = DeliveryStore.open({
        path: deliveryStorePath(statePath),
        rememberMs: config.delivery.remember_ms,
        maxEntries: config.delivery.max_entries,
        sync: config.delivery.sync,
        resumeMaxAgeMs: config.delivery.resume_max_age_ms,
        log,
        onFailure: (error) => failDelivery(error),
      });
    } catch (err) {
      const error = toGatewayError(err, 'GW_ERR_DELIVERY_STORE_OPEN');
      log.error(
        { code: error.code, exit_code: exitCodeFor(error), ...error.details },
        error.message,
      );
      await persistStartupFailure(statePath, error, log);
      return exitCodeFor(error);
    }
  }

  const adapters = enabledPlatforms(config).map((name) => {
    const def = registry.get(name)!;
    return def.create(config.platforms[name]!);
  });
  const pipeline = createPipeline({ config, adapters, log, metrics, delivery });
  bindStateMetrics(store);
  // Started by the runner's READY (the gateway is running); closed after the runner ends.
  const control = config.control?.listen
    ? createControlServer({ config: config.control, adapters, state: store, metrics, log })
    : null;
  // Only the control API serves /metrics: without it, the process metrics (and their ~8 MB
  // of modules and timers) would be collected for nobody.
  if (control) metrics.collectProcessMetrics();
  const runner: Runner = new Runner({
    adapters,
    store,
    log,
    notifier: control ? control.startOnReady(notifier, (err) => runner.fail(err)) : notifier,
    shutdownTimeoutMs: config.shutdown_timeout_ms,
    heartbeatIntervalMs: config.heartbeat_interval_ms,
    dispatch: (event, done) => pipeline.dispatch(event, done),
    delivery,
  });
  failDelivery = (error) => runner.fail(error);

  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    log.info({ signal }, `received ${signal}`);
    if (stopping) return;
    stopping = true;
    // A planned stop loses nothing: no new event is taken, those taken get half the
    // shutdown budget to be answered, and what is left is replayed after the restart.
    void pipeline.drain(config.shutdown_timeout_ms / 2).then((all) => {
      if (!all) log.info('stopping: events still in flight are left for the next process');
      runner.stop(`stop requested (${signal})`);
    });
  };
  // An exception nobody caught means our own bug: persist `fatal` and exit 70 rather than
  // limp on with a state file that may no longer describe reality.
  const onException = (err: unknown): void => {
    runner.fail(new GatewayError('GW_ERR_UNCAUGHT_EXCEPTION', describe(err), { cause: err }));
  };
  const onRejection = (err: unknown): void => {
    runner.fail(new GatewayError('GW_ERR_UNHANDLED_REJECTION', describe(err), { cause: err }));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  let outcome: RunOutcome;
  try {
    log.info(
      { config: loaded.file, state_file: statePath, pid: process.pid },
      'starting hermes-gateway',
    );
    outcome = await runner.run();
    await control?.close();
    await pipeline.close();
    delivery?.close();
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  }
  return outcome.exitCode;
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
