// The exporter against the real kernel: maps read into the model (per-CPU sums, labels from BTF
// fields, histograms, the series cap), the Prometheus exposition, the agent's load / scrape /
// reload / close, and an OTLP push. Runs in the kernel matrix's guests too (no Prometheus here).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCollection } from '@bpfkit/loader';
import { BpfMap, possibleCpus, struct, u32, u64 } from '@bpfkit/maps';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, exportMap, pushOtlp, registerPrometheus, ScrapeErrors } from '../src/index.js';
import {
  activity,
  countSockets,
  fixture,
  httpGet,
  poll,
  sample,
  socketsBack,
  uniqueComm,
  WRITE_SIZES,
} from './helpers.js';

const keyFields = [
  { path: 'dev', offset: 0, size: 4, kind: 'int' as const, signed: false },
  { path: 'slot', offset: 4, size: 4, kind: 'int' as const, signed: false },
];
const key = struct({ dev: u32, slot: u32 });

const temps: string[] = [];
afterEach(() => {
  for (const t of temps.splice(0)) rmSync(t, { recursive: true, force: true });
});
function configFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'bpfkit-exporter-config-'));
  temps.push(dir);
  const path = join(dir, 'exporter.yaml');
  writeFileSync(path, text);
  return path;
}

describe('exportMap', () => {
  it('sums per-CPU values and decodes labels', async () => {
    using map = BpfMap.create({ type: 'percpu_hash', key, value: u64, maxEntries: 16 });
    const cpus = possibleCpus();
    map.set(
      { dev: 8 * 0x100000, slot: 110 },
      Array.from({ length: cpus }, (_, i) => BigInt(i + 1)),
    );
    map.set(
      { dev: 8 * 0x100000, slot: 39 },
      Array.from({ length: cpus }, () => 2n),
    );
    const m = exportMap(
      map,
      {
        name: 'calls_total',
        help: 'Calls.',
        type: 'counter',
        labels: [
          { name: 'syscall', field: 'slot', decoder: 'syscall' },
          { name: 'dev', field: 'dev', decoder: 'hex' },
        ],
      },
      { keyFields },
    );
    const snap = m.collect();
    const byName = Object.fromEntries(
      snap.series.map((s) => [s.labels.syscall, 'value' in s ? s.value : -1]),
    );
    expect(byName).toEqual({ getppid: (cpus * (cpus + 1)) / 2, getpid: 2 * cpus });
    const text = await registerPrometheus([m]).metrics();
    expect(text).toContain('# HELP calls_total Calls.\n# TYPE calls_total counter\n');
    expect(sample(text, 'calls_total', { syscall: 'getppid', dev: '0x800000' })).toBe(
      (cpus * (cpus + 1)) / 2,
    );
  });

  it('follows the map from scrape to scrape: new values, new keys, deleted keys', () => {
    using map = BpfMap.create({ type: 'hash', key, value: u64, maxEntries: 16 });
    map.set({ dev: 1, slot: 0 }, 5n).set({ dev: 2, slot: 0 }, 6n).set({ dev: 2, slot: 1 }, 1n);
    const m = exportMap(
      map,
      { name: 'follow', help: 'F.', type: 'gauge', labels: [{ name: 'dev', field: 'dev' }] },
      { keyFields },
    );
    const values = () =>
      Object.fromEntries(m.collect().series.map((s) => [s.labels.dev, 'value' in s ? s.value : -1]));
    expect(values()).toEqual({ '1': 5, '2': 7 }); // two keys merge into one label set
    map.set({ dev: 1, slot: 0 }, 9n).set({ dev: 3, slot: 0 }, 1n);
    map.delete({ dev: 2, slot: 1 });
    expect(values()).toEqual({ '1': 9, '2': 6, '3': 1 });
    map.delete({ dev: 2, slot: 0 });
    expect(values()).toEqual({ '1': 9, '3': 1 });
  });

  it('exposes a log2 bucket map as a histogram', async () => {
    using map = BpfMap.create({ type: 'hash', key, value: u64, maxEntries: 64 });
    map.set({ dev: 1, slot: 3 }, 4n); // values 4..7
    map.set({ dev: 1, slot: 5 }, 6n); // values 16..31
    map.set({ dev: 1, slot: 40 }, 1n); // above max: +Inf only
    const m = exportMap(
      map,
      {
        name: 'lat_seconds',
        help: 'Latency.',
        type: 'histogram',
        bucket: { field: 'slot', kind: 'log2', max: 10, multiplier: 0.001 },
        labels: [{ name: 'dev', field: 'dev' }],
      },
      { keyFields },
    );
    const text = await registerPrometheus([m]).metrics();
    expect(text).toContain('# TYPE lat_seconds histogram');
    expect(sample(text, 'lat_seconds_bucket', { dev: '1', le: '0.004' })).toBe(0);
    expect(sample(text, 'lat_seconds_bucket', { dev: '1', le: '0.008' })).toBe(4);
    expect(sample(text, 'lat_seconds_bucket', { dev: '1', le: '0.032' })).toBe(10);
    expect(sample(text, 'lat_seconds_bucket', { dev: '1', le: '1.024' })).toBe(10);
    expect(sample(text, 'lat_seconds_bucket', { dev: '1', le: '+Inf' })).toBe(11);
    expect(sample(text, 'lat_seconds_count', { dev: '1' })).toBe(11);
    expect(sample(text, 'lat_seconds_sum', { dev: '1' })).toBeCloseTo(4 * 0.006 + 6 * 0.024 + 1.024, 6);
  });

  it('linear buckets', async () => {
    using map = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 4 });
    map.set(0, 1n).set(1, 2n).set(3, 5n);
    const m = exportMap(
      map,
      {
        name: 'sizes',
        help: 'Sizes.',
        type: 'histogram',
        bucket: { field: 'key', kind: 'linear', step: 100, max: 3 },
      },
      { keyFields: [{ path: 'key', offset: 0, size: 4, kind: 'int', signed: false }] },
    );
    const text = await registerPrometheus([m]).metrics();
    expect(sample(text, 'sizes_bucket', { le: '100' })).toBe(1);
    expect(sample(text, 'sizes_bucket', { le: '200' })).toBe(3);
    expect(sample(text, 'sizes_bucket', { le: '300' })).toBe(3);
    expect(sample(text, 'sizes_bucket', { le: '400' })).toBe(8);
  });

  it('caps series and counts the dropped ones', async () => {
    using map = BpfMap.create({ type: 'hash', key, value: u64, maxEntries: 16 });
    for (let i = 0; i < 5; i++) map.set({ dev: i, slot: 0 }, 1n);
    const m = exportMap(
      map,
      {
        name: 'capped_total',
        help: 'Capped.',
        type: 'gauge',
        maxSeries: 3,
        labels: [{ name: 'dev', field: 'dev' }],
      },
      { keyFields },
    );
    const text = await registerPrometheus([m, m.dropped]).metrics();
    expect(text.split('\n').filter((l) => l.startsWith('capped_total{'))).toHaveLength(3);
    expect(sample(text, 'bpfkit_exporter_dropped_series_total', { metric: 'capped_total' })).toBe(2);
    m.collect();
    expect(m.dropped.get('capped_total')).toBe(4);
  });

  it('reads the key fields from the map BTF the kernel holds', () => {
    using coll = loadCollection(fixture('write_sizes.bpf.o'));
    const map = coll.map('write_log2');
    map.setBytes(
      new Uint8Array(20).fill(0x41, 0, 3).fill(7, 16, 17),
      new Uint8Array(8).fill(0).fill(9, 0, 1),
    );
    const m = exportMap(map, {
      name: 'w',
      help: 'W.',
      type: 'histogram',
      bucket: { field: 'slot', kind: 'log2', max: 12 },
      labels: [{ name: 'comm', field: 'comm' }],
    });
    const snap = m.collect();
    expect(snap.type).toBe('histogram');
    const h = snap.series.find((s) => s.labels.comm === 'AAA');
    expect(h && 'counts' in h ? h.counts[7] : undefined).toBe(9);
  });

  it('a metric that fails to read leaves the scrape to the others, and is counted', async () => {
    const broken = BpfMap.create({ type: 'hash', key, value: u64, maxEntries: 4 });
    using fine = BpfMap.create({ type: 'hash', key, value: u64, maxEntries: 4 });
    fine.set({ dev: 1, slot: 0 }, 2n);
    const spec = (name: string) => ({
      name,
      help: 'M.',
      type: 'gauge' as const,
      labels: [{ name: 'dev', field: 'dev' }],
    });
    const errors = new ScrapeErrors();
    const seen: string[] = [];
    const registry = registerPrometheus(
      [
        exportMap(broken, spec('broken'), { keyFields }),
        exportMap(fine, spec('fine'), { keyFields }),
        errors,
      ],
      undefined,
      {
        onError: (source, e) => {
          errors.add(source.name);
          seen.push(`${source.name}: ${(e as Error).constructor.name}`);
        },
      },
    );
    broken.close();
    const text = await registry.metrics();
    expect(sample(text, 'fine', { dev: '1' })).toBe(2);
    expect(text).toContain('# TYPE broken gauge');
    expect(sample(text, 'bpfkit_exporter_scrape_errors_total', { metric: 'broken' })).toBe(1);
    expect(seen).toEqual(['broken: ClosedError']);
  });

  it('says what a wrong spec lacks', () => {
    using map = BpfMap.create({ type: 'hash', key, value: u64, maxEntries: 4 });
    expect(() =>
      exportMap(
        map,
        { name: 'x', help: 'X.', type: 'counter', labels: [{ name: 'a', field: 'nope' }] },
        { keyFields },
      ),
    ).toThrow(/metric 'x' .* label 'a': no field 'nope' \(fields: dev, slot\)/);
    expect(() => exportMap(map, { name: 'x', help: 'X.', type: 'histogram' }, { keyFields })).toThrow(
      /bucket: a histogram needs bucket/,
    );
  });
});

describe('agent', () => {
  it('loads builtins and an object, serves what the kernel counted, reloads and detaches', async () => {
    const comm = uniqueComm('bx');
    using act = activity(comm);
    const path = configFile(`programs:
  - name: syscalls
    builtin: syscalls
  - name: execs
    builtin: execs
${WRITE_SIZES}  - name: btf
    object: ${fixture('write_sizes.bpf.o')}
    attach: [{ program: on_exec_btf, tracing: true }]
    metrics:
      - { name: execs_btf_total, help: Execs (tp_btf)., type: counter, map: execs_btf, labels: [{ name: comm, field: comm }] }
`);
    const agent = await Agent.start({ config: path, listen: '127.0.0.1:0' });
    try {
      expect(agent.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const N = 3;
      const M = 50;
      for (let i = 0; i < N; i++) act.run(M, 1000, 4);
      const want = (text: string) =>
        sample(text, 'bpfkit_execs_total', { comm }) === N &&
        sample(text, 'execs_btf_total', { comm }) === N &&
        sample(text, 'bpfkit_syscalls_total', { comm, syscall: 'getppid' }) === N * M &&
        sample(text, 'write_size_bytes_bucket', { comm, le: '1024' }) === N * 4
          ? text
          : undefined;
      const text = await poll('the counts', async () => want((await httpGet(agent.url)).body));
      expect(sample(text, 'write_size_bytes_bucket', { comm, le: '512' })).toBe(0);
      expect(text).toContain('# TYPE bpfkit_syscalls_total counter');

      // a reload keeps what did not change (its counts go on) and loads what is new
      writeFileSync(
        path,
        `programs:
  - { name: syscalls, builtin: syscalls }
  - { name: tcp, builtin: tcpretrans }
`,
      );
      agent.handleSignals(() => {});
      process.kill(process.pid, 'SIGHUP');
      await poll('the reload', () => (agent.programs.join() === 'syscalls,tcp' ? true : undefined));
      act.run(M);
      const after = await poll('counts after the reload', async () => {
        const t = (await httpGet(agent.url)).body;
        return sample(t, 'bpfkit_syscalls_total', { comm, syscall: 'getppid' }) === (N + 1) * M
          ? t
          : undefined;
      });
      expect(sample(after, 'bpfkit_execs_total', { comm })).toBeUndefined();
      expect(after).toContain('# TYPE bpfkit_tcp_retransmits_total counter');

      // a config that fails leaves the running set as it was
      writeFileSync(path, 'programs:\n  - { name: syscalls, builtin: nope }\n');
      expect(() => agent.reload()).toThrow(/exporter\.yaml:2: programs\[0\]\.builtin/);
      expect(agent.programs).toEqual(['syscalls', 'tcp']);
    } finally {
      await agent.close();
    }
    await expect(httpGet(agent.url)).rejects.toThrow();
  });

  it('loads every builtin on this kernel', async () => {
    const path = configFile(`programs:
  - { name: a, builtin: syscalls }
  - { name: b, builtin: execs }
  - { name: c, builtin: biolatency }
  - { name: d, builtin: runqlat }
  - { name: e, builtin: tcpretrans }
`);
    const agent = await Agent.start({ config: path, listen: '127.0.0.1:0' });
    try {
      // run-queue waits happen all the time: the histogram fills without help
      const text = await poll('run-queue latency', async () => {
        const t = (await httpGet(agent.url)).body;
        return (sample(t, 'bpfkit_run_queue_latency_seconds_count') ?? 0) > 0 ? t : undefined;
      });
      for (const name of ['bpfkit_block_io_latency_seconds', 'bpfkit_run_queue_latency_seconds'])
        expect(text).toContain(`# TYPE ${name} histogram`);
      expect(text).toContain('# TYPE bpfkit_tcp_retransmits_total counter');
    } finally {
      await agent.close();
    }
  });
});

describe('OTLP', () => {
  it('pushes counters and histograms to a collector', async () => {
    using map = BpfMap.create({ type: 'hash', key, value: u64, maxEntries: 8 });
    map.set({ dev: 1, slot: 2 }, 3n);
    const counter = exportMap(
      map,
      {
        name: 'otlp_total',
        help: 'O.',
        type: 'counter',
        labels: [{ name: 'dev', field: 'dev' }],
      },
      { keyFields },
    );
    const hist = exportMap(
      map,
      {
        name: 'otlp_hist',
        help: 'H.',
        type: 'histogram',
        bucket: { field: 'slot', kind: 'log2', max: 4 },
      },
      { keyFields },
    );
    const sockets = countSockets();
    const bodies: string[] = [];
    const server = createServer((req, res) => {
      let b = '';
      req.on('data', (d) => {
        b += d;
      });
      req.on('end', () => {
        bodies.push(`${req.url} ${req.headers['content-type']} ${b}`);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const pusher = pushOtlp([counter, hist], {
      url: `http://127.0.0.1:${port}/v1/metrics`,
      intervalMs: 3_600_000,
    });
    try {
      await pusher.flush();
      await poll('a push', () => (bodies.length > 0 ? true : undefined));
    } finally {
      await pusher.close();
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      await socketsBack(sockets);
    }
    const [url, type, ...rest] = bodies[0]!.split(' ');
    expect(url).toBe('/v1/metrics');
    expect(type).toMatch(/json/);
    const metrics = JSON.parse(rest.join(' ')).resourceMetrics[0].scopeMetrics[0].metrics;
    const c = metrics.find((m: { name: string }) => m.name === 'otlp_total');
    expect(c.sum.isMonotonic).toBe(true);
    expect(c.sum.dataPoints[0].asDouble).toBe(3);
    const h = metrics.find((m: { name: string }) => m.name === 'otlp_hist');
    expect(h.histogram.dataPoints[0].explicitBounds).toEqual([1, 2, 4, 8, 16]);
    expect(h.histogram.dataPoints[0].bucketCounts.map(Number)).toEqual([0, 0, 3, 0, 0, 0]);
    void Registry;
  });
});
