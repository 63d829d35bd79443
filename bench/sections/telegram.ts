/**
 * Section 6, Telegram, on the fake Bot API server (src/fakes/telegram) in this process, every
 * client in its own process:
 *
 * - throughput: N message updates queued while the client holds a long poll, then drained
 *   through getUpdates batches of 100; updates/s = N / (last update queued → last update
 *   counted by the client). hermes (in-process adapter + runner, counted at dispatch) vs a
 *   bare fetch + JSON.parse loop (the ceiling) vs grammY's `bot.start()`.
 * - echo latency: one message per distinct private chat at a steady rate; pushed into the fake
 *   → the echo's sendMessage at the fake. hermes is the real CLI with the echo handler.
 * - half-open poll: the next getUpdates is accepted and never answered; hermes (real CLI) is
 *   timed from the moment the fake took that poll to `reconnecting` in the state file; the
 *   bound is polling.timeout_s + timeouts.poll_slack_ms. grammY is watched for a new poll.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeTelegramServer } from '../../src/fakes/telegram/server.js';
import { TELEGRAM_TOKEN_ENV, writeTelegramConfig } from '../lib/gateway-config.js';
import { GatewayChild } from '../lib/gateway-proc.js';
import { ClientProcess, type ClientConfig } from '../lib/ipc.js';
import type { Cell, Row } from '../lib/report.js';
import {
  DIST_BENCH,
  collectGarbage,
  errorText,
  max,
  median,
  quantile,
  sleep,
} from '../lib/util.js';

export interface TelegramBenchOptions {
  updates: number;
  repeats: number;
  latencyMessages: number;
  latencyRate: number;
  halfOpenRuns: number;
  /** polling.timeout_s and timeouts.poll_slack_ms of the half-open runs. */
  halfOpenTimeoutS: number;
  halfOpenSlackMs: number;
  /** How long grammY is watched for a new poll after its poll went silent. */
  grammyWindowMs: number;
  log: (line: string) => void;
}

interface TgClient {
  id: 'hermes' | 'ceiling' | 'grammy';
  label: string;
  script: string;
  platform?: 'telegram';
}

const CLIENTS: TgClient[] = [
  { id: 'hermes', label: 'hermes-gateway', script: 'clients/hermes.js', platform: 'telegram' },
  { id: 'ceiling', label: 'bare fetch + JSON.parse', script: 'clients/tg-ceiling.js' },
  { id: 'grammy', label: 'grammY', script: 'clients/grammy.js' },
];

function clientConfig(fake: FakeTelegramServer, workDir: string, expected: number): ClientConfig {
  return {
    tokenUrl: '',
    apiBase: fake.apiBase,
    wsUrl: '',
    appId: '',
    clientSecret: '',
    expected,
    intents: 0,
    workDir,
    token: fake.token,
  };
}

/** Forks `client` against a new fake; `body` runs once the client holds a long poll. */
async function withClient<T>(
  client: TgClient,
  expected: number,
  variant: string | undefined,
  body: (fake: FakeTelegramServer, child: ClientProcess) => Promise<T>,
): Promise<T> {
  const fake = await FakeTelegramServer.start();
  const workDir = await mkdtemp(join(tmpdir(), `hgw-bench-tg-${client.id}-`));
  const config = clientConfig(fake, workDir, expected);
  if (client.platform !== undefined) config.platform = client.platform;
  if (variant !== undefined) config.variant = variant;
  const child = new ClientProcess(join(DIST_BENCH, client.script), config);
  try {
    const polling = fake.waitFor('poll-waiting', 20_000);
    const ready = await child.next(['ready'], 20_000);
    if (ready.type === 'error') throw new Error(ready.message);
    await polling;
    return await body(fake, child);
  } finally {
    await child.stop();
    await fake.close().catch(() => undefined);
    await rm(workDir, { recursive: true, force: true });
  }
}

/** A private chat per user, as the fake's `message()` makes them. */
function chatOf(i: number): { id: number; type: 'private'; first_name: string } {
  return { id: 200_000 + i, type: 'private', first_name: `user${i}` };
}

async function throughputOnce(client: TgClient, updates: number): Promise<number> {
  return withClient(client, updates, undefined, async (fake, child) => {
    collectGarbage();
    // Queued in one synchronous loop: the held poll is answered on the next timer turn, so
    // the client sees none of them before the clock starts.
    for (let i = 0; i < updates; i++) {
      fake.message(`message ${i} with some text`, { chat: chatOf(i % 1000) });
    }
    const startAt = performance.timeOrigin + performance.now();
    const done = await child.next(['done'], Math.max(60_000, updates));
    if (done.type !== 'done') throw new Error(done.type === 'error' ? done.message : done.type);
    return updates / ((done.lastAt - startAt) / 1000);
  });
}

/** Sends `messages` at `rate`/s from distinct chats; resolves with latencies in ms. */
async function measureEcho(
  fake: FakeTelegramServer,
  messages: number,
  rate: number,
): Promise<number[]> {
  const pushedAt = new Map<number, number>();
  const latencies: number[] = [];
  const all = new Promise<void>((resolve) => {
    fake.on('sent', (sent: { chatId: number; at: number }) => {
      const at = pushedAt.get(sent.chatId);
      if (at === undefined) return;
      pushedAt.delete(sent.chatId);
      latencies.push(Date.now() - at);
      if (latencies.length === messages) resolve();
    });
  });
  const started = Date.now();
  for (let i = 0; i < messages; i++) {
    const due = started + (i * 1000) / rate;
    if (due > Date.now()) await sleep(due - Date.now());
    const chat = chatOf(i);
    pushedAt.set(chat.id, Date.now());
    fake.message(`echo ${i}`, { chat });
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    all,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${pushedAt.size} echoes missing`)), 15_000);
    }),
  ]).finally(() => clearTimeout(timer));
  return latencies;
}

/** hermes-gateway: the real CLI with the echo handler against a new fake. */
async function withGateway<T>(
  tag: string,
  telegram: Record<string, unknown>,
  body: (fake: FakeTelegramServer, gateway: GatewayChild, stateFile: string) => Promise<T>,
): Promise<T> {
  const fake = await FakeTelegramServer.start();
  const dir = await mkdtemp(join(tmpdir(), `hgw-bench-tg-${tag}-`));
  const stateFile = join(dir, 'gateway_state.json');
  let gateway: GatewayChild | undefined;
  try {
    const config = await writeTelegramConfig(dir, { stateFile, apiBase: fake.apiBase, telegram });
    gateway = new GatewayChild({ config, secret: '', env: { [TELEGRAM_TOKEN_ENV]: fake.token } });
    await gateway.waitState(
      stateFile,
      (d) => d.platforms.telegram?.state === 'connected',
      'telegram connected',
      20_000,
    );
    return await body(fake, gateway, stateFile);
  } finally {
    await gateway?.stop();
    await fake.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

async function halfOpenHermes(o: TelegramBenchOptions): Promise<number[]> {
  const telegram = {
    polling: { timeout_s: o.halfOpenTimeoutS },
    timeouts: { poll_slack_ms: o.halfOpenSlackMs },
    reconnect: { backoff_ms: [50], max_attempts: 1000, healthy_after_ms: 1_000 },
  };
  return withGateway('half-open', telegram, async (fake, gateway, stateFile) => {
    const detections: number[] = [];
    const boundMs = o.halfOpenTimeoutS * 1000 + o.halfOpenSlackMs;
    for (let run = 0; run < o.halfOpenRuns; run++) {
      await gateway.waitState(
        stateFile,
        (d) => d.platforms.telegram?.state === 'connected',
        'connected before a run',
        boundMs * 3,
      );
      fake.fault('getUpdates', { kind: 'hang' });
      const hung = await fake.waitFor<{ at: number }>('hang', boundMs * 3);
      const seen = await gateway.waitState(
        stateFile,
        (d) =>
          d.platforms.telegram?.state === 'reconnecting' &&
          d.platforms.telegram.last_error?.code === 'GW_ERR_TELEGRAM_POLL_TIMEOUT',
        'reconnecting after the silent poll',
        boundMs * 3,
      );
      detections.push(seen.at - hung.at);
      o.log(
        `  hermes half-open run ${run + 1}/${o.halfOpenRuns}: ${Math.round(seen.at - hung.at)} ms (bound ${boundMs} ms)`,
      );
    }
    return detections;
  });
}

/** Whether grammY sends a new getUpdates within the window after its poll went silent. */
async function halfOpenGrammy(o: TelegramBenchOptions): Promise<number | null> {
  const grammy = CLIENTS.find((c) => c.id === 'grammy')!;
  return withClient(grammy, Number.MAX_SAFE_INTEGER, undefined, async (fake) => {
    fake.fault('getUpdates', { kind: 'hang' });
    // One update ends the held poll; the next one is the silent one.
    fake.message('wake up');
    const hung = await fake.waitFor<{ at: number }>('hang', 10_000);
    try {
      await fake.waitFor('poll', o.grammyWindowMs);
      return Date.now() - hung.at;
    } catch {
      return null;
    }
  });
}

export async function runTelegram(o: TelegramBenchOptions): Promise<{ rows: Row[]; raw: unknown }> {
  const raw: Record<string, unknown> = {};
  const rows: Row[] = [];
  const errors: Record<string, string> = {};

  // Throughput, interleaved repeats.
  const rates = new Map<string, number[]>(CLIENTS.map((c) => [c.id, []]));
  for (let r = 0; r < o.repeats; r++) {
    for (const client of CLIENTS) {
      if (errors[client.id] !== undefined) continue;
      try {
        const rate = await throughputOnce(client, o.updates);
        rates.get(client.id)!.push(rate);
        o.log(
          `  ${client.label} run ${r + 1}/${o.repeats}: ${Math.round(rate).toLocaleString('en-US')} updates/s`,
        );
      } catch (err) {
        errors[client.id] = errorText(err);
        o.log(`  ${client.label}: failed: ${errors[client.id]}`);
      }
    }
  }
  raw.throughput = Object.fromEntries(rates);
  const fig = (id: string): Cell =>
    errors[id] !== undefined ? `failed: ${errors[id]}` : median(rates.get(id)!);
  const hermesRate = fig('hermes');
  const ceilingRate = fig('ceiling');
  rows.push({
    section: '6 telegram',
    metric: 'updates/s through getUpdates batches of 100',
    unit: '/s',
    hermes: hermesRate,
    ceiling: ceilingRate,
    peers: { grammY: fig('grammy') },
    ratio:
      typeof hermesRate === 'number' && typeof ceilingRate === 'number'
        ? hermesRate / ceilingRate
        : null,
    ratioOf: 'ceiling',
    note: `median of ${o.repeats} interleaved run(s) of ${o.updates.toLocaleString('en-US')} message updates queued while the client held a long poll; each client in its own process; hermes counted at the runner's dispatch`,
  });

  // Echo latency.
  const latency: Record<string, number[] | string> = {};
  try {
    latency.hermes = await withGateway('latency', {}, (fake) =>
      measureEcho(fake, o.latencyMessages, o.latencyRate),
    );
  } catch (err) {
    latency.hermes = errorText(err);
  }
  for (const client of CLIENTS.filter((c) => c.id !== 'hermes')) {
    try {
      latency[client.id] = await withClient(client, Number.MAX_SAFE_INTEGER, 'echo', (fake) =>
        measureEcho(fake, o.latencyMessages, o.latencyRate),
      );
    } catch (err) {
      latency[client.id] = errorText(err);
    }
  }
  raw.latency = latency;
  const lat = (id: string, q: number): Cell => {
    const v = latency[id];
    return typeof v === 'string' || v === undefined ? `failed: ${v}` : quantile(v, q);
  };
  for (const [name, q] of [
    ['p50', 0.5],
    ['p99', 0.99],
  ] as const) {
    rows.push({
      section: '6 telegram',
      metric: `echo latency ${name} at ${o.latencyRate}/s`,
      unit: 'ms',
      hermes: lat('hermes', q),
      ceiling: lat('ceiling', q),
      peers: { grammY: lat('grammy', q) },
      ...(name === 'p50' && {
        note: `${o.latencyMessages} messages, one per private chat, update queued at the fake → sendMessage at the fake; hermes is the real CLI (echo handler, pipeline, default pacer); the fake answers a held poll 1 ms after an update arrives`,
      }),
    });
  }

  // Half-open poll detection.
  const boundMs = o.halfOpenTimeoutS * 1000 + o.halfOpenSlackMs;
  let detections: number[] | string;
  try {
    detections = await halfOpenHermes(o);
  } catch (err) {
    detections = errorText(err);
  }
  let grammy: number | null | string;
  try {
    grammy = await halfOpenGrammy(o);
  } catch (err) {
    grammy = errorText(err);
  }
  raw.halfOpen = { boundMs, hermes: detections, grammy };
  rows.push({
    section: '6 telegram',
    metric: `half-open poll → detected (timeout_s ${o.halfOpenTimeoutS} + slack ${o.halfOpenSlackMs} ms)`,
    unit: 'ms',
    hermes: typeof detections === 'string' ? `failed: ${detections}` : median(detections),
    peers: {
      grammY:
        typeof grammy === 'number'
          ? grammy
          : typeof grammy === 'string'
            ? `failed: ${grammy}`
            : `none in ${o.grammyWindowMs / 1000} s`,
    },
    target: `≤ ${boundMs} ms + scheduling`,
    pass: typeof detections === 'string' ? null : max(detections) <= boundMs + 250,
    ...(typeof detections !== 'string' && {
      note: `hermes median of ${detections.length} runs, max ${Math.round(max(detections))} ms; fake took the poll → state file reconnecting (GW_ERR_TELEGRAM_POLL_TIMEOUT). Production bound: 30 s + 10 s. grammY has no poll deadline of its own beyond its client's timeoutSeconds (default 500 s)`,
    }),
  });
  return { rows, raw };
}
