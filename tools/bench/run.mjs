#!/usr/bin/env node
// pnpm bench: builds the C baselines with the system's cc in this run, then runs C and Node
// interleaved (rounds × each) and prints the median ns/op and the Node/C ratio per operation.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { printImportBench } from './import.mjs';
import { buildRingTools, ringBench } from './rings.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const outDir = here('./out/');
mkdirSync(outDir, { recursive: true });
const iterations = Number(process.env.BENCH_ITERATIONS ?? 200000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const entries = Number(process.env.BENCH_ENTRIES ?? 100000);
const chunk = Number(process.env.BENCH_CHUNK ?? 1024);

console.log(`bench: compiling C baseline with cc -O2 (${here('./c/maps.c')})`);
execFileSync('cc', ['-O2', '-o', `${outDir}maps`, here('./c/maps.c')], { stdio: 'inherit' });
console.log('bench: compiling the generator and the libbpf consumer (c/gen.c, c/consumer.c)');
buildRingTools();

const args = [String(iterations), String(entries), String(chunk)];
const runs = { c: [], sys: [], maps: [] };
for (let r = 0; r < rounds; r++) {
  process.stdout.write(
    `bench: round ${r + 1}/${rounds} (${iterations} ops per row, ${entries}-entry walks)\r`,
  );
  runs.c.push(JSON.parse(execFileSync(`${outDir}maps`, args, { encoding: 'utf8' })));
  for (const layer of ['sys', 'maps'])
    runs[layer].push(
      JSON.parse(
        execFileSync(process.execPath, ['--expose-gc', here('./maps.mjs'), ...args, layer], {
          encoding: 'utf8',
          cwd: here('.'),
        }),
      ),
    );
}
process.stdout.write('\n');

const median = (xs) => {
  const s = xs.filter((x) => x !== undefined).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : undefined;
};
// row: [label, key in the Node results, key of the C loop it is compared with, target ratio]
const table = [
  ['hash get', 'hash get', 'hash get', 1.3],
  ['hash set', 'hash set', 'hash set', 1.3],
  ['hash delete', 'hash delete', 'hash delete', 1.3],
  ['hash set+delete', 'hash set+delete', 'hash set+delete', 1.3],
  ['array get', 'array get', 'array get', 1.3],
  ['array set', 'array set', 'array set', 1.3],
  [`keys()+get, per entry of ${entries}`, 'walk: next_key+lookup', 'walk: next_key+lookup', 1.3],
  [`getBatch(), per entry of ${entries}`, 'batch lookup', 'batch lookup', 1.1],
  [`entries(), per entry of ${entries}`, 'entries()', 'batch lookup', 1.3],
  [`readBatches() into typed arrays, per entry`, 'readBatches()', 'batch lookup', 1.1],
  [`setBatch(), per entry of ${entries}`, 'batch update', 'batch update', 1.1],
  [`setBatchFrom() typed arrays, per entry`, 'setBatchFrom()', 'batch update', 1.1],
];
const rows = table.map(([op, key, cKey, target]) => {
  const c = median(runs.c.map((x) => x[cKey]));
  const sys = median(runs.sys.map((x) => x[key]));
  const maps = median(runs.maps.map((x) => x[key]));
  return {
    op,
    'C loop': cKey,
    'C ns': c,
    'sys ns': sys ?? '',
    'sys/C': sys === undefined ? '' : +(sys / c).toFixed(2),
    'maps ns': maps,
    'maps/C': +(maps / c).toFixed(2),
    target: `≤ ${target}`,
  };
});
console.log(
  `\nMap operations, u32 keys → u64 values (hash/array of 1024 entries; walks of a ${entries}-entry hash map,\n${chunk} entries per batch call), median of ${rounds} interleaved rounds:`,
);
console.table(rows);

if (process.env.BENCH_ONLY === 'maps') process.exit(0);
const rings = await ringBench();
console.log(
  `\nReaders: records/s consumed while a generator saturates one CPU (median of ${process.env.BENCH_ROUNDS ?? 3} interleaved rounds),\nthen both at a rate C sustains with no loss; C = libbpf perf_buffer__poll / ring_buffer__poll, Node = @bpfkit/perf drainInPlace():`,
);
console.table(rings);

printImportBench();

// The exporter: a 10 000-series scrape from a real map beside prom-client alone, and the agent's
// idle CPU (tools/bench/exporter.mjs).
await (await import('./exporter.mjs')).printExporterBench();

// Loading CO-RE objects beside libbpf, in-process and as whole processes (tools/bench/loader.mjs).
const loader = await import('./loader.mjs');
await loader.buildLoaderTools();
await loader.printLoaderBench();
