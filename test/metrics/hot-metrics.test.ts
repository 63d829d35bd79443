/**
 * The tallies stand in for prom-client's Counter and Histogram on the per-event path: for the
 * same increments and observations, a scrape must print exactly what prom-client's own classes
 * print, and the pipeline-load gauge must read its bound source at scrape time.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import type * as Prom from 'prom-client';
import { TallyCounter, TallyHistogram } from '../../src/hot-metrics.js';
import { createMetrics } from '../../src/metrics.js';

const load = createRequire(import.meta.url);
const { Registry, Counter, Histogram } = load('prom-client') as typeof Prom;

const BUCKETS = [0.005, 0.01, 0.5, 2];
/** Below the first bound, on bounds (le is inclusive), between, above the last. */
const OBSERVED: Array<[string, number]> = [
  ['echo', 0.001],
  ['echo', 0.005],
  ['echo', 0.0051],
  ['echo', 0.5],
  ['echo', 2],
  ['echo', 7.25],
  ['webhook', 0.3],
  ['webhook', 0.3],
];

await test('TallyHistogram scrapes exactly like prom-client Histogram', async () => {
  const mine = new Registry();
  const theirs = new Registry();
  const options = { name: 'h_seconds', help: 'Latency.', buckets: BUCKETS };
  const tally = new TallyHistogram({ ...options, labelName: 'handler', registers: [mine] });
  const reference = new Histogram({ ...options, labelNames: ['handler'], registers: [theirs] });
  for (const [handler, value] of OBSERVED) {
    tally.labels(handler).observe(value);
    reference.observe({ handler }, value);
  }
  const text = await mine.metrics();
  assert.equal(text, await theirs.metrics());
  assert.match(text, /^h_seconds_bucket\{le="0\.005",handler="echo"\} 2$/m);
  assert.match(text, /^h_seconds_bucket\{le="\+Inf",handler="echo"\} 6$/m);
  assert.match(text, /^h_seconds_count\{handler="webhook"\} 2$/m);

  tally.reset();
  reference.reset();
  assert.equal(await mine.metrics(), await theirs.metrics());
});

await test('TallyHistogram refuses buckets that are not strictly increasing', () => {
  assert.throws(
    () =>
      new TallyHistogram({
        name: 'bad_seconds',
        help: 'x',
        labelName: 'handler',
        buckets: [0.1, 0.1],
        registers: [],
      }),
    /strictly increasing/,
  );
});

await test('TallyCounter scrapes exactly like prom-client Counter', async () => {
  const mine = new Registry();
  const theirs = new Registry();
  const options = { name: 'events_total', help: 'Events.' };
  const tally = new TallyCounter({ ...options, labelName: 'platform', registers: [mine] });
  const reference = new Counter({ ...options, labelNames: ['platform'], registers: [theirs] });
  assert.equal(await mine.metrics(), await theirs.metrics(), 'nothing counted yet');
  const cell = tally.cell('qqbot');
  for (let i = 0; i < 3; i++) {
    cell.inc();
    reference.inc({ platform: 'qqbot' });
  }
  tally.inc('telegram', 5);
  reference.inc({ platform: 'telegram' }, 5);
  const text = await mine.metrics();
  assert.equal(text, await theirs.metrics());
  assert.match(text, /^events_total\{platform="qqbot"\} 3$/m);
  // A second scrape reads the same totals (the counter is rewritten, not added to).
  assert.equal(await mine.metrics(), text);
});

await test('hermes_pipeline_queued_events reads the bound load at scrape time', async () => {
  const metrics = createMetrics();
  const gauge = (): Promise<string> =>
    metrics.registry.getSingleMetricAsString('hermes_pipeline_queued_events');
  assert.match(await gauge(), /^hermes_pipeline_queued_events 0$/m);
  let load = 7;
  const unbind = metrics.bindPipelineLoad(() => load);
  assert.match(await gauge(), /^hermes_pipeline_queued_events 7$/m);
  load = 2;
  assert.match(await gauge(), /^hermes_pipeline_queued_events 2$/m);
  unbind();
  assert.match(await gauge(), /^hermes_pipeline_queued_events 0$/m);
});
