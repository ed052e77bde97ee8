// vmtest: host only: it runs a Prometheus server, far too slow under TCG; the kernel side it exercises (map reading, decoding, exposition) is exporter.test.ts, which runs on every leg
// End to end with a real Prometheus server (Debian's `prometheus`): the agent serves the
// kernel's counts, Prometheus scrapes it every second, and PromQL over its HTTP API sees
// exactly the activity this test made — execs, getppid calls, and a histogram_quantile over a
// log2 bucket map. Host only (tools/vmtest/run.mjs HOST_ONLY): a Prometheus under TCG crawls.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Agent } from '../src/index.js';
import { activity, httpGet, poll, uniqueComm, WRITE_SIZES } from './helpers.js';

/** A port nobody listens on now (the kernel picks it; Prometheus takes it a moment later). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** One PromQL instant query's single value, or undefined while it has none. */
async function query(base: string, promql: string): Promise<number | undefined> {
  const r = await httpGet(`${base}/api/v1/query?query=${encodeURIComponent(promql)}`);
  if (r.status !== 200) return undefined;
  const result = JSON.parse(r.body).data?.result as { value: [number, string] }[] | undefined;
  if (result?.length !== 1) return undefined;
  return Number(result[0]!.value[1]);
}

describe('Prometheus', () => {
  it('scrapes the agent and answers PromQL with the activity made', async () => {
    const comm = uniqueComm('bp');
    using act = activity(comm);
    const dir = mkdtempSync(join(tmpdir(), 'bpfkit-prometheus-'));
    let prom: ChildProcess | undefined;
    let stderr = '';
    const config = join(dir, 'exporter.yaml');
    writeFileSync(
      config,
      `programs:
  - { name: syscalls, builtin: syscalls }
  - { name: execs, builtin: execs }
${WRITE_SIZES}`,
    );
    const agent = await Agent.start({ config, listen: '127.0.0.1:0' });
    try {
      const target = new URL(agent.url).host;
      writeFileSync(
        join(dir, 'prometheus.yml'),
        `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: bpfkit\n    static_configs:\n      - targets: ['${target}']\n`,
      );
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      prom = spawn(
        'prometheus',
        [
          `--config.file=${join(dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--log.level=warn',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      prom.stderr!.on('data', (d) => {
        stderr += d;
      });
      const exited = new Promise((r) => prom!.once('exit', r));
      await poll('Prometheus to be ready', async () => {
        if (prom!.exitCode !== null) throw new Error(`prometheus exited: ${stderr}`);
        return (await httpGet(`${base}/-/ready`)).status === 200 ? true : undefined;
      });

      const N = 5; // execs
      const M = 40; // getppid calls in each
      const K = 10; // writes of 1000 bytes in each
      for (let i = 0; i < N; i++) act.run(M, 1000, K);

      const equals = (promql: string, want: number) =>
        poll(`${promql} = ${want}`, async () => ((await query(base, promql)) === want ? true : undefined));
      await equals(`up{job="bpfkit"}`, 1);
      await equals(`bpfkit_execs_total{comm="${comm}"}`, N);
      await equals(`bpfkit_syscalls_total{comm="${comm}",syscall="getppid"}`, N * M);
      await equals(`write_size_bytes_count{comm="${comm}"}`, N * K);
      // every write is 1000 bytes: log2 bucket 10, (512, 1024]; Prometheus interpolates in it
      await equals(`histogram_quantile(0.5, write_size_bytes_bucket{comm="${comm}"})`, 768);
      expect(
        await query(base, `histogram_quantile(0.9, write_size_bytes_bucket{comm="${comm}"})`),
      ).toBeCloseTo(972.8, 6);
      expect(await query(base, `sum(bpfkit_exporter_dropped_series_total)`)).toBeUndefined();

      prom.kill('SIGTERM');
      await exited;
    } finally {
      if (prom && prom.exitCode === null && prom.signalCode === null) {
        const gone = new Promise((r) => prom!.once('exit', r));
        prom.kill('SIGKILL');
        await gone;
      }
      await agent.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
