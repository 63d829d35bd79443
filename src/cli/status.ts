import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { instanceConfigPath, instanceStateCandidates } from '../systemd/install-instance.js';
import type { PlatformRegistry } from '../adapters/platform.js';
import { locateConfig, stateFileSetting } from '../config/load.js';
import { isGatewayError } from '../errors.js';
import { statusLine } from '../runner/status-line.js';
import { DEFAULT_UNIT, inspectServiceUnit, type UnitInspection } from '../systemd/install.js';
import { defaultStatePath } from '../state/paths.js';
import { readStateFile } from '../state/read.js';
import type { StateDocument } from '../state/schema.js';
import { isSameProcessAlive } from '../util/proc.js';
import type { CliIo } from './io.js';

/** `status` exit codes: healthy, running but degraded, not running (or fatal). */
export const STATUS_EXIT = { HEALTHY: 0, DEGRADED: 1, DOWN: 3 } as const;

/** A heartbeat older than this many intervals means a live but wedged process. */
const STALE_HEARTBEATS = 3;

export interface StatusOptions {
  state?: string | undefined;
  config?: string | undefined;
  json?: boolean | undefined;
  /** hermes-gateway@NAME: its config and its own state directory (docs/scale-out.md). */
  instance?: string | undefined;
  /** The user unit to compare with what this version would write. */
  unit?: string | undefined;
}

export interface StatusReport {
  state_file: string;
  running: boolean;
  healthy: boolean;
  stale_heartbeat: boolean;
  summary: string;
  exit_code: number;
  state: StateDocument | null;
  error: string | null;
  /** The installed user unit against what this version writes (null: could not tell). */
  unit: UnitInspection | null;
}

/**
 * Where the state file may be: --state, else the config's `state_file`, else the default.
 * Without STATE_DIRECTORY in our environment (a shell, not the unit) the default has two
 * candidates, because systemd before v256 puts a user unit's StateDirectory= under
 * $XDG_CONFIG_HOME rather than $XDG_STATE_HOME; the freshest file wins.
 */
export function candidateStatePaths(options: StatusOptions, env: NodeJS.ProcessEnv): string[] {
  if (options.state) return [options.state];
  if (options.instance !== undefined) {
    const config = options.config ?? instanceConfigPath('instance', options.instance, env);
    const configured = stateFileSetting(resolve(config), env);
    return configured ? [configured] : instanceStateCandidates(options.instance, env);
  }
  const configured = stateFileSetting(locateConfig(options.config, env), env);
  if (configured) return [configured];
  const paths = [defaultStatePath(env)];
  if (!env.STATE_DIRECTORY) {
    const xdgConfig = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
    paths.push(join(xdgConfig, 'hermes-gateway', 'gateway_state.json'));
  }
  return paths;
}

/** Reads the freshest of the candidate state files; rejects with the first path's error. */
async function readFreshestState(paths: string[]): Promise<{ path: string; doc: StateDocument }> {
  const results = await Promise.allSettled(paths.map((path) => readStateFile(path)));
  let best: { path: string; doc: StateDocument } | null = null;
  results.forEach((result, i) => {
    if (result.status !== 'fulfilled') return;
    if (!best || Date.parse(result.value.updated_at) > Date.parse(best.doc.updated_at)) {
      best = { path: paths[i]!, doc: result.value };
    }
  });
  if (best) return best;
  throw (results[0] as PromiseRejectedResult).reason;
}

export async function buildStatusReport(
  options: StatusOptions,
  registry: PlatformRegistry,
  env: NodeJS.ProcessEnv,
  now = Date.now(),
): Promise<StatusReport> {
  const candidates = candidateStatePaths(options, env);
  let path = candidates[0]!;
  let doc: StateDocument;
  try {
    ({ path, doc } = await readFreshestState(candidates));
  } catch (err) {
    const message = isGatewayError(err) ? err.message : String(err);
    return {
      state_file: path,
      running: false,
      healthy: false,
      stale_heartbeat: false,
      summary: `not running (${message})`,
      exit_code: STATUS_EXIT.DOWN,
      state: null,
      error: message,
      unit: null,
    };
  }
  const alive = isSameProcessAlive(doc.pid, doc.pid_start_time);
  const live = alive && doc.gateway.state !== 'fatal' && doc.gateway.state !== 'stopped';
  const heartbeatAge = now - Date.parse(doc.heartbeat_at);
  const stale = live && heartbeatAge > STALE_HEARTBEATS * doc.heartbeat_interval_ms;
  const platforms = Object.values(doc.platforms);
  const allConnected = platforms.length > 0 && platforms.every((p) => p.state === 'connected');
  const brokerUp = doc.broker === undefined || doc.broker.state === 'connected';
  const healthy = live && !stale && doc.gateway.state === 'running' && allConnected && brokerUp;
  let summary: string;
  let exitCode: number;
  if (!live) {
    const how = alive ? `process ${doc.pid} is ending` : 'not running';
    summary = `${how}, last state from pid ${doc.pid} at ${doc.updated_at}: ${statusLine(doc)}`;
    if (doc.gateway.reason) summary += ` (${doc.gateway.reason})`;
    exitCode = STATUS_EXIT.DOWN;
  } else {
    summary = `running, pid ${doc.pid} since ${doc.started_at}: ${statusLine(doc)}`;
    if (!brokerUp) summary += `; broker ${doc.broker!.state} (${doc.broker!.reason ?? '-'})`;
    if (stale) summary += `; no heartbeat for ${Math.round(heartbeatAge / 1000)} s: wedged?`;
    exitCode = healthy ? STATUS_EXIT.HEALTHY : STATUS_EXIT.DEGRADED;
  }
  return {
    state_file: path,
    running: live,
    healthy,
    stale_heartbeat: stale,
    summary,
    exit_code: exitCode,
    state: doc,
    error: null,
    unit: null,
  };
}

/** One block per instance; its type is shown where it differs from the instance name. */
function formatPlatformLines(doc: StateDocument): string[] {
  return Object.entries(doc.platforms).map(([name, p]) => {
    const label = p.type !== undefined && p.type !== name ? `${name} (${p.type})` : name;
    const lines = [`  ${label}: ${p.state} since ${p.since}`];
    if (p.max_reconnect_attempts !== null || p.reconnect_attempt > 0) {
      lines.push(`    reconnect attempt ${p.reconnect_attempt}/${p.max_reconnect_attempts ?? '-'}`);
    }
    if (p.last_event_at) lines.push(`    last event ${p.last_event_at}`);
    if (p.last_error)
      lines.push(
        `    last error ${p.last_error.code} at ${p.last_error.at}: ${p.last_error.message}`,
      );
    return lines.join('\n');
  });
}

/** The warning for an installed unit this version would write differently, else null. */
export function staleUnitWarning(unit: UnitInspection | null): string | null {
  if (unit?.state !== 'stale') return null;
  const versions =
    unit.installed_template === unit.template
      ? `template ${unit.template}, other paths or settings`
      : `template ${unit.installed_template}, this version writes ${unit.template}`;
  return `the installed unit ${unit.path} differs from what this version of hermes-gateway writes (${versions}); refresh it (a running gateway is restarted): ${unit.refresh}`;
}

/**
 * `status`: exit codes are about the gateway's health only; a stale unit is a warning (on
 * stderr, and `unit` in --json), since the gateway it runs may be perfectly healthy.
 */
export async function statusCommand(
  options: StatusOptions,
  registry: PlatformRegistry,
  io: CliIo,
): Promise<number> {
  const report = await buildStatusReport(options, registry, io.env);
  // A template instance's unit (hermes-gateway@NAME) has no config of its own to compare.
  report.unit =
    options.instance !== undefined
      ? null
      : await inspectServiceUnit(options.unit ?? DEFAULT_UNIT, io.env).catch(() => null);
  if (options.json) {
    io.out(JSON.stringify(report, null, 2));
  } else {
    io.out(report.summary);
    if (report.state) io.out(formatPlatformLines(report.state).join('\n'));
    io.out(`state file: ${report.state_file}`);
  }
  const warning = staleUnitWarning(report.unit);
  if (warning) io.err(`warning GW_ERR_UNIT_STALE: ${warning}`);
  return report.exit_code;
}
