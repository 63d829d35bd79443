/**
 * Section 6, scale-out (docs/scale-out.md): the same echo traffic through the in-process
 * handler and through gateway -> NATS JetStream -> `hermes-gateway worker` (echo) -> reply
 * -> gateway, with 1, 2 and 4 workers, in one run. A real nats-server (Debian's package) with
 * JetStream on a temp store; every process is a child of its own. Per variant: a burst of
 * `events` C2C messages over 1,000 users (events/s = events / first dispatch -> last reply at
 * the fake), then an open-loop echo at `rate`/s for `seconds` s (p50/p99, dispatch -> reply).
 * Variants are interleaved per repeat; figures are medians of the repeats.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { SendRecord } from '../../src/fakes/qq/index.js';
import { startNatsServer, type NatsServer } from '../../test/support/nats-server.js';
import { c2cPayload, trimRecords, userPool } from '../lib/fake-host.js';
import { GatewayChild } from '../lib/gateway-proc.js';
import { startGatewayWithFake } from '../lib/gateway-with-fake.js';
import { openLoop } from '../lib/load.js';
import type { Row } from '../lib/report.js';
import { median, quantile, sleep } from '../lib/util.js';

export interface ScaleOutOptions {
  /** Worker counts to run beside the in-process handler. */
  workers: number[];
  events: number;
  rate: number;
  seconds: number;
  repeats: number;
  log: (line: string) => void;
}

export interface ScaleOutFigure {
  /** null: the in-process echo handler. */
  workers: number | null;
  repeat: number;
  eventsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  missing: number;
  duplicates: number;
}

const PARTITIONS = 16;

function broker(nats: NatsServer): Record<string, unknown> {
  return { servers: [nats.url], stream: 'BENCH', subject_prefix: 'bench', partitions: PARTITIONS };
}

async function runVariant(
  workers: number | null,
  repeat: number,
  o: ScaleOutOptions,
): Promise<ScaleOutFigure> {
  const nats = workers === null ? null : await startNatsServer();
  const dir = await mkdtemp(join(tmpdir(), 'hgw-bench-scale-'));
  const children: GatewayChild[] = [];
  const setup = await startGatewayWithFake({
    tag: 'scale',
    config: { handler: nats ? { type: 'nats', ...broker(nats) } : { type: 'echo' } },
  });
  const { fake, gateway, stateFile } = setup;
  try {
    for (let w = 0; w < (workers ?? 0); w++) {
      const config = join(dir, `worker${w}.yaml`);
      await writeFile(
        config,
        stringify({
          log_level: 'info',
          log_format: 'json',
          broker: broker(nats!),
          handler: { type: 'echo' },
        }),
      );
      children.push(new GatewayChild({ config, secret: '', command: 'worker' }));
    }
    await gateway.waitState(
      stateFile,
      (d) =>
        d.platforms.qqbot?.state === 'connected' &&
        (nats === null || d.broker?.state === 'connected'),
      'qqbot (and the broker) connected',
      30_000,
      20,
    );
    for (const child of children) {
      await child.waitLine((l) => l.msg === 'worker consuming', 'worker consuming', 30_000);
    }
    const users = userPool(1_000);
    let next = 0;
    const sentAt = new Map<string, number>();
    const replyAt = new Map<string, number>();
    let duplicates = 0;
    const onSent = (record: SendRecord): void => {
      const id = (record.body as { msg_id?: unknown } | undefined)?.msg_id;
      if (typeof id !== 'string' || !sentAt.has(id)) return;
      if (replyAt.has(id)) duplicates += 1;
      else replyAt.set(id, performance.now());
    };
    fake.on('message-sent', onSent);
    const send = (): string => {
      const payload = c2cPayload(next++, users);
      sentAt.set(payload.id, performance.now());
      fake.dispatch('C2C_MESSAGE_CREATE', payload);
      return payload.id;
    };
    const waitReplies = async (ids: string[], graceMs: number): Promise<void> => {
      const end = Date.now() + graceMs;
      while (ids.some((id) => !replyAt.has(id)) && Date.now() < end) await sleep(5);
    };
    // Warm-up: a few events through every path (JIT, consumers' first pulls).
    const warm = Array.from({ length: 50 }, () => send());
    await waitReplies(warm, 20_000);
    // Burst: as fast as the fake writes them.
    const burst: string[] = [];
    const t0 = performance.now();
    await openLoop(50_000, o.events, () => {
      burst.push(send());
      if (burst.length % 5000 === 4999) trimRecords(fake);
    });
    await waitReplies(burst, 60_000);
    const last = Math.max(...burst.map((id) => replyAt.get(id) ?? NaN).filter(Number.isFinite));
    const answered = burst.filter((id) => replyAt.has(id)).length;
    const eventsPerSec = answered / ((last - t0) / 1000);
    // Latency: open loop at a rate every variant sustains.
    const timed: string[] = [];
    await openLoop(o.rate, Math.round(o.rate * o.seconds), () => timed.push(send()));
    await waitReplies(timed, 20_000);
    const latencies = timed.flatMap((id) => {
      const at = replyAt.get(id);
      return at === undefined ? [] : [at - sentAt.get(id)!];
    });
    fake.off('message-sent', onSent);
    return {
      workers,
      repeat,
      eventsPerSec,
      p50Ms: quantile(latencies, 0.5),
      p99Ms: quantile(latencies, 0.99),
      missing: burst.length - answered + (timed.length - latencies.length),
      duplicates,
    };
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await setup.close();
    await nats?.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function runScaleOut(
  o: ScaleOutOptions,
): Promise<{ rows: Row[]; raw: ScaleOutFigure[] }> {
  const variants: Array<number | null> = [null, ...o.workers];
  const figures: ScaleOutFigure[] = [];
  for (let r = 0; r < o.repeats; r++) {
    for (const v of variants) {
      const f = await runVariant(v, r, o);
      figures.push(f);
      o.log(
        `  ${v === null ? 'in-process' : `${v} worker(s)`} #${r + 1}: ${f.eventsPerSec.toFixed(0)} events/s, ` +
          `p50 ${f.p50Ms.toFixed(2)} ms, p99 ${f.p99Ms.toFixed(2)} ms, ${f.missing} missing, ${f.duplicates} duplicates`,
      );
    }
  }
  const rows: Row[] = [];
  for (const v of variants) {
    const mine = figures.filter((f) => f.workers === v);
    const label = v === null ? 'in-process echo' : `broker, ${v} worker${v === 1 ? '' : 's'}`;
    const lost = mine.reduce((n, f) => n + f.missing + f.duplicates, 0);
    const note = `median of ${mine.length}; ${lost} missing or duplicate replies in all`;
    rows.push(
      {
        section: '6 scale-out',
        metric: `events/s, ${label}`,
        unit: 'events/s',
        hermes: median(mine.map((f) => f.eventsPerSec)),
        note: `${o.events} events over 1,000 users; ${note}`,
      },
      {
        section: '6 scale-out',
        metric: `echo p50 @${o.rate}/s, ${label}`,
        unit: 'ms',
        hermes: median(mine.map((f) => f.p50Ms)),
      },
      {
        section: '6 scale-out',
        metric: `echo p99 @${o.rate}/s, ${label}`,
        unit: 'ms',
        hermes: median(mine.map((f) => f.p99Ms)),
        note,
      },
    );
  }
  return { rows, raw: figures };
}
