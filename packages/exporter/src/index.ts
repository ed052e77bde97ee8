/**
 * @bpfkit/exporter — eBPF metrics for Prometheus and OpenTelemetry: maps read at scrape time
 * as counters, gauges and histograms, labels decoded from the key's BTF fields, and a
 * YAML-configured agent with built-in programs (syscalls, execs, block I/O latency, run-queue
 * latency, TCP retransmits).
 *
 * ```ts
 * const agent = await Agent.start({ config: 'exporter.yaml', listen: '127.0.0.1:9435' });
 * agent.handleSignals(); // SIGHUP reloads, SIGINT/SIGTERM detach and exit
 * ```
 * @packageDocumentation
 */
export { Agent, type AgentOptions } from './agent.js';
export {
  builtinProgram,
  ConfigError,
  type ConfigProblem,
  loadConfig,
  parseConfig,
  type ResolvedProgram,
} from './config.js';
export {
  blockDevice,
  cgroupPath,
  cString,
  type Decoder,
  decoderFor,
  ipv6,
  ksym,
  pidComm,
} from './decoders.js';
export { ExportedMap, type ExportMapOptions, exportMap } from './exported-map.js';
export { type Field, fieldsOf, type RawValue } from './layout.js';
export {
  DroppedSeries,
  type HistogramValue,
  type MetricSnapshot,
  type MetricSource,
  type MetricType,
  PerMetricCounter,
  ScrapeErrors,
  type SeriesValue,
} from './model.js';
export { type OtlpOptions, OtlpPusher, pushOtlp } from './otlp.js';
export { MetricsServer, parseListen, registerPrometheus } from './prometheus.js';
export {
  type AttachSpec,
  BUILTINS,
  type BucketSpec,
  type BuiltinName,
  configSchema,
  DECODERS,
  type DecoderName,
  type ExporterConfig,
  type LabelSpec,
  type Metric,
  type MetricSpec,
  metricSchema,
  type ProgramConfig,
  programSchema,
} from './spec.js';
export { X86_64_SYSCALLS } from './syscalls.generated.js';
