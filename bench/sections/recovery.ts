/**
 * Section 3, detection and recovery, end to end through the real CLI and its state file:
 *
 * (a) half-open link (`goHalfOpen()`: nothing read, acked or closed): time from the moment the
 *     link goes silent to the state file saying `reconnecting`, in heartbeat intervals;
 * (b) server close 4009 (resumable): time until the state file says `connected` again, via
 *     RESUME, while a steady stream of messages goes on; every message the fake sent (before,
 *     during and after the outage) must be answered exactly once (counted by msg_id);
 * (c) reconnect budget exhausted (every upgrade refused): time from the last refusal to the
 *     process's exit, and `fatal` persisted in the state file before it.
 */
import type { FakeQQServer, SendRecord } from '../../src/fakes/qq/index.js';
import { DEFAULTS as QQ_DEFAULTS } from '../../src/adapters/qqbot/config.js';
import { c2cPayload, startFake, userPool } from '../lib/fake-host.js';
import { GatewayChild, readState } from '../lib/gateway-proc.js';
import { startGatewayWithFake, type ConfigPatch } from '../lib/gateway-with-fake.js';
import type { Row } from '../lib/report.js';
import { max, median, sleep, wallNow } from '../lib/util.js';

/** The interval of the DOC's Hello example: the production ratio is taken against it. */
const DOC_INTERVAL_MS = 45_000;

export interface RecoveryOptions {
  halfOpenRuns: number;
  heartbeatIntervalMs: number;
  resumeRuns: number;
  fatalRuns: number;
  log: (line: string) => void;
}

/** A fake and a gateway connected to it, torn down by `close()`. */
async function setUp(
  fakeOptions: Parameters<typeof startFake>[0],
  patch: ConfigPatch,
): Promise<{
  fake: FakeQQServer;
  gateway: GatewayChild;
  stateFile: string;
  close: () => Promise<void>;
}> {
  const { fake, gateway, stateFile, close } = await startGatewayWithFake({
    tag: 'recovery',
    fake: fakeOptions,
    config: patch,
  });
  try {
    await gateway.waitState(stateFile, isConnected, 'qqbot connected', 20_000);
  } catch (err) {
    await close();
    throw err;
  }
  return { fake, gateway, stateFile, close };
}

function isConnected(doc: { platforms: Record<string, { state: string } | undefined> }): boolean {
  return doc.platforms.qqbot?.state === 'connected';
}

// ---- (a) half-open -------------------------------------------------------------------------

interface HalfOpenFigure {
  ackMs: number;
  ratios: number[];
}

async function halfOpen(options: RecoveryOptions, ackMs: number): Promise<HalfOpenFigure> {
  const interval = options.heartbeatIntervalMs;
  const { fake, gateway, stateFile, close } = await setUp(
    // The fake's own silence deadline is off: only the client's detection is measured.
    { heartbeatIntervalMs: interval, heartbeatDeadlineMs: null },
    { timeouts: { heartbeat_ack_ms: ackMs }, reconnect: { backoff_ms: [20] } },
  );
  const ratios: number[] = [];
  try {
    for (let run = 0; run < options.halfOpenRuns; run++) {
      // Beats on their regular schedule (the first one is jittered). Even runs go silent
      // right after an ACK (the worst case: DESIGN §9), odd runs at a random moment.
      await fake.waitFor('heartbeat', interval * 4, (b) => b.acked);
      await fake.waitFor('heartbeat', interval * 4, (b) => b.acked);
      if (run % 2 === 1) await sleep(Math.random() * interval);
      const silentAt = wallNow();
      fake.goHalfOpen();
      const { at } = await gateway.waitState(
        stateFile,
        (d) => d.platforms.qqbot?.state === 'reconnecting',
        'reconnecting after half-open',
        interval * 20,
      );
      ratios.push((at - silentAt) / interval);
      await gateway.waitState(stateFile, isConnected, 'connected again', 20_000);
    }
  } finally {
    await close();
  }
  return { ackMs, ratios };
}

// ---- (b) close 4009 → RESUME ---------------------------------------------------------------

interface ResumeFigure {
  recoveryMs: number[];
  /** The reconnect wait the adapter chose (from its log line), per run. */
  waitMs: number[];
  sent: number;
  sentWhileDown: number;
  missing: number;
  duplicates: number;
  identifies: number;
  resumesAccepted: number;
}

async function resumeAfterClose(options: RecoveryOptions): Promise<ResumeFigure> {
  const backoffMs = 250;
  const { fake, gateway, stateFile, close } = await setUp(
    { heartbeatIntervalMs: 1000 },
    { reconnect: { backoff_ms: [backoffMs] }, qqbot: { jitter: false } },
  );
  const users = userPool(2000);
  const replies = new Map<string, number>();
  const onSent = (record: SendRecord): void => {
    const id = (record.body as { msg_id?: unknown } | undefined)?.msg_id;
    if (typeof id === 'string') replies.set(id, (replies.get(id) ?? 0) + 1);
  };
  fake.on('message-sent', onSent);
  const sentIds: string[] = [];
  let sentWhileDown = 0;
  let streaming = true;
  // A steady 200 messages/s over the whole test, through every outage.
  const stream = (async (): Promise<void> => {
    let i = 0;
    while (streaming) {
      for (let k = 0; k < 2; k++) {
        const payload = c2cPayload(i++, users);
        const record = fake.dispatch('C2C_MESSAGE_CREATE', payload);
        sentIds.push(payload.id);
        if (!record.delivered) sentWhileDown += 1;
      }
      await sleep(10);
    }
  })();
  const recoveryMs: number[] = [];
  const waitMs: number[] = [];
  try {
    await sleep(500);
    for (let run = 0; run < options.resumeRuns; run++) {
      const from = gateway.lines.length;
      const closedAt = wallNow();
      fake.closeClient(4009, 'Session timed out');
      await gateway.waitState(
        stateFile,
        (d) => d.platforms.qqbot?.state === 'reconnecting',
        'reconnecting',
        5000,
      );
      const { at } = await gateway.waitState(
        stateFile,
        isConnected,
        'connected via RESUME',
        20_000,
      );
      recoveryMs.push(at - closedAt);
      const line = gateway.lines.slice(from).find((l) => typeof l.wait_ms === 'number');
      waitMs.push(typeof line?.wait_ms === 'number' ? line.wait_ms : NaN);
      await sleep(700);
    }
  } finally {
    streaming = false;
    await stream;
  }
  // Let the last replies arrive.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && sentIds.some((id) => !replies.has(id))) await sleep(20);
  let missing = 0;
  let duplicates = 0;
  for (const id of sentIds) {
    const n = replies.get(id) ?? 0;
    if (n === 0) missing += 1;
    else if (n > 1) duplicates += n - 1;
  }
  const figure: ResumeFigure = {
    recoveryMs,
    waitMs,
    sent: sentIds.length,
    sentWhileDown,
    missing,
    duplicates,
    identifies: fake.identifies.filter((r) => r.accepted).length,
    resumesAccepted: fake.resumes.filter((r) => r.accepted).length,
  };
  fake.off('message-sent', onSent);
  await close();
  return figure;
}

// ---- (c) budget exhausted → exit -----------------------------------------------------------

interface FatalFigure {
  fromRefusalMs: number[];
  exitCodes: Array<number | null>;
  /** Per run: the state file after exit said gateway and qqbot `fatal`. */
  fatalPersisted: boolean[];
}

async function fatalExit(options: RecoveryOptions): Promise<FatalFigure> {
  const figure: FatalFigure = { fromRefusalMs: [], exitCodes: [], fatalPersisted: [] };
  for (let run = 0; run < options.fatalRuns; run++) {
    const { fake, gateway, stateFile, close } = await setUp(
      { heartbeatIntervalMs: 5000 },
      { reconnect: { backoff_ms: [20, 40], max_attempts: 3 } },
    );
    try {
      let lastRefusal = NaN;
      fake.on('upgrade-refused', () => {
        lastRefusal = wallNow();
      });
      fake.refuseConnections(true);
      fake.closeClient(4009, 'Session timed out');
      const code = await Promise.race([
        gateway.exited,
        sleep(15_000).then(() => 'timeout' as const),
      ]);
      if (code === 'timeout') throw gateway.failure('did not exit after its budget');
      figure.fromRefusalMs.push(gateway.exitedAt! - lastRefusal);
      figure.exitCodes.push(code);
      const doc = readState(stateFile);
      figure.fatalPersisted.push(
        doc !== null &&
          doc.gateway.state === 'fatal' &&
          doc.gateway.exit_code === code &&
          doc.platforms.qqbot?.state === 'fatal',
      );
    } finally {
      await close();
    }
  }
  return figure;
}

export async function runRecovery(
  options: RecoveryOptions,
): Promise<{ rows: Row[]; raw: unknown }> {
  const interval = options.heartbeatIntervalMs;
  const productionAck = Math.max(
    1,
    Math.round((interval * QQ_DEFAULTS.timeouts.heartbeatAckMs) / DOC_INTERVAL_MS),
  );
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};

  options.log(
    `  (a) half-open, interval ${interval} ms, ack ${productionAck} ms (production ratio)`,
  );
  const prod = await halfOpen(options, productionAck);
  options.log(`  (a) half-open, ack capped at ½ interval (largest slack allowed)`);
  const capped = await halfOpen(options, QQ_DEFAULTS.timeouts.heartbeatAckMs);
  raw.halfOpen = { intervalMs: interval, productionRatio: prod, maxSlack: capped };
  for (const [label, tag, f] of [
    [`ack ${productionAck} ms = production ratio`, 'production ack', prod],
    ['ack ½ interval (max slack)', 'ack ½ interval', capped],
  ] as const) {
    const worst = max(f.ratios);
    rows.push({
      section: '3a half-open',
      metric: `silence → reconnecting, max, ${tag}`,
      unit: '× interval',
      hermes: worst,
      target: '≤ 1.5×',
      pass: Number.isFinite(worst) ? worst <= 1.5 : null,
      note: `${label}; heartbeat ${interval} ms; ${f.ratios.length} runs; median ${median(f.ratios).toFixed(2)}×; measured to the state file write`,
    });
  }

  options.log(`  (b) close 4009 → RESUME, ${options.resumeRuns} runs under 200 msg/s`);
  const resume = await resumeAfterClose(options);
  raw.resume = resume;
  const handshake = resume.recoveryMs.map((r, i) => r - (resume.waitMs[i] ?? NaN));
  rows.push(
    {
      section: '3b close 4009',
      metric: 'close → connected (RESUME), median',
      unit: 'ms',
      hermes: median(resume.recoveryMs),
      note:
        `includes the configured reconnect wait (${median(resume.waitMs)} ms, reconnect.backoff_ms); ` +
        `without it: median ${median(handshake).toFixed(1)} ms, max ${max(handshake).toFixed(1)} ms; ` +
        `${resume.resumesAccepted} RESUMEs accepted, ${resume.identifies} Identify in all`,
    },
    {
      section: '3b close 4009',
      metric: 'messages answered exactly once',
      unit: '',
      hermes: `${resume.sent - resume.missing - resume.duplicates}/${resume.sent}`,
      target: 'all, once',
      pass: resume.missing === 0 && resume.duplicates === 0 && resume.identifies === 1,
      note: `${resume.sentWhileDown} sent while disconnected (replayed on RESUME); ${resume.missing} missing, ${resume.duplicates} duplicate replies`,
    },
  );

  options.log(`  (c) reconnect budget exhausted, ${options.fatalRuns} runs`);
  const fatal = await fatalExit(options);
  raw.fatal = fatal;
  const worst = max(fatal.fromRefusalMs);
  const allPersisted = fatal.fatalPersisted.every(Boolean) && fatal.exitCodes.every((c) => c === 1);
  rows.push({
    section: '3c budget exhausted',
    metric: `last refusal → exit, max (${fatal.fromRefusalMs.length} runs)`,
    unit: 'ms',
    hermes: worst,
    target: '< 1000 ms, fatal persisted',
    pass: Number.isFinite(worst) ? worst < 1000 && allPersisted : null,
    note: `median ${median(fatal.fromRefusalMs).toFixed(0)} ms; exit codes ${[...new Set(fatal.exitCodes)].join(',')}; state file after exit says fatal: ${fatal.fatalPersisted.filter(Boolean).length}/${fatal.fatalPersisted.length}`,
  });
  return { rows, raw };
}
