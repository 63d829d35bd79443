/**
 * The crash soak (GitHub issue 15): the built gateway CLI with the echo handler against the
 * fake QQ server, which sends a steady stream of C2C messages over many chats, while the
 * gateway is killed with SIGKILL at seeded random moments (and stopped with SIGTERM a few
 * times) and restarted 0.5 s after each exit, as systemd's RestartSec would.
 *
 * Invariants, checked at the end: every message the fake sent is answered, exactly once (one
 * accepted reply per msg_id); each chat's replies come in the order of its messages; the
 * state file parses whenever it is read (after every kill too). Pieces shared with the chaos
 * soak: the gateway process wrapper and the seeded PRNG.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { GatewayProcess, type ProcessExit } from '../chaos/gateway-process.js';
import { Rng } from '../chaos/prng.js';
import { FakeQQServer } from '../../src/fakes/qq/server.js';
import { sandboxEnv } from '../support/spawn-gateway.js';

const APP_ID = '102088888';
const CLIENT_SECRET = 'crash-soak-secret-7e2a9c';
/** systemd's RestartSec in the unit the gateway installs. */
const RESTART_DELAY_MS = 500;

export interface CrashSoakOptions {
  seed: number;
  /** How long a restarted gateway may take to answer its first message. */
  upTimeoutMs: number;
  /** How long the stream goes on after the last restart. */
  tailMs: number;
  /** SIGKILLs and SIGTERMs spread over the run. */
  kills: number;
  terms: number;
  /** Messages per second, over `chats` chats. */
  rate: number;
  chats: number;
  cliPath: string;
  /** Wait this long after the stream ends for the last answers. */
  settleMs: number;
  progress: (line: string) => void;
  keepDir: boolean;
}

export interface RestartRecord {
  how: 'kill9' | 'term';
  at: number;
  /** Spawn → first accepted reply of the next process (ms); null when none came. */
  firstReplyMs: number | null;
  /** How the next process got its session: resumed at the point, or identified afresh. */
  session: 'resumed' | 'identified' | 'none';
  exitCode: number | null;
}

export interface CrashSoakSummary {
  crash_soak_summary: true;
  seed: number;
  duration_ms: number;
  rate: number;
  chats: number;
  sent: number;
  answered: number;
  lost: number;
  duplicates: number;
  order_violations: number;
  torn_state_reads: number;
  state_reads: number;
  kills: number;
  terms: number;
  resumes_accepted: number;
  fell_back_to_identify: number;
  deduplicated_resends: number;
  first_reply_ms: { median: number | null; p95: number | null; max: number | null };
  restarts: RestartRecord[];
  unexpected_exits: number;
  violations: string[];
}

interface Message {
  chat: number;
  n: number;
  accepted: number;
}

export async function runCrashSoak(options: CrashSoakOptions): Promise<CrashSoakSummary> {
  const rng = new Rng(options.seed);
  const dir = await mkdtemp(join(tmpdir(), 'hermes-crash-soak-'));
  const statePath = join(dir, 'state', 'gateway_state.json');
  const configPath = join(dir, 'config.yaml');
  const violations: string[] = [];
  const fake = await FakeQQServer.start({
    appId: APP_ID,
    clientSecret: CLIENT_SECRET,
    // Enough to replay every message of a restart gap; the window is far longer than one.
    replayBufferSize: 200_000,
    resumeWindowMs: 120_000,
    maxRepliesPerMsgId: null,
    heartbeatIntervalMs: 5_000,
  });
  const config = {
    state_file: statePath,
    log_level: 'info',
    shutdown_timeout_ms: 4_000,
    heartbeat_interval_ms: 1_000,
    handler: { type: 'echo', concurrency: 32, queue_limit: 1_000, max_queued_events: 50_000 },
    platforms: {
      qqbot: {
        enabled: true,
        app_id: APP_ID,
        client_secret: '${CRASH_SOAK_SECRET}',
        token_url: fake.tokenUrl,
        api_base: fake.apiBase,
        reconnect: { backoff_ms: [100, 200, 400], max_attempts: 20 },
      },
    },
  };
  await writeFile(configPath, stringify(config), { mode: 0o600 });
  const env = sandboxEnv(dir, { CRASH_SOAK_SECRET: CLIENT_SECRET });

  const messages = new Map<string, Message>();
  /** Per chat: the message numbers of its accepted replies, in the order they arrived. */
  const replyOrder: number[][] = Array.from({ length: options.chats }, () => []);
  const counters = { sent: 0, dedupResends: 0, resumes: 0, identifies: 0, torn: 0, reads: 0 };
  let current: GatewayProcess | null = null;
  let currentRestart: RestartRecord | null = null;
  let unexpectedExits = 0;
  const restarts: RestartRecord[] = [];

  fake.on('send-request', (r) => {
    const body = r.body as { msg_id?: string; content?: string } | undefined;
    const response = r.response as { code?: number } | undefined;
    if (!r.accepted) {
      if (response?.code === 40054005) counters.dedupResends += 1;
      return;
    }
    const message = body?.msg_id === undefined ? undefined : messages.get(body.msg_id);
    if (message === undefined) {
      violations.push(`reply to an unknown msg_id ${String(body?.msg_id)}`);
      return;
    }
    message.accepted += 1;
    if (message.accepted === 1) replyOrder[message.chat]!.push(message.n);
    replyWaiter?.();
    if (currentRestart !== null && currentRestart.firstReplyMs === null && current !== null) {
      currentRestart.firstReplyMs = Date.now() - current.startedAt;
    }
  });
  fake.on('resume', (r) => {
    if (r.accepted) counters.resumes += 1;
    if (currentRestart !== null && currentRestart.session === 'none' && r.accepted) {
      currentRestart.session = 'resumed';
    }
  });
  fake.on('identify', (r) => {
    if (!r.accepted) return;
    counters.identifies += 1;
    if (currentRestart !== null && currentRestart.session === 'none') {
      currentRestart.session = 'identified';
    }
  });

  const readState = async (): Promise<void> => {
    let text: string;
    try {
      text = await readFile(statePath, 'utf8');
    } catch {
      return; // Not written yet.
    }
    counters.reads += 1;
    try {
      JSON.parse(text);
    } catch {
      counters.torn += 1;
      violations.push(`torn state file (${text.length} bytes)`);
    }
  };

  let expectExit = false;
  const start = (): GatewayProcess => {
    const lines: string[] = [];
    const gateway = new GatewayProcess(
      options.cliPath,
      ['run', '--config', configPath],
      env,
      (_line, raw) => {
        if (options.keepDir) lines.push(raw);
      },
    );
    if (options.keepDir) {
      void gateway.exited.then(() =>
        writeFile(join(dir, `gateway-${gateway.pid}.log`), lines.join('\n') + '\n'),
      );
    }
    expectExit = false;
    void gateway.exited.then((exit: ProcessExit) => {
      if (!expectExit) {
        unexpectedExits += 1;
        violations.push(
          `gateway ${gateway.pid} exited on its own: ${exit.code ?? exit.signal} ${gateway.stderr.slice(-500)}`,
        );
      }
    });
    return gateway;
  };

  // The restarts: seeded kinds in a seeded order. Each comes a seeded 0.2–2 s after the
  // process it ends answered its first message, so every kill hits a gateway under load
  // (however slowly a loaded machine starts node), and at a random point of its work.
  const total = options.kills + options.terms;
  const kinds: Array<'kill9' | 'term'> = [
    ...Array<'kill9'>(options.kills).fill('kill9'),
    ...Array<'term'>(options.terms).fill('term'),
  ];
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  const moments = kinds.map((how) => ({ how, afterFirstReplyMs: 200 + rng.float() * 1_800 }));
  /** Resolves at the first accepted reply after `since`, or after `timeoutMs`. */
  let replyWaiter: (() => void) | null = null;
  const firstReplyAfter = (timeoutMs: number): Promise<boolean> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        replyWaiter = null;
        resolve(false);
      }, timeoutMs);
      replyWaiter = () => {
        clearTimeout(timer);
        replyWaiter = null;
        resolve(true);
      };
    });

  const t0 = Date.now();
  current = start();
  // The stream: as many messages as the rate owes since t0, checked every 10 ms.
  let streaming = true;
  const stream = (async () => {
    // The fake needs a session before it can dispatch: wait for the first READY.
    while (fake.currentSessionId === null && streaming) await sleep(20);
    const began = Date.now();
    while (streaming) {
      const owed = Math.floor(((Date.now() - began) / 1000) * options.rate);
      while (counters.sent < owed) {
        const chat = counters.sent % options.chats;
        const n = Math.floor(counters.sent / options.chats);
        const record = fake.dispatchC2CMessage({
          content: `c${chat} m${n}`,
          userOpenid: `CHAT${chat}`,
        });
        messages.set(record.d.id, { chat, n, accepted: 0 });
        counters.sent += 1;
      }
      await sleep(10);
    }
  })();

  try {
    for (const moment of moments) {
      if (!(await firstReplyAfter(options.upTimeoutMs))) {
        violations.push(`no reply within ${options.upTimeoutMs} ms of restart #${restarts.length}`);
      }
      await sleep(moment.afterFirstReplyMs);
      const gateway: GatewayProcess = current;
      expectExit = true;
      const record: RestartRecord = {
        how: moment.how,
        at: Date.now() - t0,
        firstReplyMs: null,
        session: 'none',
        exitCode: null,
      };
      gateway.signal(moment.how === 'kill9' ? 'SIGKILL' : 'SIGTERM');
      const exit = await Promise.race([gateway.exited, sleep(15_000).then(() => null)]);
      if (exit === null) {
        violations.push(`gateway ${gateway.pid} did not exit within 15 s of ${moment.how}`);
        gateway.signal('SIGKILL');
        await gateway.exited;
      } else record.exitCode = exit.code;
      if (moment.how === 'term' && exit !== null && exit.code !== 0) {
        violations.push(`SIGTERM ended the gateway with ${exit.code ?? exit.signal}, not 0`);
      }
      await readState();
      await sleep(RESTART_DELAY_MS);
      current = start();
      currentRestart = record;
      restarts.push(record);
      options.progress(
        `${Math.round((Date.now() - t0) / 1000)} s: ${moment.how} #${restarts.length}/${total}, sent ${counters.sent}`,
      );
    }
    // The last process works under the stream for a while too, then the stream ends.
    await firstReplyAfter(options.upTimeoutMs);
    await sleep(options.tailMs);
    streaming = false;
    await stream;
    // Settle: wait until every message has an answer (or the deadline passes).
    const deadline = Date.now() + options.settleMs;
    while (Date.now() < deadline) {
      if ([...messages.values()].every((m) => m.accepted > 0)) break;
      await sleep(100);
    }
    await readState();
    expectExit = true;
    current.signal('SIGTERM');
    await Promise.race([current.exited, sleep(15_000)]);
    current.signal('SIGKILL');
    await readState();
  } finally {
    streaming = false;
    await stream.catch(() => undefined);
    expectExit = true;
    current?.signal('SIGKILL');
    await current?.exited;
    await fake.close();
    if (options.keepDir) options.progress(`kept ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  }

  let lost = 0;
  let duplicates = 0;
  let answered = 0;
  for (const m of messages.values()) {
    if (m.accepted === 0) lost += 1;
    else answered += 1;
    if (m.accepted > 1) duplicates += m.accepted - 1;
  }
  let orderViolations = 0;
  for (const [chat, order] of replyOrder.entries()) {
    for (let i = 1; i < order.length; i++) {
      if (order[i]! < order[i - 1]!) {
        orderViolations += 1;
        if (orderViolations <= 5) {
          violations.push(`chat ${chat}: reply to m${order[i]} after m${order[i - 1]}`);
        }
      }
    }
  }
  if (lost > 0) violations.push(`${lost} messages never answered`);
  if (duplicates > 0) violations.push(`${duplicates} duplicate replies`);
  const latencies = restarts
    .map((r) => r.firstReplyMs)
    .filter((v): v is number => v !== null)
    .sort((a, b) => a - b);
  const pick = (q: number): number | null =>
    latencies.length === 0
      ? null
      : latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return {
    crash_soak_summary: true,
    seed: options.seed,
    duration_ms: Date.now() - t0,
    rate: options.rate,
    chats: options.chats,
    sent: counters.sent,
    answered,
    lost,
    duplicates,
    order_violations: orderViolations,
    torn_state_reads: counters.torn,
    state_reads: counters.reads,
    kills: restarts.filter((r) => r.how === 'kill9').length,
    terms: restarts.filter((r) => r.how === 'term').length,
    resumes_accepted: restarts.filter((r) => r.session === 'resumed').length,
    fell_back_to_identify: restarts.filter((r) => r.session === 'identified').length,
    deduplicated_resends: counters.dedupResends,
    first_reply_ms: { median: pick(0.5), p95: pick(0.95), max: latencies.at(-1) ?? null },
    restarts,
    unexpected_exits: unexpectedExits,
    violations,
  };
}
