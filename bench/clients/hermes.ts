/**
 * hermes-gateway under test, in-process: the real config loader, the qqbot (or, with
 * `platform: telegram`, the telegram) adapter from the default registry and the real Runner (with its StateStore) — everything `hermes-gateway run`
 * has on the inbound path. Events are counted where the runner hands them on:
 *
 * - default: the runner's `dispatch` (the adapter has received, parsed and normalized the
 *   event, and it has crossed the adapter contract);
 * - variant `pipeline`: one step further, by a handler behind the real message pipeline
 *   (dedupe window, per-conversation queues, metrics), which only counts and replies nothing;
 * - variant `pipeline-store`: the same with the delivery store on (docs/delivery.md): every
 *   event's end is followed into the handled watermark, the answered set and the resume point,
 *   committed in groups to SQLite, as `hermes-gateway run` does.
 */
import { join } from 'node:path';
import type { InboundEvent } from '../../src/adapters/contract.js';
import { defaultRegistry } from '../../src/adapters/registry.js';
import { enabledInstances } from '../../src/config/instances.js';
import { loadConfig } from '../../src/config/load.js';
import { createPipeline } from '../../src/handlers/pipeline.js';
import { DeliveryStore, deliveryStorePath } from '../../src/delivery/store.js';
import type { Handler } from '../../src/handlers/handler.js';
import { createLogger } from '../../src/log/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { Runner } from '../../src/runner/runner.js';
import { StateStore } from '../../src/state/store.js';
import { loadNotifier } from '../../src/systemd/notify.js';
import {
  SECRET_ENV,
  TELEGRAM_TOKEN_ENV,
  writeGatewayConfig,
  writeTelegramConfig,
} from '../lib/gateway-config.js';
import { Counter, fail, runChild, type ClientConfig } from '../lib/ipc.js';
import { errorText, sleep } from '../lib/util.js';

async function start(config: ClientConfig): Promise<void> {
  const counter = new Counter(config.expected);
  const stateFile = join(config.workDir, 'gateway_state.json');
  const platform = config.platform ?? 'qqbot';
  const file =
    platform === 'telegram'
      ? await writeTelegramConfig(config.workDir, { stateFile, apiBase: config.apiBase })
      : await writeGatewayConfig(config.workDir, {
          stateFile,
          tokenUrl: config.tokenUrl,
          apiBase: config.apiBase,
          appId: config.appId,
        });
  const env = {
    ...process.env,
    [SECRET_ENV]: config.clientSecret,
    [TELEGRAM_TOKEN_ENV]: config.token ?? '',
  };
  const registry = await defaultRegistry();
  const loaded = loadConfig(file, registry, env);
  const log = createLogger({ level: loaded.config.log_level, env: {}, pretty: false });
  const adapters = enabledInstances(loaded.config.platforms, registry).map((i) =>
    i.definition.create(i.config, i.name),
  );
  const store = new StateStore({
    path: stateFile,
    heartbeatIntervalMs: loaded.config.heartbeat_interval_ms,
    log,
  });
  let dispatch: (event: InboundEvent, done?: () => void) => void;
  const delivery =
    config.variant === 'pipeline-store'
      ? DeliveryStore.open({
          path: deliveryStorePath(stateFile),
          rememberMs: loaded.config.delivery.remember_ms,
          maxEntries: loaded.config.delivery.max_entries,
          sync: loaded.config.delivery.sync,
          resumeMaxAgeMs: loaded.config.delivery.resume_max_age_ms,
          log,
        })
      : null;
  if (config.variant === 'pipeline' || config.variant === 'pipeline-store') {
    const counting: Handler = {
      type: 'count',
      handle: () => {
        counter.hit();
        return Promise.resolve([]);
      },
    };
    const pipeline = createPipeline({
      config: loaded.config,
      adapters,
      log,
      metrics: createMetrics(),
      handler: counting,
      delivery,
    });
    dispatch = (event, done) => pipeline.dispatch(event, done);
  } else {
    // Handled as soon as counted: the adapter confirms only handled updates (Telegram's
    // offset), so an event never ended would hold the stream at its first batch.
    dispatch = (_event, done) => {
      counter.hit();
      done?.();
    };
  }
  const runner = new Runner({
    adapters,
    store,
    log,
    notifier: loadNotifier({}),
    shutdownTimeoutMs: loaded.config.shutdown_timeout_ms,
    heartbeatIntervalMs: loaded.config.heartbeat_interval_ms,
    dispatch,
    delivery,
  });
  runner.run().then(
    (outcome) => fail(`gateway ended: exit ${outcome.exitCode} (${outcome.reason})`),
    (err: unknown) => fail(errorText(err)),
  );
  const deadline = Date.now() + 15_000;
  while (store.platform(platform)?.state !== 'connected') {
    if (Date.now() > deadline) throw new Error(`${platform} did not reach connected within 15 s`);
    await sleep(2);
  }
  counter.ready();
}

runChild(start);
