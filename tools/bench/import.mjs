// Start-up cost: how much longer than a bare `node -e 0` a fresh process takes that imports a
// package (or runs `bpfkit --help`), in wall-clock ms. Each round runs every row once, bare node
// first, in fresh processes; the table gives the medians over the rounds. Run by `pnpm bench`,
// or alone: `node tools/bench/import.mjs` (BENCH_IMPORT_ROUNDS, default 21).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const rounds = Number(process.env.BENCH_IMPORT_ROUNDS ?? 21);
const imported = (name) => ['-e', `import(${JSON.stringify(name)})`];
// row: [label, node arguments, target in ms over bare node]
const table = [
  ['import @bpfkit/sys', imported('@bpfkit/sys')],
  ['import @bpfkit/maps', imported('@bpfkit/maps')],
  ['import @bpfkit/loader', imported('@bpfkit/loader'), 40],
  ['import @bpfkit/perf', imported('@bpfkit/perf')],
  ['bpfkit --help', [here('../node_modules/bpfkit/dist/bin.js'), '--help']],
];

/** Wall-clock ms of one fresh `node ...args`, from tools/ (which depends on every package). */
function time(args) {
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { cwd: here('..'), stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} failed: ${r.stderr}`);
  return ms;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The start-up rows: ms over bare node, median of `rounds` interleaved fresh processes. */
export function importBench() {
  const bare = [];
  const runs = table.map(() => []);
  for (let r = 0; r < rounds; r++) {
    process.stdout.write(`bench: start-up round ${r + 1}/${rounds}\r`);
    bare.push(time(['-e', '0']));
    for (const [i, [, args]] of table.entries()) runs[i].push(time(args));
  }
  process.stdout.write('\n');
  const node = median(bare);
  return table.map(([op, , target], i) => ({
    op,
    'node ms': +node.toFixed(1),
    'ms over node': +(median(runs[i]) - node).toFixed(1),
    target: target === undefined ? '' : `≤ ${target}`,
  }));
}

export function printImportBench() {
  const rows = importBench();
  console.log(
    `\nStart-up: a fresh process that imports the package, in ms over a bare \`node -e 0\` (median of ${rounds} interleaved rounds):`,
  );
  console.table(rows);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) printImportBench();
