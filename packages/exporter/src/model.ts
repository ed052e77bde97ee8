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

/** Series dropped over the cardinality cap, per metric, as a counter of its own. */
export class DroppedSeries implements MetricSource {
  readonly name = 'bpfkit_exporter_dropped_series_total';
  readonly help = 'Series not exported because a metric reached its maxSeries cap, counted per scrape.';
  readonly type = 'counter' as const;
  readonly #counts = new Map<string, number>();

  add(metric: string, n: number): void {
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
