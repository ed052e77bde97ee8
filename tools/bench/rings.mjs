// Reader throughput: records/s consumed from PERF_EVENT_ARRAY and RINGBUF with 16- and 256-byte
// records while a generator saturates one CPU, Node (@bpfkit/perf) beside C (libbpf's readers),
// then both at a paced rate the C consumer sustains without loss. Run by `pnpm bench`.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { attachTracepoint } from '@bpfkit/link';
import { onlineCpus } from '@bpfkit/maps';
import { mount, NativeBuffer, objPin, umount } from '@bpfkit/sys';
import { emitterKit } from '../testing/programs.js';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const out = here('./out/');
const seconds = Number(process.env.BENCH_SECONDS ?? 2);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const PAGES = 256; // per CPU for perf: 1 MiB, woken at a quarter
const RINGBUF = 1 << 22; // 4 MiB ring buffer
const cpus = onlineCpus();
const genCpu = cpus.at(-1);
const consumerCpu = cpus[0];

export function buildRingTools() {
  execFileSync('cc', ['-O2', '-o', `${out}gen`, here('./c/gen.c')], { stdio: 'inherit' });
  execFileSync('cc', ['-O2', '-o', `${out}consumer`, here('./c/consumer.c'), '-lbpf'], { stdio: 'inherit' });
}

const run = (cmd, args) =>
  new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    p.stdout.on('data', (d) => (text += d));
    p.on('exit', (code) => (code === 0 ? resolve(text.trim()) : reject(new Error(`${cmd} exited ${code}`))));
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One measurement: start the consumer, warm it up with a short burst, zero it, then measure. */
async function once(consumer, kind, pin, rate) {
  const args = [kind, pin, String(PAGES)];
  const cmd =
    consumer === 'c' ? [`${out}consumer`, ...args] : [process.execPath, here('./ring-consumer.mjs'), ...args];
  const p = spawn('taskset', ['-c', String(consumerCpu), ...cmd], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  const ready = new Promise((resolve) =>
    p.stdout.on('data', (d) => {
      text += d;
      if (text.includes('ready')) resolve();
    }),
  );
  const exited = new Promise((resolve) => p.on('exit', resolve));
  await ready;
  await run(`${out}gen`, ['0.5', String(genCpu), String(rate ?? 0)]); // warm-up
  await sleep(200);
  p.kill('SIGUSR2');
  await sleep(50);
  const calls = Number(await run(`${out}gen`, [String(seconds), String(genCpu), String(rate ?? 0)]));
  await sleep(200);
  p.kill('SIGTERM');
  await exited;
  const res = JSON.parse(text.trim().split('\n').pop());
  // A ring buffer has no lost notices: what the generator triggered and nobody read was dropped.
  const lost = kind === 'ringbuf' ? Math.max(0, calls - res.records) : res.lost;
  return { records: res.records, lost, calls, rate: res.records / seconds };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function ringBench() {
  const fs = mkdtempSync(join(tmpdir(), 'bpfkit-bench-'));
  mount('bpf', fs, 'bpf');
  const rows = [];
  try {
    for (const kind of ['perf', 'ringbuf']) {
      for (const size of [16, 256]) {
        const kit = emitterKit(kind, 0, size, RINGBUF);
        const { events, prog } = kit;
        const link = attachTracepoint(prog, 'syscalls', 'sys_enter_getppid');
        const pin = join(fs, `events_${kind}_${size}`);
        const p = NativeBuffer.from(pin);
        objPin({ pathname: p.ptr, bpfFd: events.fd.value });
        p.free();
        try {
          const res = { c: [], node: [] };
          for (let r = 0; r < rounds; r++)
            for (const who of ['c', 'node']) {
              process.stdout.write(`bench: ${kind} ${size}B ${who} round ${r + 1}/${rounds}      \r`);
              res[who].push(await once(who, kind, pin, 0));
            }
          const cRate = median(res.c.map((x) => x.rate));
          const nRate = median(res.node.map((x) => x.rate));
          // Paced: find a rate the C consumer sustains with no loss (half what it consumed
          // saturated, halved again while it still loses), then run Node at that rate.
          let pace = Math.floor(cRate / 2);
          let pacedC = await once('c', kind, pin, pace);
          for (let tries = 0; pacedC.lost > 0 && tries < 3; tries++) {
            pace = Math.floor(pace / 2);
            pacedC = await once('c', kind, pin, pace);
          }
          const pacedN = await once('node', kind, pin, pace);
          rows.push({
            ring: kind === 'perf' ? 'PERF_EVENT_ARRAY' : 'RINGBUF',
            record: `${size} B`,
            'C rec/s': Math.round(cRate),
            'C lost': median(res.c.map((x) => x.lost)),
            'Node rec/s': Math.round(nRate),
            'Node lost': median(res.node.map((x) => x.lost)),
            'Node/C': +(nRate / cRate).toFixed(2),
            'paced rec/s': pace,
            'paced lost C/Node': `${pacedC.lost}/${pacedN.lost}`,
          });
        } finally {
          rmSync(pin);
          link.close();
          kit[Symbol.dispose]();
        }
      }
    }
  } finally {
    umount(fs);
    rmSync(fs, { recursive: true });
  }
  process.stdout.write('\n');
  return rows;
}
