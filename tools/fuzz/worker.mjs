// A long-lived fuzz worker (a child of run.mjs): runs the inputs it is given, one message per
// input. A hang or a crash here is seen by the parent (no message in time, or an exit).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inputAt, loadSeeds } from './inputs.mjs';
import { loadModules, makeTargets, Untyped } from './targets.mjs';

const mods = await loadModules();
let kernel;
if (process.env.FUZZ_KERNEL !== '0') {
  try {
    kernel = mods.btf.Btf.kernel();
  } catch {
    kernel = undefined; // no /sys/kernel/btf/vmlinux: the objects' own BTF only
  }
}
const targets = makeTargets(mods, { kernel });
const seeds = loadSeeds();
let source;

const report = (e) => ({
  step: e.step,
  name: e.cause?.name ?? typeof e.cause,
  message: String(e.cause?.message ?? e.cause).slice(0, 500),
  stack: String(e.cause?.stack ?? '')
    .split('\n')
    .slice(0, 8)
    .join('\n'),
});

process.on('message', (msg) => {
  if (msg.mode === 'gen') source = (i) => inputAt(seeds, msg.seed, i);
  else if (msg.mode === 'replay') {
    const files = readdirSync(msg.dir)
      .filter((f) => f.endsWith('.bin'))
      .sort();
    source = (i) => ({
      target: files[i].split('-')[0],
      bytes: new Uint8Array(readFileSync(join(msg.dir, files[i]))),
    });
  }
  if (msg.from === undefined) return;
  for (let i = msg.from; i < msg.to; i++) {
    const input = source(i);
    let untyped;
    try {
      targets[input.target](input.bytes);
    } catch (e) {
      untyped = report(e instanceof Untyped ? e : new Untyped('target', e));
    }
    process.send({ i, untyped, maxRss: process.resourceUsage().maxRSS });
  }
  process.send({ chunkDone: msg.to });
});
process.send({ ready: true });
