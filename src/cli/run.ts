import type { PlatformRegistry } from '../adapters/platform.js';
import type { PlatformSource } from './context.js';
import { readConfigDocument } from '../config/read.js';
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
import { realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { checkStatePath, defaultStatePath } from '../state/paths.js';
import { HolderLock } from '../util/holder-lock.js';
import { StateStore } from '../state/store.js';
import { loadNotifier, type Notifier } from '../systemd/notify.js';
import { savingCompileCacheOnReady } from './save-compile-cache.js';
import { createPipeline } from '../handlers/pipeline.js';
import { checkControlConfig } from '../control/config.js';
import { bindStateMetrics, metrics } from '../metrics.js';
import { credentialClaims, enabledInstances, type Instance } from '../config/instances.js';
import { acquireCredentialLocks, type CredentialLocks } from '../runner/credential-locks.js';
import { DeliveryStore, deliveryStorePath } from '../delivery/store.js';
import type { NatsGateway } from '../handlers/nats/gateway.js';

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

/** The lock key of a state file: its path with the directory's symlinks resolved. */
function stateLockKey(path: string): string {
  try {
    return `state:${join(realpathSync(dirname(path)), basename(path))}`;
  } catch {
    return `state:${resolve(path)}`;
  }
}

/**
 * Makes this process the one writer of the state file, before anything is written or
 * connected: an exclusive HolderLock on its path (released by the kernel when we die), then
 * the path's safety. Resolves with the lock, or rejects with GW_ERR_ALREADY_RUNNING (naming
 * the holder's pid) or GW_ERR_STATE_PATH_UNSAFE; either way nothing was written.
 */
async function claimStateFile(path: string): Promise<HolderLock> {
  // Checked before the lock too: a path that is unsafe now is refused as such, not reported
  // as held by whoever has the lock (another start about to refuse it as well, when two
  // start at once on a planted symlink). Checked again under the lock: a link planted
  // between the two checks is refused all the same.
  checkStatePath(path);
  const claim = await HolderLock.acquire(stateLockKey(path), `state file ${path}`);
  if (!claim.ok) {
    const { pid, holder } = claim.holder;
    throw new GatewayError(
      'GW_ERR_ALREADY_RUNNING',
      `state file ${path} is already written by pid ${pid} (${holder}): one gateway per state file`,
      { details: { path, holder_pid: pid, holder } },
    );
  }
  try {
    checkStatePath(path);
  } catch (err) {
    await claim.lock.release();
    throw err;
  }
  return claim.lock;
}

/** `hermes-gateway run`: resolves with the process exit code once the gateway has ended. */
export async function runGateway(
  options: RunOptions,
  platforms: PlatformSource,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  // Before the config is read: the default format (`auto`), so a config error reaches the
  // journal as a text line too.
  const bootLog = createLogger({ level: DEFAULTS.logLevel, format: DEFAULTS.logFormat, env });
  const configFile = locateConfig(options.config, env);
  // The state file `status` reads, found without the rest of the config (which may not load).
  const statePath = options.state ?? stateFileSetting(configFile, env) ?? defaultStatePath(env);
  let lock: HolderLock;
  try {
    lock = await claimStateFile(statePath);
  } catch (err) {
    const error = toGatewayError(err, 'GW_ERR_INTERNAL');
    bootLog.error(
      { code: error.code, exit_code: exitCodeFor(error), ...error.details },
      error.message,
    );
    return exitCodeFor(error);
  }
  try {
    return await runWithStateFile(platforms, env, configFile, statePath, bootLog);
  } finally {
    await lock.release();
  }
}

/**
 * The `platforms:` section of the config as read, to know which platforms to load before
 * validating; undefined when the file does not read (loadConfig then reports why).
 */
function platformsSection(configFile: string): unknown {
  try {
    return readConfigDocument(configFile).platforms;
  } catch {
    return undefined;
  }
}

/** The rest of `run`, once this process is the state file's one writer. */
async function runWithStateFile(
  platforms: PlatformSource,
  env: NodeJS.ProcessEnv,
  configFile: string,
  statePath: string,
  bootLog: Logger,
): Promise<number> {
  let loaded: LoadedConfig;
  let registry: PlatformRegistry;
  try {
    // Only the platforms the config names are loaded; the full validation follows.
    registry = await platforms.forPlatforms(platformsSection(configFile));
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
    // run's last word.
    await persistStartupFailure(statePath, error, bootLog);
    return exitCode;
  }
  const { config } = loaded;
  const log = createLogger({ level: config.log_level, format: config.log_format, env });
  for (const warning of loaded.warnings) {
    log.warn({ code: warning.code, ...warning.details }, warning.message);
  }
  const store = new StateStore({
    path: statePath,
    heartbeatIntervalMs: config.heartbeat_interval_ms,
    log,
  });

  let notifier;
  try {
    notifier = savingCompileCacheOnReady(loadNotifier(env), log);
  } catch (err) {
    const error = toGatewayError(err, 'GW_ERR_NOTIFY_UNAVAILABLE');
    log.error({ code: error.code, exit_code: exitCodeFor(error) }, error.message);
    await persistStartupFailure(statePath, error, log);
    return exitCodeFor(error);
  }

  const instances = enabledInstances(config.platforms, registry);
  // Every credential is ours before any adapter exists, let alone connects.
  let locks: CredentialLocks;
  try {
    locks = await acquireCredentialLocks(credentialClaims(instances));
  } catch (err) {
    // Anything but a refusal is a socket failure of our own: internal, exit 70.
    const error = toGatewayError(err, 'GW_ERR_INTERNAL');
    log.error({ code: error.code, exit_code: exitCodeFor(error), ...error.details }, error.message);
    await persistStartupFailure(statePath, error, log);
    return exitCodeFor(error);
  }
  try {
    return await runInstances(instances, loaded, statePath, store, notifier, log);
  } finally {
    await locks.release();
  }
}

/** Runs the adapters of `instances` until the gateway ends; resolves with the exit code. */
async function runInstances(
  instances: Instance[],
  loaded: LoadedConfig,
  statePath: string,
  store: StateStore,
  notifier: Notifier,
  log: Logger,
): Promise<number> {
  const { config } = loaded;
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

  const adapters = instances.map((i) => i.definition.create(i.config, i.name));
  const types = new Map(instances.map((i) => [i.name, i.type]));
  metrics.bindTypes(types);
  // handler type nats: the events go to the broker and the replies come back from it
  // (docs/scale-out.md); the broker's failures end the gateway through runner.fail.
  let nats: NatsGateway | null = null;
  let failNats: (error: GatewayError) => void = () => undefined;
  let commitBroker: () => void = () => undefined;
  if (config.handler.type === 'nats') {
    // Loaded only here: the NATS client adds a quarter second of CPU to every start.
    const { createNatsGateway } = await import('../handlers/nats/gateway.js');
    nats = createNatsGateway({
      config: config.handler,
      adapters,
      log,
      metrics,
      onFatal: (error) => failNats(error),
      onStatus: (status) => {
        store.setBroker(status);
        commitBroker();
      },
    });
  }
  const pipeline = createPipeline({
    config,
    adapters,
    log,
    metrics,
    delivery,
    ...(nats ? { handler: nats.handler } : {}),
  });
  bindStateMetrics(store);
  // Started by the runner's READY (the gateway is running); closed after the runner ends.
  // The server's module is loaded only when the API is configured.
  const control = config.control?.listen
    ? (await import('../control/server.js')).createControlServer({
        config: config.control,
        adapters,
        state: store,
        metrics,
        log,
      })
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
    types,
    delivery,
  });
  failDelivery = (error) => runner.fail(error);
  failNats = (error) => runner.fail(error);
  // A write failure has ended the gateway through runner.fail already.
  commitBroker = () => void runner.commit().catch(() => undefined);

  /** The planned stop in progress (drain, then stop the runner); awaited before the exit. */
  // (Asserted: assigned in a signal handler, which control flow analysis does not see.)
  let stopping = null as Promise<void> | null;
  const drainThenStop = async (signal: NodeJS.Signals): Promise<void> => {
    try {
      // A planned stop loses nothing: no new event is taken, those taken get half the
      // shutdown budget to be answered, and what is left stays above the watermark (and in
      // the outbox) for the next process, which gets it replayed.
      const all = await pipeline.drain(config.shutdown_timeout_ms / 2);
      const { waiting, running } = pipeline.load;
      if (all) log.info('stopping: every event taken was answered');
      else {
        log.info(
          { waiting, running },
          'stopping: events still in flight are left for the next process',
        );
      }
    } finally {
      runner.stop(`stop requested (${signal})`);
    }
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    log.info({ signal }, `received ${signal}`);
    if (stopping !== null) return;
    stopping = drainThenStop(signal).catch((err: unknown) => {
      runner.fail(toGatewayError(err, 'GW_ERR_INTERNAL'));
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
    // Closing the pipeline also ends a drain still waiting (a fatal came during the stop).
    await pipeline.close();
    await nats?.close();
    await stopping;
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
