#!/usr/bin/env node
// pnpm bench: builds the C baselines with the system's cc in this run, then runs C and Node
// interleaved (rounds × each) and prints the median ns/op and the Node/C ratio per operation.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildRingTools, ringBench } from './rings.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const outDir = here('./out/');
mkdirSync(outDir, { recursive: true });
const iterations = Number(process.env.BENCH_ITERATIONS ?? 200000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);

console.log(`bench: compiling C baseline with cc -O2 (${here('./c/maps.c')})`);
execFileSync('cc', ['-O2', '-o', `${outDir}maps`, here('./c/maps.c')], { stdio: 'inherit' });
console.log('bench: compiling the generator and the libbpf consumer (c/gen.c, c/consumer.c)');
buildRingTools();

const runs = { c: [], sys: [], maps: [] };
for (let r = 0; r < rounds; r++) {
  process.stdout.write(`bench: round ${r + 1}/${rounds} (${iterations} iterations per op)\r`);
  runs.c.push(JSON.parse(execFileSync(`${outDir}maps`, [String(iterations)], { encoding: 'utf8' })));
  for (const layer of ['sys', 'maps'])
    runs[layer].push(
      JSON.parse(
        execFileSync(process.execPath, [here('./maps.mjs'), String(iterations), layer], {
          encoding: 'utf8',
          cwd: here('.'),
        }),
      ),
    );
}
process.stdout.write('\n');

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const rows = [];
for (const op of Object.keys(runs.c[0])) {
  const c = median(runs.c.map((x) => x[op]));
  const sys = median(runs.sys.map((x) => x[op]));
  const maps = median(runs.maps.map((x) => x[op]));
  rows.push({
    op,
    'C ns/op': c,
    '@bpfkit/sys ns/op': sys,
    'sys/C': +(sys / c).toFixed(2),
    '@bpfkit/maps ns/op': maps,
    'maps/C': +(maps / c).toFixed(2),
  });
}
console.log(`\nMap operations on a 1024-entry hash map (u32 → u64), median of ${rounds} interleaved rounds:`);
console.table(rows);

if (process.env.BENCH_ONLY === 'maps') process.exit(0);
const rings = await ringBench();
console.log(
  `\nReaders: records/s consumed while a generator saturates one CPU (median of ${process.env.BENCH_ROUNDS ?? 3} interleaved rounds),\nthen both at a rate C sustains with no loss; C = libbpf perf_buffer__poll / ring_buffer__poll, Node = @bpfkit/perf drainInPlace():`,
);
console.table(rings);
