// The one metrics model both outputs read: each source gives, at collection time, a snapshot
// of one metric family. Prometheus (prom-client) and OTLP (the OpenTelemetry SDK) each adapt it.

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface SeriesValue {
  labels: Record<string, string>;
  value: number;
}

export interface HistogramValue {
  labels: Record<string, string>;
  /** Finite upper bounds, increasing. */
  bounds: readonly number[];
  /** Counts per bucket (not cumulative): one per bound, then the overflow bucket (+Inf). */
  counts: number[];
  count: number;
  /** Estimated from the buckets (each count at its bucket's midpoint): bucket maps hold no sum. */
  sum: number;
}

export type MetricSnapshot =
  | { name: string; help: string; type: 'counter' | 'gauge'; series: SeriesValue[] }
  | { name: string; help: string; type: 'histogram'; series: HistogramValue[] };

/** Anything that can be read into a snapshot at collection time. */
export interface MetricSource {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  collect(): MetricSnapshot;
}

/** A counter per metric name, kept by the exporter about itself. */
export class PerMetricCounter implements MetricSource {
  readonly type = 'counter' as const;
  readonly #counts = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  add(metric: string, n = 1): void {
    if (n > 0) this.#counts.set(metric, (this.#counts.get(metric) ?? 0) + n);
  }
  get(metric: string): number {
    return this.#counts.get(metric) ?? 0;
  }
  collect(): MetricSnapshot {
    return {
      name: this.name,
      help: this.help,
      type: 'counter',
      series: [...this.#counts].map(([metric, value]) => ({ labels: { metric }, value })),
    };
  }
}

/** Series dropped over the cardinality cap, per metric. */
export class DroppedSeries extends PerMetricCounter {
  constructor() {
    super(
      'bpfkit_exporter_dropped_series_total',
      'Series not exported because a metric reached its maxSeries cap, counted per scrape.',
    );
  }
}

/** Collections of a metric that failed (its map could not be read): the scrape goes on without it. */
export class ScrapeErrors extends PerMetricCounter {
  constructor() {
    super(
      'bpfkit_exporter_scrape_errors_total',
      'Collections of a metric that failed; the scrape went on without it.',
    );
  }
}
