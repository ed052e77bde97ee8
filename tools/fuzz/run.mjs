#!/usr/bin/env node
// pnpm fuzz: fuzz the ELF and BTF parsers and walkers (see targets.mjs) with structure-aware
// mutations of the committed fixtures (see inputs.mjs), each input in a pool of long-lived child
// workers. A finding is an input that
//   - throws an untyped error (see classify.mjs for exactly which errors count as typed),
//   - runs past the per-input time limit (the worker is killed and restarted),
//   - kills its worker (a crash, an out-of-memory abort, a stack overflow that escapes), or
//   - pushes the worker's peak RSS past the memory limit.
// Findings are written to tools/fuzz/corpus/<target>-<hash>.bin, which the test suite replays
// (tools/test/fuzz-regressions.test.ts) so they stay fixed.
//
//   node tools/fuzz/run.mjs [--inputs N | --seconds S] [--seed N] [--workers N]
//                           [--timeout MS] [--max-rss MB] [--corpus DIR] [--no-save]
//   node tools/fuzz/run.mjs --replay DIR      run every DIR/*.bin once
//
// Count-bounded runs (--inputs) are reproducible: input i of seed s is always the same bytes.
// Without --inputs the run is time-bounded by --seconds (or FUZZ_SECONDS, default 60).
// Prints one JSON summary line at the end; exits 1 when anything was found.
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inputAt, loadSeeds } from './inputs.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const flag = (name) => args.includes(`--${name}`);
const here = fileURLToPath(new URL('.', import.meta.url));
const replay = opt('replay');
const seed = Number(opt('seed', process.env.FUZZ_SEED ?? 1));
const workers = Number(opt('workers', process.env.FUZZ_WORKERS ?? 1));
const timeoutMs = Number(opt('timeout', 10_000));
const maxRssKb = Number(opt('max-rss', 1024)) * 1024;
const corpus = opt('corpus', join(here, 'corpus'));
const save = !flag('no-save') && !replay;
const replayFiles = replay ? readdirSync(replay).filter((f) => f.endsWith('.bin')) : [];
const total = replay ? replayFiles.length : opt('inputs') !== undefined ? Number(opt('inputs')) : Infinity;
const seconds = Number(opt('seconds', process.env.FUZZ_SECONDS ?? 60));
const deadline = total === Infinity ? Date.now() + seconds * 1000 : Infinity;
const CHUNK = 64;
const quiet = flag('quiet') || !process.stderr.isTTY;

const started = Date.now();
const seeds = replay ? [] : loadSeeds();
const findings = [];
const signatures = new Map();
let next = 0;
let done = 0;

function record(kind, i, detail) {
  const finding = { kind, index: i, ...detail };
  if (replay) finding.file = replayFiles.sort()[i];
  else {
    const input = inputAt(seeds, seed, i);
    finding.target = input.target;
    finding.seedFile = input.seedName;
    const sig = `${kind}:${detail.step ?? ''}:${detail.name ?? ''}:${(detail.stack ?? '').split('\n')[1] ?? ''}`;
    const n = (signatures.get(sig) ?? 0) + 1;
    signatures.set(sig, n);
    if (save && n <= 3) {
      mkdirSync(corpus, { recursive: true });
      const hash = createHash('sha1').update(input.bytes).digest('hex').slice(0, 12);
      finding.file = join(corpus, `${input.target}-${hash}.bin`);
      writeFileSync(finding.file, input.bytes);
    }
  }
  findings.push(finding);
  console.error(
    `\nfuzz: ${kind} at input ${i}${finding.file ? ` (${finding.file})` : ''}: ${JSON.stringify(detail)}`,
  );
}

const more = () => next < total && Date.now() < deadline;

function startWorker() {
  const w = {
    child: fork(join(here, 'worker.mjs'), [], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'advanced',
    }),
    ready: false,
    busy: undefined, // { from, to, cur }
    last: Date.now(),
    stderr: '',
  };
  w.child.stderr.on('data', (d) => {
    w.stderr = (w.stderr + d).slice(-2000);
  });
  w.child.send(replay ? { mode: 'replay', dir: replay } : { mode: 'gen', seed });
  w.child.on('message', (m) => {
    w.last = Date.now();
    if (m.ready) {
      w.ready = true;
      assign(w);
    } else if (m.chunkDone !== undefined) {
      w.busy = undefined;
      assign(w);
    } else if (m.i !== undefined) {
      done++;
      w.busy.cur = m.i + 1;
      if (m.untyped) record('untyped', m.i, m.untyped);
      if (m.maxRss > maxRssKb) {
        record('memory', m.i, { maxRssMb: Math.round(m.maxRss / 1024) });
        restart(w, m.i + 1);
      }
    }
  });
  w.child.on('exit', (code, signal) => {
    if (w.dead) return;
    w.dead = true;
    if (w.busy && w.busy.cur < w.busy.to) {
      record('crash', w.busy.cur, { code, signal, stderr: w.stderr.slice(-600) });
      done++;
      requeue(w.busy.cur + 1, w.busy.to);
    } else if (!w.ready) {
      console.error(`fuzz: worker failed to start (code ${code}, signal ${signal}):\n${w.stderr}`);
      process.exit(2);
    }
    pool.splice(pool.indexOf(w), 1, startWorker());
  });
  return w;
}

const requeued = [];
function requeue(from, to) {
  if (from < to) requeued.push({ from, to });
}

function assign(w) {
  if (w.dead || w.busy) return;
  const r = requeued.shift();
  let from;
  let to;
  if (r) ({ from, to } = r);
  else if (more()) {
    from = next;
    to = Math.min(total, next + CHUNK);
    next = to;
  } else return finishIfIdle();
  w.busy = { from, to, cur: from };
  w.last = Date.now();
  w.child.send({ from, to });
}

/** Kill a worker and carry on from `resume` in a fresh one. */
function restart(w, resume) {
  const busy = w.busy;
  w.dead = true;
  w.child.kill('SIGKILL');
  if (busy) requeue(resume, busy.to);
  pool.splice(pool.indexOf(w), 1, startWorker());
}

const pool = [];
for (let k = 0; k < workers; k++) pool.push(startWorker());

const watchdog = setInterval(() => {
  const now = Date.now();
  for (const w of [...pool]) {
    if (w.busy && now - w.last > timeoutMs) {
      record('hang', w.busy.cur, { timeoutMs });
      done++;
      restart(w, w.busy.cur + 1);
    }
  }
  if (!quiet) {
    const s = (now - started) / 1000;
    process.stderr.write(
      `\rfuzz: ${done} inputs, ${findings.length} findings, ${s.toFixed(0)}s, ${(done / s).toFixed(0)}/s   `,
    );
  }
}, 250);

let finished = false;
function finishIfIdle() {
  if (finished || more() || requeued.length || pool.some((w) => w.busy || !w.ready)) return;
  finished = true;
  clearInterval(watchdog);
  for (const w of pool) {
    w.dead = true;
    w.child.kill();
  }
  const summary = {
    mode: replay ? 'replay' : 'generate',
    seed: replay ? undefined : seed,
    inputs: done,
    workers,
    seconds: Math.round((Date.now() - started) / 100) / 10,
    findings,
  };
  console.log(`\n${JSON.stringify(summary)}`);
  process.exitCode = findings.length ? 1 : 0;
}
