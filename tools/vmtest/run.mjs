#!/usr/bin/env node
// pnpm test:kernels [--kernel 6.1,6.12,host] [--timeout <minutes>] [--json <file>] [--from <file>] [--readme]
//   [--files <path,...>] [--jobs <legs at once>]
// Runs the real-kernel test suite on each kernel — Debian's 6.1 and 6.12 under QEMU, and the
// host's own, by default; Debian's 5.10 (bullseye) with --kernel 5.10 — and prints a kernel × package matrix with every unsupported feature named.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { buildInitramfs, lsmList } from './initramfs.mjs';
import { ensureKernel } from './kernels.mjs';
import {
  brokenLeg,
  classify,
  hostOnlyExcludes,
  hostOnlyFiles,
  markdown,
  matrixRows,
  unsupportedByLeg,
  verdict,
} from './report.mjs';
import { runInVm } from './vm.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
const { values: opts } = parseArgs({
  options: {
    kernel: { type: 'string', default: '6.1,6.12,host' },
    timeout: { type: 'string', default: '60' },
    json: { type: 'string' },
    from: { type: 'string' },
    readme: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
    files: { type: 'string' },
    jobs: { type: 'string' },
  },
});
// a leg may run only some files: `6.12:packages/a/test/x.test.ts+packages/b/test/y.test.ts`
const kernelSpecs = opts.kernel
  .split(',')
  .map((k) => k.trim())
  .filter(Boolean)
  .map((k) => {
    const [series, only = ''] = k.split(':');
    return { series, only: only.split('+').filter(Boolean) };
  });
const kernels = kernelSpecs.map((k) => k.series);
// --files: only these test files (vitest filters), for a quick check of one area on each leg
const files = (opts.files ?? '')
  .split(',')
  .map((f) => f.trim())
  .filter(Boolean);
for (const f of [...files, ...kernelSpecs.flatMap((k) => k.only)])
  if (!/^[\w./-]+$/.test(f)) throw new Error(`--files takes test file paths, got '${f}'`);
const jobs = opts.jobs === undefined ? kernelSpecs.length : Number(opts.jobs);
if (!(Number.isInteger(jobs) && jobs > 0))
  throw new Error(`--jobs takes a count of legs, got '${opts.jobs}'`);
const timeoutMs = Number(opts.timeout) * 60_000;
if (!(timeoutMs > 0)) throw new Error(`--timeout takes minutes, got '${opts.timeout}'`);
for (const k of kernels)
  if (k !== 'host' && !/^\d+\.\d+$/.test(k))
    throw new Error(`--kernel takes series such as 6.1 or 'host', got '${k}'`);

// Guests (slow under TCG) get generous per-test limits; the whole leg is bounded by --timeout.
// A test file that nothing kernel-specific rests on says so in its first lines —
// `// vmtest: host only: <why>` — and runs on the host leg only; the matrix lists them with why.
const HOST_ONLY = hostOnlyFiles(root);
const vitest = (out, guest, only = files) =>
  `node_modules/.bin/vitest run --reporter=default --reporter=json --outputFile=${out}/report.json --testTimeout=600000 --hookTimeout=600000${
    guest
      ? ` ${hostOnlyExcludes(root)
          .map((a) => `'${a}'`)
          .join(' ')}`
      : ''
  }${only.map((f) => ` ${f}`).join('')}`;

const log = (line) => console.log(line);

async function hostLeg() {
  const out = mkdtempSync('/tmp/bpfkit-vmtest-host-');
  try {
    const started = Date.now();
    await new Promise((resolve) => {
      const child = spawn('sh', ['-c', vitest(out)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      const relay = (d) => {
        if (!opts.quiet) for (const l of d.toString().split('\n')) if (l) log(`[host] ${l}`);
      };
      child.stdout.on('data', relay);
      child.stderr.on('data', relay);
      child.on('close', resolve);
    });
    const result = readReport(out) ?? brokenLeg('vitest wrote no report');
    return { name: 'host', title: `host (${release()})`, result, seconds: (Date.now() - started) / 1000 };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

async function vmLeg(series, only) {
  const kernel = ensureKernel(series, log);
  const out = mkdtempSync('/tmp/bpfkit-vmtest-');
  // each run its own initramfs: legs and runs side by side never share one
  const initrd = join(out, 'initrd.cpio');
  writeFileSync(initrd, buildInitramfs(kernel));
  try {
    log(`[${series}] booting ${kernel.release} under QEMU (TCG); limit ${opts.timeout} min`);
    const r = await runInVm({
      kernel: kernel.vmlinuz,
      initrd,
      outDir: out,
      cwd: root,
      script: vitest(out, true, only.length ? only : files),
      timeoutMs,
      append: `lsm=${lsmList(kernel.config)}`,
      onLine: opts.quiet ? undefined : (l) => log(`[${series}] ${l}`),
    });
    const title = `${series} (${kernel.release})${only.length ? `, only ${only.join(' ')}` : ''}`;
    let result = readReport(out);
    if (r.timedOut) result = brokenLeg(`killed after ${opts.timeout} min: ${tail(r.console)}`);
    else if (r.panicked) result = brokenLeg(`kernel panic or oops: ${tail(r.console)}`);
    else if (!result) result = brokenLeg(`no report (exit status ${r.status}): ${tail(r.console)}`);
    return { name: series, title, result, seconds: r.seconds, console: r.console };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function readReport(dir) {
  try {
    return classify(JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')), root);
  } catch {
    return undefined;
  }
}

const tail = (lines) => `\n    ${lines.slice(-25).join('\n    ')}`;

// --from: legs of an earlier --json run; the --kernel legs run now and replace those of the same name
const legs = opts.from ? JSON.parse(readFileSync(opts.from, 'utf8')) : [];
// The legs run side by side, --jobs at a time (default: all): a TCG guest keeps about 1.3 of its
// 2 vCPUs busy (tests wait on the kernel, on 9p reads, on polls), so guests together fill the
// host's cores where one after another leaves a third of them idle. Each leg's wall time is
// printed with the matrix.
const todo = opts.from && !process.argv.some((a) => a.startsWith('--kernel')) ? [] : [...kernelSpecs];
const done = [];
const started = Date.now();
await Promise.all(
  Array.from({ length: Math.min(jobs, todo.length) }, async () => {
    for (let k = todo.shift(); k; k = todo.shift()) {
      const leg = k.series === 'host' ? await hostLeg() : await vmLeg(k.series, k.only);
      log(`[${leg.name}] leg done in ${Math.round(leg.seconds)} s`);
      done.push(leg);
    }
  }),
);
for (const k of kernelSpecs) {
  const leg = done.find((l) => l.name === k.series);
  if (!leg) continue;
  const i = legs.findIndex((l) => l.name === leg.name);
  if (i >= 0) legs[i] = leg;
  else legs.push(leg);
}
if (done.length)
  console.log(`\nvmtest: ${done.length} leg(s) in ${Math.round((Date.now() - started) / 1000)} s wall time`);

const table = new Table({ head: ['package', ...legs.map((l) => `${l.title}, ${Math.round(l.seconds)} s`)] });
for (const row of matrixRows(legs)) table.push(row);
console.log(`\nbpfkit test suite by kernel:\n${table.toString()}`);
// where each leg's time went: its slowest test files (to budget the legs)
for (const l of legs)
  if (l.result.files?.length)
    console.log(
      `\n${l.title}, ${Math.round(l.seconds)} s; slowest files: ${l.result.files
        .slice(0, 8)
        .map((f) => `${f.file} ${Math.round(f.seconds)} s`)
        .join(', ')}`,
    );
if (legs.some((l) => l.name !== 'host')) {
  console.log('\nOn the host leg only (`// vmtest: host only:` in the file):');
  for (const h of HOST_ONLY) console.log(`  - ${h.file}: ${h.why}`);
}
const unsupported = unsupportedByLeg(legs);
for (const l of legs) {
  for (const [reason, names] of Object.entries(unsupported[l.name] ?? {})) {
    console.log(`\n${l.title}: ${reason}`);
    for (const n of names) console.log(`  - ${n}`);
  }
}
const problems = verdict(legs);
if (opts.json)
  writeFileSync(
    opts.json,
    `${JSON.stringify(
      legs.map(({ console: _, ...l }) => l),
      null,
      2,
    )}\n`,
  );
if (opts.readme) updateReadme(markdown(legs));
if (problems.length) {
  console.log(`\n${problems.length} problem(s):`);
  for (const p of problems) console.log(`  ✗ ${p}`);
  process.exit(1);
}
console.log('\nvmtest: every test passed or names the kernel feature it lacks');

function updateReadme(md) {
  const path = join(root, 'README.md');
  const text = readFileSync(path, 'utf8');
  const begin = '<!-- vmtest:begin -->';
  const end = '<!-- vmtest:end -->';
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i < 0 || j < i) throw new Error(`README.md has no ${begin} … ${end} section`);
  writeFileSync(path, `${text.slice(0, i + begin.length)}\n${md}\n${text.slice(j)}`);
  console.log('vmtest: README.md kernel table updated');
}
