// Memory safety under FFI: no crash, hang or leak whatever the caller does (issue 13).
// Hostile sequences that could crash run in a child process, which must exit cleanly.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import {
  ClosedError,
  ElemOps,
  Epoll,
  EventFd,
  MapType,
  mapCreate,
  mapGetNextKey,
  NativeBuffer,
  WAIT_SLICE_MS,
} from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';
import { mappedAt } from '../../../tools/testing/memory.js';
import { openFds } from '../../../tools/vitest/fds.js';

const pkg = new URL('..', import.meta.url);
const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url);

/** Run an ES module script in a fresh node; the timeout only catches a hang. */
function child(script: string, env: Record<string, string> = {}) {
  const run = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
    cwd: pkg,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 280_000,
  });
  const last = run.stdout.trim().split('\n').pop() ?? '';
  return { ...run, result: last.startsWith('{') ? JSON.parse(last) : undefined };
}

const bpfMaps = () => [...openFds().values()].filter((t) => t === 'anon_inode:bpf-map').length;

describe('ElemOps never acts on a closed Fd', () => {
  it('throws ClosedError before any syscall once the Fd is closed, even when the number is reused', () => {
    const fd = mapCreate({ mapType: MapType.HASH, keySize: 4, valueSize: 4, maxEntries: 4 });
    const ops = new ElemOps(fd, 4, 4, "map 'small'");
    ops.keyView.setUint32(0, 1, true);
    ops.valueView.setUint32(0, 7, true);
    ops.update(0);
    const n = fd.value;
    fd.close();
    expect(ops.closed).toBe(true);
    // The next fd gets the old number: a map with bigger values the stale number would reach.
    using big = mapCreate({ mapType: MapType.HASH, keySize: 4, valueSize: 4096, maxEntries: 4 });
    expect(big.value).toBe(n);
    for (const op of [
      () => ops.lookup(0),
      () => ops.update(0),
      () => ops.delete(),
      () => ops.next(true),
      () => ops.lookupAndDelete(0),
    ])
      expect(op).toThrow(new ClosedError("map 'small'"));
    using next = new NativeBuffer(4);
    expect(mapGetNextKey({ mapFd: big.value, key: 0n, nextKey: next.ptr })).toBe(false); // untouched
    ops.free();
  });

  it('stops after free() too, with the fd still open', () => {
    using fd = mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 8, maxEntries: 1 });
    const ops = new ElemOps(fd, 4, 8);
    ops.keyView.setUint32(0, 0, true);
    expect(ops.lookup(0)).toBe(true);
    ops.free();
    expect(() => ops.lookup(0)).toThrow(ClosedError);
  });
});

describe('NativeBuffer views never outlive their memory', () => {
  it('keeps the memory while only its bytes are reachable; frees it once nothing views it', () => {
    const run = child(`
      import { NativeBuffer } from '@bpfkit/sys';
      import { mappedAt as mapped } from ${JSON.stringify(new URL('../../../tools/testing/memory.js', import.meta.url).href)};
      const settle = async () => { for (let i = 0; i < 8; i++) { gc(); await new Promise((r) => setImmediate(r)); } };
      // Small (malloc) and large (own mapping) buffers: keep only a view, drop the owner.
      let small = (() => new NativeBuffer(64).bytes)();
      let large = (() => { const b = new NativeBuffer(1 << 20); return b.view; })();
      const largeAddr = (() => { const b = new NativeBuffer(1 << 20); const v = b.bytes; return [v, b.ptr.toString(16)]; })();
      await settle();
      small.fill(0xab); for (let i = 0; i < large.byteLength; i += 4096) large.setUint32(i, i, true);
      let sum = 0; for (const x of small) sum += x; for (let i = 0; i < large.byteLength; i += 4096) sum += large.getUint32(i, true) & 1;
      const stillMapped = mapped(largeAddr[1]);
      // free() with views alive: ptr is refused, the views stay readable (a large one reads zeros).
      const b = new NativeBuffer(1 << 17); const v = b.bytes; v.fill(9); b.free();
      let freedErr; try { b.ptr; } catch (e) { freedErr = e.name; }
      const afterFree = v[0] + v[v.length - 1];
      const addr = (() => { const c = new NativeBuffer(1 << 17); c.bytes.fill(1); const a = c.ptr.toString(16); c.free(); return a; })();
      largeAddr[0] = undefined;
      await settle();
      console.log(JSON.stringify({ sum, stillMapped, freedErr, afterFree, unmapped: !mapped(addr) && !mapped(largeAddr[1]) }));
    `);
    expect(run.signal).toBeNull();
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.result).toEqual({
      sum: 64 * 0xab,
      stillMapped: true,
      freedErr: 'ClosedError',
      afterFree: 0,
      unmapped: true,
    });
  });

  it('frees a never-viewed buffer at once and refuses its address afterwards', () => {
    const b = new NativeBuffer(1 << 16);
    const addr = b.ptr.toString(16);
    const mapped = () => mappedAt(addr);
    expect(mapped()).toBe(true);
    b.free();
    expect(mapped()).toBe(false);
    expect(() => b.ptr).toThrow(ClosedError);
    expect(() => b.at(0)).toThrow(ClosedError);
    b.free();
  });
});

describe('Epoll.waitAsync', () => {
  it('close() during a wait wakes it, and the buffers and fds go only after it returns (child process)', () => {
    const run = child(`
      import { Epoll, EventFd } from '@bpfkit/sys';
      const efd = new EventFd();
      const results = [];
      for (let round = 0; round < 50; round++) {
        const ep = new Epoll(4);
        ep.add(efd.fd, 1);
        const p = ep.waitAsync(-1);
        ep.close();
        // Churn native memory, then make the event the old buffer would have received.
        const junk = []; for (let i = 0; i < 64; i++) junk.push(new Epoll(4)); for (const j of junk) j.close();
        efd.signal();
        results.push(await p);
        efd.drain();
      }
      let err; try { await new Epoll().waitAsync(0).then(() => 0); const e = new Epoll(); e.close(); await e.waitAsync(0); } catch (e) { err = e.name; }
      efd.close();
      console.log(JSON.stringify({ results: [...new Set(results)], err }));
    `);
    expect(run.signal).toBeNull();
    expect(run.status).toBe(0);
    expect(run.result).toEqual({ results: [0], err: 'ClosedError' });
  });

  it('reports events, honours its timeout in bounded slices, and closes everything it opened', async () => {
    const before = openFds().size;
    const ep = new Epoll(4);
    const efd = new EventFd();
    ep.add(efd.fd, 5);
    const pending = ep.waitAsync(-1);
    efd.signal();
    expect(await pending).toBe(1);
    expect(ep.asyncEventData(0)).toBe(5);
    efd.drain();
    // A timeout longer than one slice: re-issued slices, then 0 events.
    expect(await ep.waitAsync(WAIT_SLICE_MS * 2 + 1)).toBe(0);
    // cancelWait() ends a pending wait; the set is usable again afterwards.
    const cancelled = ep.waitAsync(-1);
    ep.cancelWait();
    expect(await cancelled).toBe(0);
    const first = ep.waitAsync(-1);
    await expect(ep.waitAsync(-1)).rejects.toThrow(/already in flight/);
    ep.cancelWait();
    expect(await first).toBe(0);
    const late = ep.waitAsync(-1);
    ep.close();
    expect(ep.closed).toBe(true);
    expect(() => ep.add(efd.fd, 1)).toThrow(ClosedError);
    expect(await late).toBe(0);
    expect(ep.fd.closed).toBe(true);
    efd.close();
    expect(openFds().size).toBe(before);
  });

  it('a pending wait does not keep process.exit() from exiting (child process)', () => {
    const run = child(`
      import { Epoll, EventFd } from '@bpfkit/sys';
      const ep = new Epoll(); const efd = new EventFd(); ep.add(efd.fd, 1);
      ep.waitAsync(-1);
      const ep2 = new Epoll(); ep2.add(efd.fd, 2); ep2.waitAsync(3_600_000);
      setImmediate(() => { console.log(JSON.stringify({ exiting: true })); process.exit(7); });
    `);
    expect(run.signal).toBeNull();
    expect(run.status).toBe(7);
    expect(run.result).toEqual({ exiting: true });
  });

  it('a worker with a pending waitAsync and Readiness.wait can be terminated: terminate() resolves', async () => {
    const w = new Worker(fixture('wait-worker.mjs'));
    const exited = new Promise<number>((r) => w.once('exit', r));
    const checks = await new Promise((resolve, reject) => {
      w.once('error', reject);
      w.on('message', (m) => m.waiting && resolve(m.waiting));
    });
    // Off the main thread Readiness waits on a pool thread (a koffi poll handle left open in a
    // terminated worker crashes the process): it still sees readiness, cancels and times out.
    expect(checks).toEqual({ signalled: true, cancelled: false, timedOut: false });
    await w.terminate();
    expect(await exited).toBe(1);
  });
});

describe('fds made in a worker thread', () => {
  for (const how of ['exit', 'return', 'hang'] as const) {
    it(`are closed when the worker ${how === 'hang' ? 'is terminated' : how === 'exit' ? 'calls process.exit()' : 'ends'}`, async () => {
      const before = bpfMaps();
      const w = new Worker(fixture('map-worker.mjs'), { workerData: { count: 5, how } });
      const exited = new Promise<number>((r) => w.once('exit', r));
      const { fds } = await new Promise<{ fds: number[] }>((resolve, reject) => {
        w.once('error', reject);
        w.once('message', resolve);
      });
      expect(fds).toHaveLength(5);
      if (how === 'hang') {
        expect(bpfMaps()).toBe(before + 5);
        await w.terminate();
      }
      await exited;
      expect(bpfMaps()).toBe(before);
    });
  }

  it('are still the worker’s alone: closing one in the worker closes it once', async () => {
    // The parent's close on exit must not close a number the worker already closed and this
    // thread reused: open maps here while the worker churns its own.
    const mine = Array.from({ length: 4 }, () =>
      mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 }),
    );
    const w = new Worker(fixture('map-worker.mjs'), { workerData: { count: 20, how: 'churn' } });
    await new Promise((r) => w.once('exit', r));
    for (const fd of mine) {
      expect(readFileSync(`/proc/self/fdinfo/${fd.value}`, 'utf8')).toMatch(/map_type:\s+2/);
      fd.close();
    }
  });
});

describe('strict finalizers (BPFKIT_STRICT_FINALIZERS=1)', () => {
  it('records every fd the collector had to close', () => {
    const run = child(
      `
      import { finalizedFds, MapType, mapCreate } from '@bpfkit/sys';
      (() => { mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 }); })();
      mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 }).close();
      for (let i = 0; i < 50 && finalizedFds().length === 0; i++) { gc(); await new Promise((r) => setImmediate(r)); }
      console.log(JSON.stringify(finalizedFds().map((f) => ({ what: f.what, closed: f.closed }))));
    `,
      { BPFKIT_STRICT_FINALIZERS: '1', BPFKIT_LEAK_TRACE: '0' },
    );
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout.trim())).toEqual([{ what: 'bpf-map', closed: true }]);
  });

  it('fails a test file whose code left an fd to the collector', () => {
    const run = spawnSync(
      process.execPath,
      [
        new URL('../../../node_modules/vitest/vitest.mjs', import.meta.url).pathname,
        'run',
        '--config',
        fixture('strict/vitest.config.ts').pathname,
      ],
      {
        cwd: new URL('./fixtures/strict/', import.meta.url),
        env: { ...process.env, BPFKIT_STRICT_FINALIZERS: '1', CI: '1', NO_COLOR: '1' },
        encoding: 'utf8',
        timeout: 300_000,
      },
    );
    const out = run.stdout + run.stderr;
    expect(out).toMatch(/garbage collector had to close 1 fd\(s\) nobody closed: bpf-map \(fd \d+\)/);
    expect(out).toMatch(/Tests\s+2 passed/);
    expect(run.status).toBe(1);
  });
});
