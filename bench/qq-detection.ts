/**
 * How fast the QQ adapter notices what the user would notice (DESIGN §9).
 *
 * (a) Half-open detection: the fake's link goes silent (socket paused: no ACK, no close);
 *     the time until the adapter declares the connection dead, as a multiple of the
 *     heartbeat interval. With the production ratio of ACK slack to interval
 *     (timeouts.heartbeat_ack_ms 10 s against the documented 45 s interval) and with the
 *     largest slack the adapter allows (0.45 × the interval), silence starting right after an ACK (the
 *     worst case) or at a random moment.
 * (b) Fatal → exit: the real CLI against the fake with a tiny reconnect budget; every
 *     reconnect is refused; the time from the fake's last refusal to the child's exit.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/qq-detection.js [--runs N]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { stringify } from 'yaml';
import type {
  AdapterContext,
  AdapterOwnedState,
  AdapterStatusPatch,
} from '../src/adapters/contract.js';
import { QQBotAdapter } from '../src/adapters/qqbot/adapter.js';
import { DEFAULTS, qqbotSchema, toSettings } from '../src/adapters/qqbot/config.js';
import { Secret } from '../src/config/secret.js';
import { FakeQQServer } from '../src/fakes/qq/server.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
/** The heartbeat interval of DOC's Hello example; the real one is unconfirmed. */
const DOC_INTERVAL_MS = 45_000;
const BENCH_INTERVAL_MS = 200;

interface Stats {
  median: number;
  max: number;
  min: number;
}

function stats(values: number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, max: sorted.at(-1)!, min: sorted[0]! };
}

/** A context that records transitions with their time; no runner, no state file. */
function recordingContext(): {
  ctx: AdapterContext;
  transitions: Array<{ state: AdapterOwnedState; patch: AdapterStatusPatch; at: number }>;
  waitFor: (
    pred: (t: { state: AdapterOwnedState; patch: AdapterStatusPatch }) => boolean,
  ) => Promise<number>;
} {
  const transitions: Array<{ state: AdapterOwnedState; patch: AdapterStatusPatch; at: number }> =
    [];
  const waiters = new Set<() => void>();
  const ctx: AdapterContext = {
    name: 'qqbot',
    log: pino({ level: 'silent' }),
    transition: (state, patch = {}) => {
      transitions.push({ state, patch, at: performance.now() });
      for (const w of [...waiters]) w();
      return Promise.resolve();
    },
    note: () => undefined,
    touch: () => undefined,
    track: (_what, promise) => {
      promise.catch(() => undefined);
    },
    emit: () => undefined,
    resumePoint: null,
    saveSession: () => undefined,
    handledPosition: () => null,
    whenHandled: () => Promise.resolve(),
    resumeOutcome: () => undefined,
  };
  const waitFor = (
    pred: (t: { state: AdapterOwnedState; patch: AdapterStatusPatch }) => boolean,
  ): Promise<number> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const found = transitions.find(pred);
        if (!found) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(found.at);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error('bench: transition not seen within 10 s'));
      }, 10_000);
      waiters.add(check);
      check();
    });
  return { ctx, transitions, waitFor };
}

/** One half-open detection; returns the detection time in ms. */
async function halfOpenOnce(ackMs: number, silence: 'after-ack' | 'random'): Promise<number> {
  const fake = await FakeQQServer.start({ heartbeatIntervalMs: BENCH_INTERVAL_MS });
  const config = qqbotSchema.parse({
    app_id: fake.settings.appId,
    client_secret: new Secret(fake.settings.clientSecret),
    token_url: fake.tokenUrl,
    api_base: fake.apiBase,
    timeouts: { heartbeat_ack_ms: ackMs },
    reconnect: { backoff_ms: [10_000] },
    jitter: true,
  });
  const adapter = new QQBotAdapter(toSettings(config));
  const { ctx, waitFor } = recordingContext();
  const controller = new AbortController();
  const life = adapter.run(ctx, controller.signal);
  try {
    await waitFor((t) => t.state === 'connected');
    // Let the jittered first beat pass so that beats are on their regular schedule.
    await fake.waitFor('heartbeat', BENCH_INTERVAL_MS * 3, (b) => b.acked);
    if (silence === 'after-ack') {
      await fake.waitFor('heartbeat', BENCH_INTERVAL_MS * 3, (b) => b.acked);
    } else {
      await delay(Math.random() * BENCH_INTERVAL_MS);
    }
    const silentAt = performance.now();
    fake.goHalfOpen();
    const detectedAt = await waitFor(
      (t) => t.patch.lastError?.code === 'GW_ERR_QQ_HEARTBEAT_TIMEOUT',
    );
    return detectedAt - silentAt;
  } finally {
    controller.abort();
    await life.catch(() => undefined);
    await fake.close();
  }
}

/** One fatal run of the CLI; returns ms from the last refusal (and from the close) to exit. */
async function fatalExitOnce(): Promise<{ fromRefusal: number; fromClose: number }> {
  const fake = await FakeQQServer.start({ heartbeatIntervalMs: 5_000 });
  const dir = await mkdtemp(join(tmpdir(), 'hgw-bench-qq-'));
  try {
    const configPath = join(dir, 'config.yaml');
    await writeFile(
      configPath,
      stringify({
        state_file: join(dir, 'gateway_state.json'),
        log_level: 'warn',
        platforms: {
          qqbot: {
            enabled: true,
            app_id: fake.settings.appId,
            client_secret: '${BENCH_QQ_SECRET}',
            token_url: fake.tokenUrl,
            api_base: fake.apiBase,
            reconnect: { backoff_ms: [20, 40], max_attempts: 3 },
          },
        },
      }),
      { mode: 0o600 },
    );
    const env: NodeJS.ProcessEnv = { ...process.env, BENCH_QQ_SECRET: fake.settings.clientSecret };
    for (const key of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'JOURNAL_STREAM', 'NODE_OPTIONS']) {
      delete env[key];
    }
    const ready = fake.waitFor('ready', 10_000);
    const child = spawn(process.execPath, [CLI, 'run', '--config', configPath], {
      env,
      stdio: 'ignore',
    });
    const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
      child.on('exit', (code) => resolve({ code, at: Date.now() })),
    );
    try {
      await ready;
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    fake.refuseConnections();
    const closedAt = Date.now();
    fake.closeClient(4009);
    const exit = await exited;
    if (exit.code !== 1) throw new Error(`bench: expected exit 1, got ${exit.code}`);
    const lastRefusal = fake.refusedUpgrades.at(-1)?.at;
    if (lastRefusal === undefined) throw new Error('bench: no refusal recorded');
    return { fromRefusal: exit.at - lastRefusal, fromClose: exit.at - closedAt };
  } finally {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '20' } } });
  const runs = Math.max(1, Number(values.runs) || 20);
  const productionRatio = DEFAULTS.timeouts.heartbeatAckMs / DOC_INTERVAL_MS;
  const productionAckMs = Math.round(BENCH_INTERVAL_MS * productionRatio);
  const capAckMs = 60_000; // capped by the adapter at 0.45 × interval

  const rows: string[][] = [];
  const cases: Array<[string, number, 'after-ack' | 'random', string]> = [
    [
      `half-open, silent right after an ACK (worst case)`,
      productionAckMs,
      'after-ack',
      'production ratio',
    ],
    [`half-open, silent at a random moment`, productionAckMs, 'random', 'production ratio'],
    [`half-open, silent right after an ACK (worst case)`, capAckMs, 'after-ack', 'max slack (cap)'],
  ];
  for (const [what, ackMs, silence, slack] of cases) {
    const times: number[] = [];
    for (let i = 0; i < runs; i++) times.push(await halfOpenOnce(ackMs, silence));
    const s = stats(times.map((t) => t / BENCH_INTERVAL_MS));
    const ackShown = Math.min(ackMs, BENCH_INTERVAL_MS * 0.45);
    rows.push([
      what,
      `${slack}: ack ${ackShown} ms`,
      `${s.median.toFixed(2)}×`,
      `${s.max.toFixed(2)}×`,
      '1.50×',
    ]);
  }

  const fatalRuns = Math.max(1, Math.min(runs, 10));
  const fromRefusal: number[] = [];
  const fromClose: number[] = [];
  for (let i = 0; i < fatalRuns; i++) {
    const r = await fatalExitOnce();
    fromRefusal.push(r.fromRefusal);
    fromClose.push(r.fromClose);
  }
  const fr = stats(fromRefusal);
  const fc = stats(fromClose);
  rows.push([
    'last refused reconnect → process exit 1',
    'budget 3, steps 20/40 ms',
    `${fr.median.toFixed(0)} ms`,
    `${fr.max.toFixed(0)} ms`,
    '1000 ms',
  ]);
  rows.push([
    'close 4009 → all reconnects refused → exit 1',
    'budget 3, steps 20/40 ms',
    `${fc.median.toFixed(0)} ms`,
    `${fc.max.toFixed(0)} ms`,
    '100 ms backoff + exit',
  ]);

  const header = ['measure', 'setting', 'median', 'max', 'bound'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  process.stdout.write(
    `QQ adapter detection bench: node ${process.version}, heartbeat interval ${BENCH_INTERVAL_MS} ms, ${runs} runs (fatal: ${fatalRuns})\n\n`,
  );
  process.stdout.write(`${line(header)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n`);
  for (const row of rows) process.stdout.write(`${line(row)}\n`);
}

main().then(
  () => {
    process.exitCode = 0;
  },
  (err: unknown) => {
    process.stderr.write(
      `qq-detection bench failed: ${err instanceof Error ? err.stack : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
