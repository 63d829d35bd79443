/**
 * Metrics touched once per inbound event, kept as plain numbers and handed to prom-client only
 * when /metrics is scraped.
 *
 * Why: prom-client validates and hashes the label object on every `inc()` (about 0.1 µs on
 * Node 20) and every histogram `observe()` (about 0.3 µs), and a gauge `set()` costs as much
 * as an `inc()`. The pipeline did one of each per event plus a second `set()`: about 0.6 µs of
 * an event's whole cost through the gateway (bench section 1, "+pipeline" row). Here an
 * increment is one Map lookup by a label value that is a constant string (a platform name, a
 * handler type), and an observation is a bucket search and three additions.
 */
import type * as Prom from 'prom-client';
import { requireLibrary } from './util/require-library.js';

const Counter = requireLibrary('prom-client/lib/counter') as typeof Prom.Counter;

type Registry = Prom.Registry;

/** One running total; `inc` is a field addition. */
export interface CountCell {
  inc(by?: number): void;
}

class Cell implements CountCell {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

/**
 * A counter with one label whose increments are plain additions. At scrape time its
 * prom-client Counter is rewritten from the totals (a counter only grows, so the text a
 * scraper sees is the same as if every increment had gone through prom-client).
 */
export class TallyCounter<L extends string> {
  private readonly cells = new Map<string, Cell>();

  /**
   * `derived` adds a second label whose value follows from the first (an instance's `type`),
   * computed at scrape time, so increments stay one lookup by one value.
   */
  constructor(options: {
    name: string;
    help: string;
    labelName: L;
    registers: Registry[];
    derived?: { labelName: string; value: (labelValue: string) => string };
  }) {
    const cells = this.cells;
    const { labelName, derived } = options;
    new Counter({
      name: options.name,
      help: options.help,
      labelNames: derived ? [labelName, derived.labelName] : [labelName],
      registers: options.registers,
      collect() {
        this.reset();
        for (const [value, cell] of cells) {
          if (cell.value <= 0) continue;
          const labels: Record<string, string> = { [labelName]: value };
          if (derived) labels[derived.labelName] = derived.value(value);
          this.inc(labels, cell.value);
        }
      },
    });
  }

  /** The cell of one label value: hold on to it where the same value is counted again and again. */
  cell(labelValue: string): CountCell {
    let cell = this.cells.get(labelValue);
    if (cell === undefined) {
      cell = new Cell();
      this.cells.set(labelValue, cell);
    }
    return cell;
  }

  inc(labelValue: string, by = 1): void {
    this.cell(labelValue).inc(by);
  }
}

/** One labelled series of a TallyHistogram. */
export interface HistogramSeries {
  /** Records one observation, in the histogram's unit (seconds for latencies). */
  observe(value: number): void;
}

class Series implements HistogramSeries {
  /** Non-cumulative count per bucket; the last slot is above the largest bound (+Inf). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]! += 1;
    this.sum += value;
    this.count += 1;
  }
}

interface SampleValue {
  value: number;
  labels: Record<string, string | number>;
  metricName: string;
}

/**
 * A histogram with one label, aggregated in plain arrays. prom-client has no way to hand a
 * Histogram counts aggregated elsewhere (prometheus/client_js#241), so this object takes the
 * Histogram's place in the Registry: the registry asks a metric for `get()` and formats the
 * samples it returns, and these are the samples prom-client's own Histogram gives for the same
 * observations (cumulative `_bucket` per `le`, then `+Inf`, `_sum`, `_count`), which the tests
 * compare line by line.
 */
export class TallyHistogram<L extends string> {
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  private readonly series = new Map<string, Series>();

  constructor(
    readonly options: {
      name: string;
      help: string;
      labelName: L;
      buckets: readonly number[];
      registers: Registry[];
    },
  ) {
    for (let i = 1; i < options.buckets.length; i++) {
      if (!(options.buckets[i]! > options.buckets[i - 1]!)) {
        throw new Error(`${options.name}: buckets must be strictly increasing`);
      }
    }
    for (const registry of options.registers) {
      // The Registry's declared type lists prom-client's four classes; at run time it takes any
      // object with name, help, type, aggregator and get() (registry.js: getMetricsAsString).
      registry.registerMetric(this as unknown as Prom.Metric);
    }
  }

  get name(): string {
    return this.options.name;
  }

  get help(): string {
    return this.options.help;
  }

  /** The series of one label value: hold on to it where the same value is observed again. */
  labels(labelValue: string): HistogramSeries {
    let series = this.series.get(labelValue);
    if (series === undefined) {
      series = new Series(this.options.buckets);
      this.series.set(labelValue, series);
    }
    return series;
  }

  /** Forgets every observation (prom-client's `reset()`). */
  reset(): void {
    this.series.clear();
  }

  /** The samples, in the shape prom-client's Registry formats. */
  get(): Promise<{
    name: string;
    help: string;
    type: 'histogram';
    aggregator: 'sum';
    values: SampleValue[];
  }> {
    const { name, labelName, buckets } = this.options;
    const values: SampleValue[] = [];
    for (const [labelValue, series] of this.series) {
      let cumulative = 0;
      for (let i = 0; i < buckets.length; i++) {
        cumulative += series.counts[i]!;
        values.push({
          value: cumulative,
          labels: { le: buckets[i]!, [labelName]: labelValue },
          metricName: `${name}_bucket`,
        });
      }
      values.push(
        {
          value: series.count,
          labels: { le: '+Inf', [labelName]: labelValue },
          metricName: `${name}_bucket`,
        },
        { value: series.sum, labels: { [labelName]: labelValue }, metricName: `${name}_sum` },
        { value: series.count, labels: { [labelName]: labelValue }, metricName: `${name}_count` },
      );
    }
    return Promise.resolve({
      name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    });
  }
}
