// Loader benchmark: loading a CO-RE object (open, CO-RE against the running kernel's BTF, maps
// created, programs verified, then closed) with @bpfkit/loader's loadCollection beside libbpf's
// bpf_object__open_file + bpf_object__load + bpf_object__close (c/loader.c, built here with cc
// and -lbpf), for the CLI's execsnoop.bpf.o and the loader's larger fixture core_big.bpf.o.
//
//   in-process: the first load of a fresh process (cold: kernel BTF not yet read) and the
//               median of the loads after it (steady state), each side in its own process;
//   whole process: exec → (node: import) → load → close → exit, timed and its peak RSS taken
//               by c/spawn.c (wait4), beside the C program and a bare `node -e 0`.
//
// Rounds interleave C and Node. Run by `pnpm bench` (tools/bench/run.mjs), or alone:
//   node tools/bench/loader.mjs      (BENCH_LOADER_ROUNDS, BENCH_LOADER_ITERATIONS)
// Child mode, what the Node side runs: node loader.mjs --child <object> <iterations>; it prints
// {"ns": [...]}, one duration per load. It imports nothing but @bpfkit/loader.
if (process.argv[2] === '--child') {
  const { loadCollection } = await import('@bpfkit/loader');
  const path = process.argv[3];
  const n = Math.max(1, Number(process.argv[4] ?? 1));
  const ns = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    loadCollection(path).close();
    ns.push(Number(process.hrtime.bigint() - t0));
  }
  process.stdout.write(`${JSON.stringify({ ns })}\n`);
}

const here = (p) => decodeURIComponent(new URL(p, import.meta.url).pathname);
const out = here('./out/');
const OBJECTS = [
  ['execsnoop.bpf.o (cli)', here('../../packages/cli/bpf/execsnoop.bpf.o')],
  ['core_big.bpf.o (loader fixture)', here('../../packages/loader/test/fixtures/core_big.bpf.o')],
];
const MiB = 1024;

/** Builds the libbpf loader and the whole-process timer with the system's cc. */
export async function buildLoaderTools() {
  const { execFileSync } = await import('node:child_process');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(out, { recursive: true });
  execFileSync('cc', ['-O2', '-o', `${out}loader`, here('./c/loader.c'), '-lbpf'], { stdio: 'inherit' });
  execFileSync('cc', ['-O2', '-o', `${out}spawn`, here('./c/spawn.c')], { stdio: 'inherit' });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (ns) => +(ns / 1e6).toFixed(2);
const ratio = (a, b) => +(a / b).toFixed(2);

/** Runs both sides; returns { inProcess, wholeProcess } rows for console.table. */
export async function loaderBench({ log = (s) => process.stdout.write(s) } = {}) {
  const { execFileSync } = await import('node:child_process');
  const { existsSync } = await import('node:fs');
  const rounds = Number(process.env.BENCH_LOADER_ROUNDS ?? process.env.BENCH_ROUNDS ?? 5);
  const iterations = Number(process.env.BENCH_LOADER_ITERATIONS ?? 20);
  for (const [, path] of OBJECTS)
    if (!existsSync(path)) throw new Error(`bench: ${path} is missing (pnpm fixtures core_big)`);

  const json = (cmd, args) => JSON.parse(execFileSync(cmd, args, { encoding: 'utf8', cwd: here('.') }));
  const nodeArgs = (path, n) => [here('./loader.mjs'), '--child', path, String(n)];
  const spawned = (cmd) => {
    const r = json(`${out}spawn`, cmd);
    if (r.status !== 0) throw new Error(`bench: ${cmd.join(' ')} exited ${r.status}`);
    return r;
  };

  const runs = OBJECTS.map(() => ({ c: [], node: [], cProc: [], nodeProc: [], bare: [] }));
  for (let r = 0; r < rounds; r++) {
    log(`bench: loader round ${r + 1}/${rounds} (${iterations} loads per process, then whole processes)\r`);
    for (const [i, [, path]] of OBJECTS.entries()) {
      const run = runs[i];
      run.c.push(json(`${out}loader`, [path, String(iterations)]).ns);
      run.node.push(json(process.execPath, nodeArgs(path, iterations)).ns);
      run.cProc.push(spawned([`${out}loader`, path, '1']));
      run.nodeProc.push(spawned([process.execPath, ...nodeArgs(path, 1)]));
      run.bare.push(spawned([process.execPath, '-e', '0']));
    }
  }
  log('\n');

  const inProcess = [];
  const wholeProcess = [];
  for (const [i, [label]] of OBJECTS.entries()) {
    const run = runs[i];
    const first = (side) => median(run[side].map((ns) => ns[0]));
    const steady = (side) => median(run[side].map((ns) => median(ns.slice(1))));
    for (const [what, pick] of [
      ['first load, fresh process', first],
      [`steady state, median of ${iterations - 1}`, steady],
    ]) {
      const c = pick('c');
      const n = pick('node');
      inProcess.push({
        object: label,
        load: what,
        'libbpf ms': ms(c),
        'bpfkit ms': ms(n),
        'bpfkit/libbpf': ratio(n, c),
        target: '≤ 2',
      });
    }
    const t = (side) => median(run[side].map((x) => x.ns));
    const rss = (side) => median(run[side].map((x) => x.maxrssKib)) / MiB;
    wholeProcess.push({
      object: label,
      'C ms': ms(t('cProc')),
      'node+bpfkit ms': ms(t('nodeProc')),
      'node/C': ratio(t('nodeProc'), t('cProc')),
      'node -e 0 ms': ms(t('bare')),
      'beyond node -e 0 ms': ms(t('nodeProc') - t('bare')),
      'C RSS MiB': +rss('cProc').toFixed(1),
      'node -e 0 RSS MiB': +rss('bare').toFixed(1),
      'node+bpfkit RSS MiB': +rss('nodeProc').toFixed(1),
      'RSS over node': +(rss('nodeProc') - rss('bare')).toFixed(1),
      target: '≤ +30',
    });
  }
  return { inProcess, wholeProcess, rounds, iterations };
}

/** Prints both tables (what run.mjs calls). */
export async function printLoaderBench() {
  const res = await loaderBench();
  console.log(
    `\nLoading a CO-RE object: bpfkit loadCollection() then close() vs libbpf bpf_object__open_file + __load + __close\n(c/loader.c), each side in its own process; medians of ${res.rounds} interleaved rounds:`,
  );
  console.table(res.inProcess);
  console.log(
    '\nWhole process: exec, import (node), load, close, exit — node + @bpfkit/loader vs the C program; peak RSS (wait4\nru_maxrss) vs bare `node -e 0`:',
  );
  console.table(res.wholeProcess);
}

if (process.argv[2] !== '--child' && process.argv[1] === here('./loader.mjs')) {
  await buildLoaderTools();
  await printLoaderBench();
}
