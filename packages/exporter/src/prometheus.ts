// The model as Prometheus sees it: each source registered with a prom-client Registry as a
// metric whose get() reads the source, so prom-client writes the exposition (# HELP, # TYPE,
// _bucket{le=…}, _sum, _count); and the HTTP endpoint that serves it.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type MetricObjectWithValues, type MetricValue, Registry } from 'prom-client';
import type { MetricSource } from './model.js';

type Values = MetricObjectWithValues<MetricValue<string>>;

/** A prom-client metric backed by a source: what `registry.registerMetric` takes. */
class SourceMetric {
  readonly name: string;
  readonly help: string;
  readonly type: string;
  readonly aggregator = 'sum' as const;
  constructor(
    readonly source: MetricSource,
    readonly onError: ((source: MetricSource, error: unknown) => void) | undefined,
  ) {
    this.name = source.name;
    this.help = source.help;
    this.type = source.type;
  }
  get(): Values {
    let snap: ReturnType<MetricSource['collect']>;
    try {
      snap = this.source.collect();
    } catch (e) {
      if (!this.onError) throw e;
      this.onError(this.source, e);
      return {
        name: this.name,
        help: this.help,
        type: this.type,
        values: [],
        aggregator: 'sum',
      } as unknown as Values;
    }
    if (snap.type === 'histogram') {
      const values: MetricValue<string>[] = [];
      const bucket = `${snap.name}_bucket`;
      for (const h of snap.series) {
        let acc = 0;
        for (let i = 0; i < h.bounds.length; i++) {
          acc += h.counts[i]!;
          values.push({ metricName: bucket, labels: { ...h.labels, le: h.bounds[i]! }, value: acc } as never);
        }
        values.push({ metricName: bucket, labels: { ...h.labels, le: '+Inf' }, value: h.count } as never);
        values.push({ metricName: `${snap.name}_sum`, labels: h.labels, value: h.sum } as never);
        values.push({ metricName: `${snap.name}_count`, labels: h.labels, value: h.count } as never);
      }
      return this.#values(values);
    }
    // series are { labels, value } already: handed over as they are, no copy per series
    return this.#values(snap.series);
  }
  #values(values: unknown[]): Values {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      values,
      aggregator: 'sum',
    } as unknown as Values;
  }
  reset(): void {}
}

/**
 * Register `sources` with `registry` (a new one by default); returns the registry. A source that
 * fails to collect fails the scrape, unless `onError` is given: then it is told, and the scrape
 * goes on with that metric empty.
 */
export function registerPrometheus(
  sources: Iterable<MetricSource>,
  registry: Registry = new Registry(),
  opts: { onError?: (source: MetricSource, error: unknown) => void } = {},
): Registry {
  for (const s of sources) registry.registerMetric(new SourceMetric(s, opts.onError) as never);
  return registry;
}

/** `host:port`, `[v6]:port`, `:port` or `port` → where to listen (host 127.0.0.1 unless given). */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*))?:?(\d+)$/.exec(listen.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || !(port >= 0 && port <= 65_535))
    throw new TypeError(`listen address '${listen}' must be host:port, [ipv6]:port or :port`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** An HTTP server with /metrics, on 127.0.0.1:9435 unless told otherwise. */
export class MetricsServer {
  readonly server: Server;
  /** Where it listens, e.g. `http://127.0.0.1:9435/metrics` (still known after close). */
  readonly url: string;
  readonly port: number;
  #registry: () => Registry;
  private constructor(server: Server, registry: () => Registry) {
    this.server = server;
    this.#registry = registry;
    const a = server.address() as AddressInfo;
    this.port = a.port;
    this.url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/metrics`;
  }

  static async listen(registry: () => Registry, listen = '127.0.0.1:9435'): Promise<MetricsServer> {
    const { host, port } = parseListen(listen);
    let self: MetricsServer | undefined;
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '/').split('?')[0] !== '/metrics') {
        res.writeHead(req.url === '/' ? 200 : 404, { 'content-type': 'text/plain' });
        res.end(req.url === '/' ? 'bpfkit exporter: see /metrics\n' : 'not found\n');
        return;
      }
      const reg = self!.#registry();
      reg.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': reg.contentType });
          res.end(text);
        },
        (e: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`scrape failed: ${e instanceof Error ? e.message : String(e)}\n`);
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    self = new MetricsServer(server, registry);
    return self;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
