/**
 * hermes-gateway's Discord adapter under test, in-process, behind the real Runner and
 * StateStore (what `hermes-gateway run` has on the inbound path): events are counted where
 * the runner hands them on (normalized, across the adapter contract).
 */
import { join } from 'node:path';
import { DiscordAdapter } from '../../src/adapters/discord/adapter.js';
import { discordSchema, toSettings } from '../../src/adapters/discord/config.js';
import { Secret } from '../../src/config/secret.js';
import { createLogger } from '../../src/log/logger.js';
import { Runner } from '../../src/runner/runner.js';
import { StateStore } from '../../src/state/store.js';
import { Counter, fail, runChild, type ClientConfig } from '../lib/ipc.js';

function start(config: ClientConfig): Promise<void> {
  const counter = new Counter(config.expected);
  const settings = toSettings(
    discordSchema.parse({
      token: new Secret(config.clientSecret),
      api_base: config.apiBase,
      intents: ['GUILDS', 'GUILD_MESSAGES', 'DIRECT_MESSAGES', 'MESSAGE_CONTENT'],
    }),
  );
  const adapter = new DiscordAdapter(settings);
  const log = createLogger({ level: 'warn', env: {}, pretty: false });
  const stateFile = join(config.workDir, 'gateway_state.json');
  const store = new StateStore({ path: stateFile, heartbeatIntervalMs: 60_000, log });
  let wasConnected = false;
  const runner = new Runner({
    adapters: [adapter],
    store,
    log,
    notifier: {
      enabled: false,
      watchdogPingMs: null,
      ready: () => undefined,
      status: () => {
        if (!wasConnected && adapter.stats.connections > 0 && adapter.stats.frames > 0) {
          wasConnected = true;
          counter.ready();
        }
      },
      watchdog: () => undefined,
      stopping: () => undefined,
    },
    shutdownTimeoutMs: 2_000,
    heartbeatIntervalMs: 60_000,
    dispatch: (_event, done) => {
      counter.hit();
      done?.();
    },
  });
  runner
    .run()
    .then((outcome) => fail(`the gateway ended: ${outcome.reason}`))
    .catch((err: unknown) => fail(String(err)));
  return Promise.resolve();
}

runChild(start);
