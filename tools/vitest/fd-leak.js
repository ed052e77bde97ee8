import { afterAll, afterEach, beforeEach } from 'vitest';
import { leakedFds, openFds } from './fds.js';

let before = new Map();
beforeEach(() => {
  before = openFds();
});
afterEach((ctx) => {
  const leaked = leakedFds(before, openFds());
  if (leaked.length > 0) {
    const list = leaked.map((l) => `fd ${l.fd} → ${l.target}`).join(', ');
    throw new Error(`test '${ctx.task.name}' leaked ${leaked.length} fd(s): ${list}`);
  }
});

// With BPFKIT_STRICT_FINALIZERS=1 (the suite's default, see config.js) @bpfkit/sys records every
// fd its FinalizationRegistry had to close — an fd some code forgot, which only the collector
// saved. That fails the file: collect (when --expose-gc gives us gc) and let the finalizer tasks
// run, a bounded number of rounds, then look.
const FINALIZED = Symbol.for('bpfkit.finalizedFds');
afterAll(async () => {
  if (process.env.BPFKIT_STRICT_FINALIZERS !== '1') return;
  const gc = globalThis.gc;
  for (let round = 0; round < 4; round++) {
    gc?.();
    await new Promise((r) => setImmediate(r));
  }
  const found = globalThis[FINALIZED] ?? [];
  if (found.length === 0) return;
  const n = found.length;
  const list = found
    .splice(0)
    .map((f) => `${f.what} (fd ${f.fd})${f.stack ? `, created at\n${f.stack}` : ''}`);
  throw new Error(
    `the garbage collector had to close ${n} fd(s) nobody closed: ${list.join('; ')}` +
      '\n(set BPFKIT_LEAK_TRACE=1 to see where each was created)',
  );
});
