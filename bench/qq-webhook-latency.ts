/**
 * QQ webhook transport: callback → reply latency at a fixed rate (issue 11). The real gateway
 * CLI (child process, echo handler, `transport: webhook`) and the fake platform in this
 * process: the fake signs each C2C_MESSAGE_CREATE callback and POSTs it to the gateway's
 * inbound server (open loop, signed ahead, over kept-alive connections, at most 64 at once);
 * latency runs from the start of the POST to the echo reply reaching the fake's REST endpoint.
 * The acknowledgement (op 12) latency is reported beside it. The first second is not counted.
 * Each run starts a fresh gateway; the figure is the median of the runs.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/qq-webhook-latency.js [--rate 1000] [--seconds 20] [--runs 3]
 */
import { parseArgs } from 'node:util';
import type { SendRecord } from '../src/fakes/qq/index.js';
import { c2cPayload, userPool } from './lib/fake-host.js';
import { freePort } from '../test/support/ports.js';
import { startGatewayWithFake } from './lib/gateway-with-fake.js';
import { openLoop } from './lib/load.js';
import { max, median, procCpuMs, quantile, sleep } from './lib/util.js';
import { loadavg } from 'node:os';

interface RunFigure {
  sent: number;
  measured: number;
  replied: number;
  missing: number;
  notAcked: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  ackP50Ms: number;
  ackP99Ms: number;
  achievedRate: number;
  /** Gateway CPU time (user + system) per callback, from the first send to the last reply. */
  gatewayCpuUsPerEvent: number | null;
  loadAverage: number;
}

async function runOnce(rate: number, seconds: number, warmupSeconds: number): Promise<RunFigure> {
  const port = await freePort();
  const { fake, gateway, stateFile, close } = await startGatewayWithFake({
    tag: 'qq-webhook',
    config: {
      logLevel: 'warn',
      qqbot: { transport: 'webhook', webhook: { listen: `127.0.0.1:${port}` } },
    },
  });
  try {
    await gateway.waitState(
      stateFile,
      (d) => d.platforms.qqbot?.state === 'connected',
      'qqbot connected',
      20_000,
    );
    fake.webhook.target = `http://127.0.0.1:${port}/qqbot/qqbot`;
    fake.webhook.retry = { attempts: 1, delayMs: 0 };
    const total = Math.round(rate * seconds);
    const users = userPool(Math.max(1000, rate * 2));
    const list = Array.from({ length: total }, (_, i) => c2cPayload(i, users));
    const index = new Map(list.map((p, i) => [p.id, i]));
    // Signed ahead (valid within the 600 s tolerance): the fake's signing does not pace the run.
    const prepared = list.map((p) => fake.webhook.prepare('C2C_MESSAGE_CREATE', p));
    const sentAt = new Float64Array(total).fill(NaN);
    const ackAt = new Float64Array(total).fill(NaN);
    const replyAt = new Float64Array(total).fill(NaN);
    let replied = 0;
    const onSent = (record: SendRecord): void => {
      const msgId = (record.body as { msg_id?: unknown } | undefined)?.msg_id;
      const i = typeof msgId === 'string' ? index.get(msgId) : undefined;
      if (i === undefined || !Number.isNaN(replyAt[i]!)) return;
      replyAt[i] = performance.now();
      replied += 1;
    };
    fake.on('message-sent', onSent);
    const cpuBefore = procCpuMs(gateway.pid);
    const acks: Array<Promise<void>> = [];
    const loop = await openLoop(rate, total, (i) => {
      sentAt[i] = performance.now();
      acks.push(
        fake.webhook.deliverPrepared(prepared[i]!).then((record) => {
          if (record.acked) ackAt[i] = performance.now();
          // Keep memory flat on long runs: the record is not needed after its ack.
          fake.webhook.callbacks.length = 0;
        }),
      );
    });
    await Promise.all(acks);
    const deadline = performance.now() + 10_000;
    while (replied < total && performance.now() < deadline) await sleep(20);
    fake.off('message-sent', onSent);
    const cpuAfter = procCpuMs(gateway.pid);
    const firstCounted = Math.min(total, Math.round(rate * warmupSeconds));
    const latencies: number[] = [];
    const ackLatencies: number[] = [];
    let notAcked = 0;
    for (let i = firstCounted; i < total; i += 1) {
      if (!Number.isNaN(replyAt[i]!)) latencies.push(replyAt[i]! - sentAt[i]!);
      if (Number.isNaN(ackAt[i]!)) notAcked += 1;
      else ackLatencies.push(ackAt[i]! - sentAt[i]!);
    }
    return {
      sent: total,
      measured: total - firstCounted,
      replied,
      missing: total - replied,
      notAcked,
      p50Ms: quantile(latencies, 0.5),
      p99Ms: quantile(latencies, 0.99),
      maxMs: max(latencies),
      ackP50Ms: quantile(ackLatencies, 0.5),
      ackP99Ms: quantile(ackLatencies, 0.99),
      achievedRate: total / loop.seconds,
      gatewayCpuUsPerEvent:
        cpuBefore === null || cpuAfter === null ? null : ((cpuAfter - cpuBefore) * 1000) / total,
      loadAverage: loadavg()[0]!,
    };
  } finally {
    await close();
  }
}

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '20' },
    runs: { type: 'string', default: '3' },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const runs = Number(values.runs);
const figures: RunFigure[] = [];
for (let run = 1; run <= runs; run += 1) {
  const figure = await runOnce(rate, seconds, 1);
  figures.push(figure);
  process.stderr.write(`run ${run}/${runs}: ${JSON.stringify(figure)}\n`);
}
const pick = (key: keyof RunFigure): string => median(figures.map((f) => f[key] ?? NaN)).toFixed(2);
process.stdout.write(
  [
    `QQ webhook callback -> echo reply at ${rate}/s for ${seconds} s, median of ${runs} runs`,
    `| figure | median |`,
    `| --- | --- |`,
    `| achieved rate (/s) | ${pick('achievedRate')} |`,
    `| reply latency p50 (ms) | ${pick('p50Ms')} |`,
    `| reply latency p99 (ms) | ${pick('p99Ms')} |`,
    `| reply latency max (ms) | ${pick('maxMs')} |`,
    `| ack (op 12) latency p50 (ms) | ${pick('ackP50Ms')} |`,
    `| ack (op 12) latency p99 (ms) | ${pick('ackP99Ms')} |`,
    `| gateway CPU per callback (µs) | ${pick('gatewayCpuUsPerEvent')} |`,
    `| machine load average (1 min, 2 cores) | ${pick('loadAverage')} |`,
    `| missing replies | ${figures.map((f) => f.missing).join(', ')} |`,
    `| callbacks not acknowledged | ${figures.map((f) => f.notAcked).join(', ')} |`,
    '',
  ].join('\n'),
);
