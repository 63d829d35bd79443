import { createRequire } from 'node:module';
import { GatewayError } from '../errors.js';

/** The systemd notifications the runner sends (DESIGN §8). All are no-ops outside systemd. */
export interface Notifier {
  /** True when NOTIFY_SOCKET is set and messages are actually sent. */
  readonly enabled: boolean;
  /** Half of WATCHDOG_USEC in ms when systemd's watchdog is on for this process, else null. */
  readonly watchdogPingMs: number | null;
  ready(status: string): void;
  status(status: string): void;
  watchdog(): void;
  stopping(status: string): void;
}

export interface SdNotifyModule {
  sendState(state: string): void;
}

const noop: Notifier = {
  enabled: false,
  watchdogPingMs: null,
  ready: () => undefined,
  status: () => undefined,
  watchdog: () => undefined,
  stopping: () => undefined,
};

/** STATUS= takes one line; a newline would start a new assignment. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

/** Half the watchdog interval in ms, or null when the watchdog is not meant for this process. */
export function watchdogPingMs(env: NodeJS.ProcessEnv, pid = process.pid): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return null;
  // WATCHDOG_PID, when set, names the process the watchdog is for (not our children).
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return null;
  return Math.max(1, Math.floor(usec / 2000));
}

/**
 * Loads the native `sd-notify` addon; throws GW_ERR_NOTIFY_UNAVAILABLE naming the fix. It is
 * an optional dependency: without libsystemd-dev its build fails and npm installs the gateway
 * without it (a global install drops the folder, so `npm rebuild` alone cannot bring it back).
 */
export function loadSdNotify(moduleName = 'sd-notify', context = ''): SdNotifyModule {
  try {
    return createRequire(import.meta.url)(moduleName) as SdNotifyModule;
  } catch (err) {
    throw new GatewayError(
      'GW_ERR_NOTIFY_UNAVAILABLE',
      `${context}the native module ${moduleName} cannot be loaded; install libsystemd-dev (apt-get install libsystemd-dev), then install hermes-gateway again the way you did (npm install -g ./hermes-gateway-<version>.tgz; in a clone: npm rebuild ${moduleName}), or run the unit without notifications (a drop-in with Type=simple, NotifyAccess=none, WatchdogSec=0)`,
      { cause: err },
    );
  }
}

/**
 * Returns a notifier for this process. Without NOTIFY_SOCKET it is a no-op. With it, the
 * native `sd-notify` module must load: a unit of `Type=notify` whose gateway cannot send
 * READY=1 would hang in `activating` until systemd kills it, so we refuse to start instead
 * (`GW_ERR_NOTIFY_UNAVAILABLE`, exit 78) with a message that says how to fix it.
 */
export function loadNotifier(
  env: NodeJS.ProcessEnv = process.env,
  moduleName = 'sd-notify',
): Notifier {
  if (!env.NOTIFY_SOCKET) return noop;
  const native = loadSdNotify(moduleName, 'NOTIFY_SOCKET is set but ');
  const send = (state: string): void => native.sendState(state);
  return {
    enabled: true,
    watchdogPingMs: watchdogPingMs(env),
    ready: (status) => send(`READY=1\nSTATUS=${oneLine(status)}\nMAINPID=${process.pid}`),
    status: (status) => send(`STATUS=${oneLine(status)}`),
    watchdog: () => send('WATCHDOG=1'),
    stopping: (status) => send(`STOPPING=1\nSTATUS=${oneLine(status)}`),
  };
}

/**
 * `notifier`, with `afterReady` called right after each READY=1 is sent: what has to start
 * once the gateway is running hooks in here (the control API, the compile cache).
 */
export function onReady(notifier: Notifier, afterReady: () => void): Notifier {
  return {
    enabled: notifier.enabled,
    watchdogPingMs: notifier.watchdogPingMs,
    ready: (status) => {
      notifier.ready(status);
      afterReady();
    },
    status: (status) => notifier.status(status),
    watchdog: () => notifier.watchdog(),
    stopping: (status) => notifier.stopping(status),
  };
}
