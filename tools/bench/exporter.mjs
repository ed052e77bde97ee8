// Exporter benchmark: one scrape of 10 000 series read from a real map (a hash map of 10 000
// entries, key { comm[16], syscall id } → u64: batch lookups, label decoding, prom-client's
// exposition) beside prom-client serialising the same 10 000 series from plain JS values (a
// Counter's labels set beforehand); median of interleaved rounds, reported as a ratio (target
// ≤ 2×). Then the agent's idle CPU between scrapes: `bpfkit exporter` with every built-in
// loaded, its user+system time over a quiet window (what its programs cost in the kernel is not
// in it: that is the traced work's).
//
// Run by `pnpm bench` (tools/bench/run.mjs), or alone: node tools/bench/exporter.mjs
//   BENCH_EXPORTER_ROUNDS (default 15), BENCH_EXPORTER_IDLE_SECONDS (default 20)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportMap, registerPrometheus } from '@bpfkit/exporter';
import { BpfMap, u64 } from '@bpfkit/maps';
import { Counter, Registry } from 'prom-client';

const SERIES = 10_000;
const COMMS = 1000;
const SYSCALLS = [0, 1, 3, 9, 39, 59, 60, 110, 202, 232]; // read … epoll_wait
const here = (p) => decodeURIComponent(new URL(p, import.meta.url).pathname);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const comm = (i) => `proc-${String(i).padStart(4, '0')}`;

/** One scrape each way, `rounds` times interleaved; ms per scrape. */
export async function scrapeBench(rounds = Number(process.env.BENCH_EXPORTER_ROUNDS ?? 15)) {
  const map = BpfMap.create({ type: 'hash', key: 24, value: u64, maxEntries: SERIES });
  try {
    const keys = new Uint8Array(SERIES * 24);
    const values = new BigUint64Array(SERIES);
    const ours = new Registry();
    const theirs = new Registry();
    const counter = new Counter({
      name: 'bench_syscalls_total',
      help: 'Syscalls.',
      labelNames: ['comm', 'syscall'],
      registers: [theirs],
    });
    const names = {
      0: 'read',
      1: 'write',
      3: 'close',
      9: 'mmap',
      39: 'getpid',
      59: 'execve',
      60: 'exit',
      110: 'getppid',
      202: 'futex',
      232: 'epoll_wait',
    };
    for (let i = 0; i < SERIES; i++) {
      const c = comm(i % COMMS);
      const id = SYSCALLS[Math.floor(i / COMMS)];
      keys.set(Buffer.from(c), i * 24);
      new DataView(keys.buffer).setUint32(i * 24 + 16, id, true);
      values[i] = BigInt(i * 7 + 1);
      counter.inc({ comm: c, syscall: names[id] }, i * 7 + 1);
    }
    map.setBatchFrom(keys, values);
    registerPrometheus(
      [
        exportMap(
          map,
          {
            name: 'bench_syscalls_total',
            help: 'Syscalls.',
            type: 'counter',
            labels: [
              { name: 'comm', field: 'comm' },
              { name: 'syscall', field: 'id', decoder: 'syscall' },
            ],
          },
          {
            keyFields: [
              { path: 'comm', offset: 0, size: 16, kind: 'chars', signed: false },
              { path: 'id', offset: 16, size: 4, kind: 'int', signed: false },
            ],
          },
        ),
      ],
      ours,
    );
    const a = await ours.metrics();
    const b = await theirs.metrics();
    if (a.length !== b.length || a.split('\n').length !== SERIES + 3)
      throw new Error(`the two expositions differ: ${a.length} vs ${b.length} bytes`);
    const t = { ours: [], theirs: [] };
    for (let r = 0; r < rounds + 2; r++) {
      for (const [k, reg] of [
        ['ours', ours],
        ['theirs', theirs],
      ]) {
        globalThis.gc?.();
        const t0 = process.hrtime.bigint();
        await reg.metrics();
        if (r >= 2) t[k].push(Number(process.hrtime.bigint() - t0) / 1e6); // two warm-up rounds
      }
    }
    return { ours: median(t.ours), theirs: median(t.theirs), bytes: a.length };
  } finally {
    map.close();
  }
}

/** The agent's CPU time (user + system) over `seconds` of no scrapes, every built-in loaded. */
export async function idleBench(seconds = Number(process.env.BENCH_EXPORTER_IDLE_SECONDS ?? 20)) {
  const dir = mkdtempSync(join(tmpdir(), 'bpfkit-bench-exporter-'));
  const config = join(dir, 'exporter.yaml');
  writeFileSync(
    config,
    `programs:\n${['syscalls', 'execs', 'biolatency', 'runqlat', 'tcpretrans'].map((b) => `  - { name: ${b}, builtin: ${b} }\n`).join('')}`,
  );
  const child = spawn(
    process.execPath,
    [here('../../packages/cli/dist/bin.js'), 'exporter', '--config', config, '--listen', '127.0.0.1:0'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  try {
    let err = '';
    await new Promise((resolve, reject) => {
      child.stderr.on('data', (d) => {
        err += d;
        if (err.includes('serving')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`bpfkit exporter exited (${code}): ${err}`)));
    });
    const ticks = () => {
      const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return Number(f[11]) + Number(f[12]); // utime + stime, clock ticks (100 Hz)
    };
    // past start-up, and past V8's memory reducer, which runs once some seconds after it
    await new Promise((r) => setTimeout(r, 10_000));
    const t0 = ticks();
    const w0 = Date.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const cpuMs = (ticks() - t0) * 10;
    const wallMs = Date.now() - w0;
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]);
    return { cpuMs, wallMs, percent: (100 * cpuMs) / wallMs, rssKiB };
  } finally {
    const gone = new Promise((r) => child.once('exit', r));
    if (child.exitCode === null) child.kill('SIGTERM');
    await gone;
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function printExporterBench() {
  const s = await scrapeBench();
  console.log(
    `\nExporter: one scrape of ${SERIES} series (${(s.bytes / 1024).toFixed(0)} KiB of exposition), median of interleaved rounds:`,
  );
  console.table([
    {
      scrape: `${SERIES} series`,
      'map → exposition ms': +s.ours.toFixed(2),
      'prom-client from JS values ms': +s.theirs.toFixed(2),
      ratio: +(s.ours / s.theirs).toFixed(2),
      target: '≤ 2',
    },
  ]);
  const idle = await idleBench();
  console.log(
    `Exporter agent idle (every built-in loaded, no scrapes): ${idle.cpuMs} ms CPU in ${(idle.wallMs / 1000).toFixed(1)} s = ${idle.percent.toFixed(2)}% of one CPU, RSS ${(idle.rssKiB / 1024).toFixed(0)} MiB`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) await printExporterBench();
