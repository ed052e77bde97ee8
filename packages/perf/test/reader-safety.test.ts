import { spawnSync } from 'node:child_process';
import { getEventListeners } from 'node:events';
import { readdirSync } from 'node:fs';
import { attachTracepoint } from '@bpfkit/link';
import { BpfMap, onlineCpus } from '@bpfkit/maps';
import { MapInUseError, PerfReader, RingBufReader } from '@bpfkit/perf';
import { describe, expect, it } from 'vitest';
import { emitterKit } from '../../../tools/testing/programs.js';

// Issue 13, the readers: whatever the caller does, no crash, hang or leak. What could crash runs
// in a child process, so a fault fails the test instead of killing the test runner.

const packageDir = new URL('..', import.meta.url).pathname;
const programs = new URL('../../../tools/testing/programs.js', import.meta.url).pathname;
const kinds = ['ringbuf', 'perf'] as const;
type Kind = (typeof kinds)[number];

const getppid = (n: number) => {
  let x = 0;
  for (let i = 0; i < n; i++) x += process.ppid;
  return x;
};
const openFds = () => readdirSync('/proc/self/fd').length;

/** Run `body` as an ES module in a child (imports resolve from this package); its stdout lines. */
function child(kind: Kind, body: string, flags: string[] = []): string[] {
  const script = `
import { readdirSync, readFileSync } from 'node:fs';
import { getEventListeners, setMaxListeners } from 'node:events';
import * as perf from '@bpfkit/perf';
import { attachTracepoint } from '@bpfkit/link';
import { BpfMap, onlineCpus, u32 } from '@bpfkit/maps';
import { ClosedError } from '@bpfkit/sys';
import { emitterKit } from ${JSON.stringify(programs)};
const { PerfReader, RingBufReader } = perf;
const kind = ${JSON.stringify(kind)};
const open = (map, o) => (kind === 'perf' ? PerfReader.open(map, o) : RingBufReader.open(map, o));
const getppid = (n) => { for (let i = 0; i < n; i++) process.ppid; };
const pidOf = (b) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, true);
const sum = (b) => b.reduce((a, x) => a + x, 0);
const closed = (what, f) => {
  try { f(); } catch (e) { if (e instanceof ClosedError) return console.log(what + ': ClosedError'); throw e; }
  throw new Error(what + ' did not throw');
};
const ringMappings = () => readFileSync('/proc/self/maps', 'utf8').split('\\n')
  .filter((l) => /anon_inode:(bpf-map|\\[perf_event\\])/.test(l)).length;
const fds = () => readdirSync('/proc/self/fd').length;
void process.stdout; // opens its pipe's fds now, not between two counts
const mapAlive = (id) => { try { BpfMap.fromId(id).close(); return true; } catch { return false; } };
const kit = emitterKit(kind, process.pid, 16);
const link = attachTracepoint(kit.prog, 'syscalls', 'sys_enter_getppid');
${body}
link.detach();
kit[Symbol.dispose]();
`;
  const r = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', script], {
    cwd: packageDir,
    encoding: 'utf8',
  });
  expect({ signal: r.signal, status: r.status, stderr: r.stderr }).toEqual({
    signal: null,
    status: 0,
    stderr: '',
  });
  return r.stdout.trim().split('\n');
}

describe.each(kinds)(
  '%s reader: stale views are harmless (run in a child: a fault would kill it)',
  (kind) => {
    it('every method after close() throws ClosedError; read, wait and for-await end cleanly', () => {
      const out = child(
        kind,
        `
const r = open(kit.events);
getppid(3);
r.close();
r.close();
closed('drain', () => r.drain(() => {}));
closed('drainInPlace', () => r.drainInPlace(() => {}));
if (kind === 'ringbuf') closed('available', () => r.available);
else for (const m of ['pause', 'resume', 'snapshot']) closed(m, () => r[m]());
console.log('read', await r.read());
console.log('wait', await r.wait({ timeout: 0 }));
for await (const _ of r) console.log('iterated');
console.log('closed', r.closed);
`,
      );
      const methods = kind === 'ringbuf' ? ['available'] : ['pause', 'resume', 'snapshot'];
      expect(out).toEqual([
        'drain: ClosedError',
        'drainInPlace: ClosedError',
        ...methods.map((m) => `${m}: ClosedError`),
        'read undefined',
        'wait false',
        'closed true',
      ]);
    });

    it("a record's data read after close() reads zeros, the whole ring too", () => {
      const out = child(
        kind,
        `
const r = open(kit.events);
getppid(1);
const rec = await r.read();
console.log('before', pidOf(rec.data) === process.pid);
r.close();
console.log('after', sum(rec.data), sum(new Uint8Array(rec.data.buffer)));
`,
      );
      expect(out).toEqual(['before true', 'after 0 0']);
    });

    it('close() in a drain callback: the view stays valid for the call, then the drain stops', () => {
      const out = child(
        kind,
        `
const r = open(kit.events);
getppid(5);
const seen = [];
const n = r.drain((data) => { r.close(); seen.push(pidOf(data) === process.pid); });
console.log('delivered', n, seen.join());
// the map is free again; a ring buffer's consumer position moved past the one record consumed
const r2 = open(kit.events);
getppid(2);
console.log('next reader', r2.drain(() => {}));
r2.close();
`,
      );
      expect(out).toEqual(['delivered 1 true', `next reader ${kind === 'ringbuf' ? 6 : 2}`]);
    });

    it('close() in drainInPlace: no further record is touched, nothing is published after it', () => {
      const out = child(
        kind,
        `
const r = open(kit.events);
getppid(4);
let calls = 0;
const n = r.drainInPlace((buf, off, len) => {
  calls++;
  if (calls === 2) { r.close(); console.log('in call', pidOf(buf.subarray(off, off + len)) === process.pid); }
});
console.log('delivered', n, calls);
const r2 = open(kit.events);
console.log('left', r2.drain(() => {}));
r2.close();
`,
      );
      expect(out).toEqual(['in call true', 'delivered 2 2', `left ${kind === 'ringbuf' ? 2 : 0}`]);
    });

    it('close() in a for-await body ends the loop; the record in hand reads zeros', () => {
      const out = child(
        kind,
        `
const r = open(kit.events);
getppid(3);
let iterations = 0;
for await (const rec of r) {
  iterations++;
  const ok = pidOf(rec.data) === process.pid;
  r.close();
  console.log('body', ok, sum(rec.data));
}
console.log('iterations', iterations);
const r2 = open(kit.events);
console.log('left', r2.drain(() => {}));
r2.close();
`,
      );
      // The record handed on is consumed by close(): a ring buffer keeps the other two.
      expect(out).toEqual(['body true 0', 'iterations 1', `left ${kind === 'ringbuf' ? 2 : 0}`]);
    });
  },
);

describe.each(kinds)('%s reader: nothing leaks', (kind) => {
  it('close() releases the mappings, fds, the kernel map and the signal listener at once', () => {
    const out = child(
      kind,
      `
const mk = () => kind === 'perf'
  ? BpfMap.create({ type: 'perf_event_array', key: u32, value: u32, maxEntries: Math.max(...onlineCpus()) + 1 })
  : BpfMap.create({ type: 'ringbuf', key: 0, value: 0, maxEntries: 4096 });
{ const m = mk(); open(m).close(); m.close(); } // warm up what opens lazily
const signal = new AbortController().signal;
const fd0 = fds();
const anon0 = ringMappings();
const m = mk();
const id = m.info.id;
const r = open(m, { signal });
console.log('open', ringMappings() > anon0, getEventListeners(signal, 'abort').length);
m.close(); // the reader holds its own reference
console.log('alive', mapAlive(id));
r.close();
console.log('closed', ringMappings() - anon0, fds() - fd0, getEventListeners(signal, 'abort').length, mapAlive(id));
`,
    );
    expect(out).toEqual(['open true 1', 'alive true', 'closed 0 0 0 false']);
  });

  it('readers dropped without close() release everything when collected', () => {
    const out = child(
      kind,
      `
const mk = () => kind === 'perf'
  ? BpfMap.create({ type: 'perf_event_array', key: u32, value: u32, maxEntries: Math.max(...onlineCpus()) + 1 })
  : BpfMap.create({ type: 'ringbuf', key: 0, value: 0, maxEntries: 4096 });
{ const m = mk(); open(m).close(); m.close(); }
const signal = new AbortController().signal;
setMaxListeners(100, signal);
const fd0 = fds();
const anon0 = ringMappings();
const ids = [];
(() => {
  for (let i = 0; i < 20; i++) {
    const m = mk();
    ids.push(m.info.id);
    open(m, { signal }); // forgotten
    m.close();
  }
})();
const listeners = () => getEventListeners(signal, 'abort').length;
console.log('held', ringMappings() > anon0, listeners(), ids.filter(mapAlive).length);
const leftover = () => ringMappings() > anon0 || fds() > fd0 || listeners() > 0;
for (let round = 0; round < 200 && leftover(); round++) {
  globalThis.gc();
  await new Promise((r) => setImmediate(r));
}
console.log('collected', ringMappings() - anon0, fds() - fd0, listeners(), ids.filter(mapAlive).length);
// the collected readers' claims are gone too: the map of a forgotten reader opens again
const m = mk();
(() => open(m))();
let reopened = false;
for (let round = 0; round < 200 && !reopened; round++) {
  globalThis.gc();
  await new Promise((r) => setImmediate(r));
  try {
    open(m).close();
    reopened = true;
  } catch (e) {
    if (!(e instanceof perf.MapInUseError)) throw e;
  }
}
m.close();
console.log('reopened', reopened);
`,
      ['--expose-gc'],
    );
    expect(out).toEqual(['held true 20 20', 'collected 0 0 0 0', 'reopened true']);
  });

  it('100 readers opened and closed on one signal leave no listener on it', () => {
    using s = emitterKit(kind, process.pid, 8);
    const ac = new AbortController();
    for (let i = 0; i < 100; i++) {
      const r =
        kind === 'perf'
          ? PerfReader.open(s.events, { signal: ac.signal })
          : RingBufReader.open(s.events, { signal: ac.signal });
      expect(getEventListeners(ac.signal, 'abort').length).toBe(1);
      r.close();
    }
    expect(getEventListeners(ac.signal, 'abort')).toEqual([]);
  });
});

describe('one reader per ring', () => {
  it('a second PerfReader on the same CPU slots is refused; the first keeps every event', () => {
    using s = emitterKit('perf', process.pid, 16);
    const id = s.events.info.id;
    const first = PerfReader.open(s.events, { pagesPerCpu: 2 });
    let err: unknown;
    try {
      PerfReader.open(s.events);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MapInUseError);
    expect(err).toMatchObject({ mapId: id, cpus: onlineCpus() });
    expect(String(err)).toMatch(/already has a PerfReader in this process/);
    {
      using _link = attachTracepoint(s.prog, 'syscalls', 'sys_enter_getppid');
      getppid(10);
    }
    expect(first.drain(() => {})).toBe(10);
    first.close();
    // closed: the slots are free again; readers on disjoint CPUs may coexist
    const [c0, ...others] = onlineCpus();
    using a = PerfReader.open(s.events, { cpus: [c0!] });
    expect(() => PerfReader.open(s.events, { cpus: [c0!] })).toThrow(MapInUseError);
    using b = others.length > 0 ? PerfReader.open(s.events, { cpus: others }) : undefined;
    {
      using _link = attachTracepoint(s.prog, 'syscalls', 'sys_enter_getppid');
      getppid(10);
    }
    expect(a.drain(() => {}) + (b?.drain(() => {}) ?? 0)).toBe(10);
  });

  it('a second RingBufReader on one ring buffer is refused; a closed reader hands its position on', async () => {
    using s = emitterKit('ringbuf', process.pid, 8);
    using other = emitterKit('ringbuf', process.pid, 8);
    const first = RingBufReader.open(s.events);
    expect(() => RingBufReader.open(s.events)).toThrow(MapInUseError);
    expect(() => RingBufReader.open([other.events, s.events])).toThrow(/already has a RingBufReader/);
    expect(() => RingBufReader.open([other.events, other.events])).toThrow(MapInUseError);
    RingBufReader.open(other.events).close(); // the failed opens claimed nothing
    {
      using _link = attachTracepoint(s.prog, 'syscalls', 'sys_enter_getppid');
      getppid(3);
    }
    expect(await first.read()).toBeDefined();
    first.close(); // the record handed on counts as consumed
    using second = RingBufReader.open(s.events);
    expect(second.drain(() => {})).toBe(2);
  });
});

describe('bad arguments are typed errors, before anything is opened', () => {
  it('read() and wait() take a finite timeout ≥ 0 and an AbortSignal', async () => {
    using s = emitterKit('ringbuf', process.pid, 8);
    using p = emitterKit('perf', process.pid, 8);
    using ring = RingBufReader.open(s.events);
    using perf = PerfReader.open(p.events);
    for (const r of [ring, perf] as (RingBufReader | PerfReader)[]) {
      for (const timeout of [Number.NaN, Number.POSITIVE_INFINITY, -1])
        await expect(r.read({ timeout })).rejects.toThrow(RangeError);
      await expect(r.wait({ timeout: Number.NaN })).rejects.toThrow(RangeError);
      await expect(r.read({ timeout: '10' as unknown as number })).rejects.toThrow(TypeError);
      await expect(r.read({ signal: {} as AbortSignal })).rejects.toThrow(TypeError);
      expect(await r.read({ timeout: 0 })).toBeUndefined(); // still usable
    }
  });

  it('PerfReader.open checks every option first', () => {
    using s = emitterKit('perf', process.pid, 8);
    const fds = openFds();
    const bad: [unknown, ErrorConstructor][] = [
      [null, TypeError],
      [{ pagesPerCpu: 3 }, RangeError],
      [{ pagesPerCpu: 0 }, RangeError],
      [{ pagesPerCpu: 2 ** 40 }, RangeError],
      [{ pagesPerCpu: '4' }, TypeError],
      [{ watermark: -1 }, RangeError],
      [{ watermark: Number.NaN }, RangeError],
      [{ watermark: 1.5 }, RangeError],
      [{ pagesPerCpu: 1, watermark: 4096 }, RangeError],
      [{ cpus: [] }, RangeError],
      [{ cpus: [0, 0] }, RangeError],
      [{ cpus: [-1] }, RangeError],
      [{ cpus: 0 }, TypeError],
      [{ copy: 'yes' }, TypeError],
      [{ overwritable: 1 }, TypeError],
      [{ signal: 'stop' }, TypeError],
    ];
    for (const [opts, type] of bad)
      expect(() => PerfReader.open(s.events, opts as object), JSON.stringify(opts)).toThrow(type);
    expect(openFds()).toBe(fds);
    using ok = PerfReader.open(s.events, { pagesPerCpu: 1, watermark: 4095 });
    expect(ok.closed).toBe(false);
  });

  it('RingBufReader.open checks its options and maps first', () => {
    using s = emitterKit('ringbuf', process.pid, 8);
    const fds = openFds();
    expect(() => RingBufReader.open(s.events, { copy: 1 as unknown as boolean })).toThrow(TypeError);
    expect(() => RingBufReader.open(s.events, { signal: {} as AbortSignal })).toThrow(TypeError);
    expect(() => RingBufReader.open(s.events, null as unknown as object)).toThrow(TypeError);
    expect(() => RingBufReader.open([s.events, null as unknown as BpfMap<unknown, unknown>])).toThrow(
      TypeError,
    );
    const gone = BpfMap.create({ type: 'ringbuf', key: 0, value: 0, maxEntries: 4096 });
    gone.close();
    expect(() => RingBufReader.open(gone)).toThrow(/closed/);
    expect(openFds()).toBe(fds);
  });

  it('a drain inside a drain callback, or a read, is refused; the records stay for the next drain', async () => {
    for (const kind of kinds) {
      using s = emitterKit(kind, process.pid, 8);
      using r = kind === 'perf' ? PerfReader.open(s.events) : RingBufReader.open(s.events);
      {
        using _link = attachTracepoint(s.prog, 'syscalls', 'sys_enter_getppid');
        getppid(2);
      }
      expect(() => r.drain(() => r.drain(() => {}))).toThrow(/inside a drain callback/);
      let pending: Promise<unknown> | undefined;
      expect(() =>
        r.drain(() => {
          pending = r.read();
          throw new Error('stop');
        }),
      ).toThrow('stop');
      await expect(pending).rejects.toThrow(/inside a drain callback/);
      expect(r.drain(() => {})).toBe(2);
    }
  });
});

describe('writing into what a reader hands out never crashes, nor reaches the kernel (run in a child)', () => {
  // A ring buffer's producer pages are mapped read-only (the kernel refuses a writable mapping),
  // and an ArrayBuffer cannot be read-only: a write through a view of them would be a SIGSEGV.
  // Records of 40 bytes (48 in the ring) through a 4 KiB ring: many of them wrap its end.
  const rounds = `
const k = emitterKit(kind, process.pid, 40, 4096);
const l = attachTracepoint(k.prog, 'syscalls', 'sys_enter_getppid');
let next = 0;
const bad = [];
const check = (d) => {
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const seq = v.getUint32(4, true);
  let ok = d.byteLength === (kind === 'perf' ? 44 : 40) && // perf pads the raw sample
     v.getUint32(0, true) === process.pid && seq === next;
  for (let i = 8; i < 40; i++) ok &&= d[i] === (seq & 0xff);
  if (!ok && bad.length < 5) bad.push(next + ':' + Array.from(d).join(','));
  next = seq + 1;
};
// every way in: the view, its whole buffer, a DataView over the buffer
const scribble = (d) => {
  d[0] = 1;
  d.fill(0xee);
  const dv = new DataView(d.buffer);
  dv.setUint8(0, 0xab);
  dv.setUint32(d.buffer.byteLength - 4, 0xdeadbeef);
  new Uint8Array(d.buffer).fill(0x55);
};
const finish = (what) => {
  console.log(what, next, bad.length === 0 ? 'intact' : bad.join(' | '));
  l.detach();
  k[Symbol.dispose]();
};
`;
  const ways: Record<string, string> = {
    read: `
const r = RingBufReader.open(k.events);
for (let round = 0; round < 20; round++) {
  getppid(30);
  for (let i = 0; i < 30; i++) { const rec = await r.read({ timeout: 1000 }); check(rec.data); scribble(rec.data); }
}
r.close();
finish('read');
`,
    'for await': `
const r = RingBufReader.open(k.events);
getppid(30);
for await (const rec of r) {
  check(rec.data);
  scribble(rec.data);
  if (next % 30 === 0) { if (next === 600) break; getppid(30); }
}
r.close();
finish('for await');
`,
    drain: `
const r = RingBufReader.open(k.events);
for (let round = 0; round < 20; round++) {
  getppid(30);
  const n = r.drain((data) => { check(data); scribble(data); });
  if (n !== 30) bad.push('drained ' + n);
}
r.close();
finish('drain');
`,
    drainInPlace: `
const r = RingBufReader.open(k.events);
for (let round = 0; round < 20; round++) {
  getppid(30);
  const n = r.drainInPlace((buf, off, len) => {
    check(buf.subarray(off, off + len));
    buf[off] = 1;
    buf.fill(0x77);
    new DataView(buf.buffer).setUint32(0, 0xdeadbeef);
    new Uint8Array(buf.buffer).fill(0x66);
  });
  if (n !== 30) bad.push('drained ' + n);
}
r.close();
finish('drainInPlace');
`,
  };

  it.each(Object.keys(ways))('ring buffer records from %s: writable, and the next records intact', (way) => {
    const out = child('ringbuf', rounds + ways[way]);
    expect(out).toEqual([`${way} 600 intact`]);
  });

  it('records kept past their lifetime (and past close()) and written over do not disturb later ones', () => {
    const out = child(
      'ringbuf',
      `${rounds}
const r = RingBufReader.open(k.events);
const kept = [];
for (let round = 0; round < 20; round++) {
  getppid(30);
  for (let i = 0; i < 30; i++) {
    const rec = await r.read({ timeout: 1000 });
    check(rec.data);
    kept.push(rec.data);
    // views of earlier records, past their lifetime (they may share the current one's memory)
    for (const d of kept.slice(-30)) scribble(d);
  }
}
r.close();
for (const d of kept) scribble(d); // and after close()
finish('kept');
`,
    );
    expect(out).toEqual(['kept 600 intact']);
  });

  it("an overwritable perf reader's snapshot() records are the caller's own", () => {
    const out = child(
      'perf',
      `${rounds}
const r = PerfReader.open(k.events, { overwritable: true, pagesPerCpu: 1 });
getppid(20);
const first = r.snapshot();
for (const rec of first) scribble(rec.data);
getppid(5);
const seqs = r.snapshot().map((rec) => {
  next = new DataView(rec.data.buffer, rec.data.byteOffset).getUint32(4, true);
  check(rec.data);
  return next - 1;
});
r.close();
next = Math.max(...seqs) + 1;
console.log(first.length, seqs.sort((a, b) => a - b).join());
finish('snapshot');
`,
    );
    const seqs = Array.from({ length: 25 }, (_, i) => i);
    expect(out).toEqual([`20 ${seqs.join()}`, 'snapshot 25 intact']);
  });
});
