// The model pushed over OTLP/HTTP through the OpenTelemetry SDK: a MetricProducer turns the
// snapshots into the SDK's metric data (cumulative sums, gauges, explicit-bucket histograms),
// and a periodic reader exports them to a collector.
// The SDK is loaded on first use (it is most of this package's import time): `import type` here.
import type { resourceFromAttributes } from '@opentelemetry/resources';
import type {
  CollectionResult,
  MeterProvider,
  MetricData,
  MetricProducer,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import type { MetricSource } from './model.js';

type Sdk = typeof import('@opentelemetry/sdk-metrics') &
  typeof import('@opentelemetry/resources') &
  typeof import('@opentelemetry/exporter-metrics-otlp-http') & {
    ValueType: typeof import('@opentelemetry/api').ValueType;
  };

async function loadSdk(): Promise<Sdk> {
  const [metrics, resources, exporter, api] = await Promise.all([
    import('@opentelemetry/sdk-metrics'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/exporter-metrics-otlp-http'),
    import('@opentelemetry/api'),
  ]);
  return { ...metrics, ...resources, ...exporter, ValueType: api.ValueType };
}

export interface OtlpOptions {
  /** The collector's OTLP/HTTP metrics endpoint, e.g. `http://127.0.0.1:4318/v1/metrics`. */
  url: string;
  /** How often to push, in milliseconds (default 15 000). */
  intervalMs?: number;
  headers?: Record<string, string>;
  /** Resource attributes (service.name defaults to `bpfkit-exporter`). */
  resource?: Record<string, string>;
}

const hrNow = (): [number, number] => {
  const ms = Date.now();
  return [Math.floor(ms / 1000), (ms % 1000) * 1e6];
};

/** Snapshots of `sources` as the SDK's metric data. */
class SourcesProducer implements MetricProducer {
  readonly start = hrNow();
  constructor(
    readonly sdk: Sdk,
    readonly sources: () => Iterable<MetricSource>,
    readonly resource: ReturnType<typeof resourceFromAttributes>,
  ) {}

  async collect(): Promise<CollectionResult> {
    const { AggregationTemporality, DataPointType, ValueType } = this.sdk;
    const end = hrNow();
    const metrics: MetricData[] = [];
    const errors: unknown[] = [];
    for (const source of this.sources()) {
      let snap: ReturnType<MetricSource['collect']>;
      try {
        snap = source.collect();
      } catch (e) {
        errors.push(e);
        continue;
      }
      const descriptor = { name: snap.name, description: snap.help, unit: '', valueType: ValueType.DOUBLE };
      const times = { startTime: this.start, endTime: end };
      if (snap.type === 'histogram')
        metrics.push({
          descriptor,
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.HISTOGRAM,
          dataPoints: snap.series.map((h) => ({
            ...times,
            attributes: h.labels,
            value: { buckets: { boundaries: [...h.bounds], counts: h.counts }, sum: h.sum, count: h.count },
          })),
        });
      else if (snap.type === 'counter')
        metrics.push({
          descriptor,
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.SUM,
          isMonotonic: true,
          dataPoints: snap.series.map((s) => ({ ...times, attributes: s.labels, value: s.value })),
        });
      else
        metrics.push({
          descriptor,
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.GAUGE,
          dataPoints: snap.series.map((s) => ({ ...times, attributes: s.labels, value: s.value })),
        });
    }
    return {
      resourceMetrics: {
        resource: this.resource,
        scopeMetrics: [{ scope: { name: '@bpfkit/exporter' }, metrics }],
      },
      errors,
    };
  }
}

/** Pushes the model to an OTLP collector every `intervalMs`; {@link close} flushes and stops. */
export class OtlpPusher {
  readonly #ready: Promise<{ provider: MeterProvider; reader: PeriodicExportingMetricReader }>;

  constructor(sources: () => Iterable<MetricSource>, opts: OtlpOptions) {
    this.#ready = loadSdk().then((sdk) => OtlpPusher.#start(sdk, sources, opts));
    this.#ready.catch(() => {}); // reported by flush() and close()
  }

  static #start(sdk: Sdk, sources: () => Iterable<MetricSource>, opts: OtlpOptions) {
    const { MeterProvider, OTLPMetricExporter, PeriodicExportingMetricReader, resourceFromAttributes } = sdk;
    const resource = resourceFromAttributes({ 'service.name': 'bpfkit-exporter', ...opts.resource });
    const reader = new PeriodicExportingMetricReader({
      // a connection per push: pushes are seconds apart, and closing leaves no socket behind
      exporter: new OTLPMetricExporter({ url: opts.url, headers: opts.headers ?? {}, keepAlive: false }),
      exportIntervalMillis: opts.intervalMs ?? 15_000,
      metricProducers: [new SourcesProducer(sdk, sources, resource)],
    });
    return { provider: new MeterProvider({ resource, readers: [reader] }), reader };
  }

  /** Export now (besides the timer). */
  async flush(): Promise<void> {
    await (await this.#ready).reader.forceFlush();
  }

  /** A last export, then stop. */
  async close(): Promise<void> {
    await (await this.#ready).provider.shutdown();
  }
}

/** Push `sources` (a function, so an agent's current set is read at every export) over OTLP/HTTP. */
export function pushOtlp(
  sources: Iterable<MetricSource> | (() => Iterable<MetricSource>),
  opts: OtlpOptions,
): OtlpPusher {
  return new OtlpPusher(typeof sources === 'function' ? sources : () => sources, opts);
}
