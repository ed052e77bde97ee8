// Each map type's own semantics, read back from the kernel.
import { closeSync, openSync, readFileSync } from 'node:fs';
import {
  BpfMap,
  bytes,
  cidr,
  lpmKey,
  MapOperationError,
  parseCpuList,
  possibleCpus,
  struct,
  u8,
  u16,
  u32,
  u64,
} from '@bpfkit/maps';
import { BpfError, MapFlags, MapType, mapInfo, PerfType, perfEventOpen } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';
import { cgroup2Root } from '../../../tools/testing/kernel.js';

const PERF_COUNT_SW_BPF_OUTPUT = 10;

describe('array', () => {
  it('is zero-initialised, fixed in size, and refuses delete before the syscall', () => {
    using m = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 4 });
    expect([...m]).toEqual([
      [0, 0n],
      [1, 0n],
      [2, 0n],
      [3, 0n],
    ]);
    m.set(2, 5n);
    expect(m.get(2)).toBe(5n);
    expect(m.get(4)).toBeUndefined();
    // an index past the end is named as such (not "the map is full"), before the syscall or after it
    expect(() => m.set(4, 1n)).toThrow(
      new RangeError('index 4 is outside the array (maxEntries 4: indexes 0..3)'),
    );
    expect(() => m.setBytes(new Uint8Array([9, 0, 0, 0]), new Uint8Array(8))).toThrow(
      expect.objectContaining({
        name: 'RangeError',
        message: expect.stringMatching(/^index 9 is outside the array/),
      }),
    );
    // @ts-expect-error a u64 map's value is a bigint: a number does not compile
    expect(() => m.set(1, 1)).toThrow(TypeError);
    const err = (() => {
      try {
        m.delete(2);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(MapOperationError);
    expect(err).toMatchObject({ operation: 'delete', mapType: 'array' });
    expect(String(err)).toMatch(/array elements always exist/);
    expect(() => m.getAndDelete(2)).toThrow(MapOperationError);
    expect(() => m.clear()).toThrow(MapOperationError);
    expect(m.get(2)).toBe(5n);
    expect(m.supports('batch')).toBe(true);
    expect(m.getBatch()).toHaveLength(4);
  });
});

describe('per-CPU maps', () => {
  it('hold one value per possible CPU (from /sys/devices/system/cpu/possible), each rounded to 8 bytes', () => {
    const n = Math.max(...parseCpuList(readFileSync('/sys/devices/system/cpu/possible', 'utf8'))) + 1;
    expect(possibleCpus()).toBe(n);
    const Odd = struct({ a: u8, b: u16, c: u8 }); // 6 bytes: the kernel strides 8 per CPU
    expect(Odd.size).toBe(6);
    using m = BpfMap.create({ type: 'percpu_array', key: u32, value: Odd, maxEntries: 2 });
    const vals = Array.from({ length: n }, (_, i) => ({ a: i, b: 1000 + i, c: 255 - i }));
    m.set(1, vals);
    expect(m.get(1)).toEqual(vals);
    // the raw value is n × 8 bytes, CPU i's value at i × 8
    const raw = m.getBytes(new Uint8Array([1, 0, 0, 0]))!;
    expect(raw.length).toBe(8 * n);
    expect(raw[8 * (n - 1)]).toBe(n - 1);
    expect(() => m.set(0, vals.slice(1))).toThrow(RangeError);
    // the MapType number types values per CPU as the name does
    using e = BpfMap.create({ type: MapType.PERCPU_ARRAY, key: u32, value: u64, maxEntries: 1 });
    const perCpu: bigint[] | undefined = e.get(0);
    expect(perCpu).toEqual(Array(n).fill(0n));
    // @ts-expect-error one bigint is not one per CPU
    expect(() => e.set(0, 1n)).toThrow(RangeError);
    using h = BpfMap.create({ type: 'percpu_hash', key: u32, value: u32, maxEntries: 4 });
    h.set(7, Array(n).fill(3));
    expect([...h]).toEqual([[7, Array(n).fill(3)]]);
    expect(h.getAndDelete(7)).toEqual(Array(n).fill(3));
  });
});

describe('LRU maps', () => {
  it('lru_hash evicts entries instead of failing when full', () => {
    using m = BpfMap.create({ type: 'lru_hash', key: u32, value: u32, maxEntries: 256 });
    for (let i = 0; i < 2000; i++) m.set(i, i); // a plain hash would throw E2BIG at 257
    const keys = [...m.keys()];
    expect(keys.length).toBeLessThanOrEqual(256);
    expect(keys.length).toBeGreaterThan(0);
    // which keys go is the kernel's approximation (per-CPU free lists; 6.1 keeps many old ones),
    // but nothing failed, at most maxEntries stayed, and the key just written is there
    expect(m.get(1999)).toBe(1999);
  });

  it('lru_percpu_hash evicts too, and keeps per-CPU values', () => {
    const n = possibleCpus();
    using m = BpfMap.create({ type: 'lru_percpu_hash', key: u32, value: u64, maxEntries: 128 });
    for (let i = 0; i < 1000; i++) m.set(i, Array(n).fill(BigInt(i)));
    expect([...m.keys()].length).toBeLessThanOrEqual(128);
    expect(m.get(999)).toEqual(Array(n).fill(999n));
  });
});

describe('LPM trie', () => {
  it('needs no_prealloc, checked before the syscall', () => {
    expect(() => BpfMap.create({ type: 'lpm_trie', key: cidr(4), value: u32, maxEntries: 4 })).toThrow(
      /need flags to include BPF_F_NO_PREALLOC \('no_prealloc'\)/,
    );
  });

  it('finds the longest matching prefix for IPv4 and IPv6 CIDR keys', () => {
    using v4 = BpfMap.create({
      type: 'lpm_trie',
      key: cidr(4),
      value: u32,
      maxEntries: 8,
      flags: ['no_prealloc'],
    });
    v4.set('10.0.0.0/8', 8).set('10.1.0.0/16', 16).set('10.1.2.0/24', 24);
    expect(v4.get('10.1.2.3')).toBe(24);
    expect(v4.get('10.1.9.9')).toBe(16);
    expect(v4.get('10.200.0.1')).toBe(8);
    expect(v4.get('11.0.0.1')).toBeUndefined();
    expect(new Set(v4.keys())).toEqual(new Set(['10.0.0.0/8', '10.1.0.0/16', '10.1.2.0/24']));
    expect(v4.delete('10.1.0.0/16')).toBe(true);
    expect(v4.get('10.1.9.9')).toBe(8);
    expect(() => v4.set('10.0.0.0/33', 1)).toThrow(RangeError);
    expect(() => v4.set('10.0.0/8', 1)).toThrow(/not an IPv4 address/);

    using v6 = BpfMap.create({
      type: 'lpm_trie',
      key: cidr(6),
      value: u32,
      maxEntries: 8,
      flags: MapFlags.NO_PREALLOC,
    });
    v6.set('2001:db8::/32', 32).set('2001:db8:1::/48', 48).set('::ffff:10.0.0.0/104', 104);
    expect(v6.get('2001:db8:1:2::1')).toBe(48);
    expect(v6.get('2001:db8:ffff::1')).toBe(32);
    expect(v6.get('::ffff:10.9.8.7')).toBe(104);
    expect(v6.get('fe80::1')).toBeUndefined();
    expect(new Set(v6.keys())).toContain('2001:db8:1::/48');
    expect(() => v6.set('2001:db8:::1', 1)).toThrow(RangeError);
  });

  it('takes any data codec with lpmKey', () => {
    using t = BpfMap.create({
      type: 'lpm_trie',
      key: lpmKey(bytes(2)),
      value: u32,
      maxEntries: 4,
      flags: ['no_prealloc'],
    });
    t.set({ prefixLen: 4, data: new Uint8Array([0xa0, 0]) }, 1);
    expect(t.get({ prefixLen: 16, data: new Uint8Array([0xaf, 0x12]) })).toBe(1);
    expect(t.get({ prefixLen: 16, data: new Uint8Array([0xb0, 0]) })).toBeUndefined();
    expect(() => t.get({ prefixLen: 17, data: new Uint8Array(2) })).toThrow(/prefixLen must be 0..16/);
  });
});

describe('fd maps', () => {
  it('perf_event_array takes perf event fds; the kernel keeps them from user space', () => {
    using m = BpfMap.create({ type: 'perf_event_array', key: u32, value: u32, maxEntries: 2 });
    using ev = perfEventOpen({ type: PerfType.SOFTWARE, config: PERF_COUNT_SW_BPF_OUTPUT }, -1, 0);
    m.set(0, ev);
    expect(() => m.get(0)).toThrow(/get\(\) is not allowed on perf_event_array maps/);
    expect([...m.keys()]).toEqual([0, 1]);
    expect(m.delete(0)).toBe(true);
    expect(m.delete(0)).toBe(false);
    using notPerf = BpfMap.create({ type: 'array', key: u32, value: u32, maxEntries: 1 });
    expect(() => m.set(0, notPerf)).toThrow(BpfError); // a map fd is not a perf event
  });

  it('cgroup_array takes cgroup directory fds', () => {
    using m = BpfMap.create({ type: 'cgroup_array', key: u32, value: u32, maxEntries: 1 });
    const dir = openSync(cgroup2Root(), 'r');
    const file = openSync('/proc/self/stat', 'r');
    try {
      m.set(0, dir);
      expect(() => m.set(0, file)).toThrow(expect.objectContaining({ code: 'EBADF' })); // not a cgroup
    } finally {
      closeSync(dir);
      closeSync(file);
    }
    expect(() => m.get(0)).toThrow(MapOperationError);
    expect(m.delete(0)).toBe(true); // what a program sees is tested in @bpfkit/cgroup
  });
});

describe('stack_trace', () => {
  it('decodes values as address lists and only lets programs write', () => {
    using m = BpfMap.create({ type: 'stack_trace', key: u32, value: 8 * 127, maxEntries: 16 });
    expect(m.valueCodec.name).toBe('stack(127)');
    expect(m.get(0)).toBeUndefined();
    expect(() => m.set(0, [1n] as never)).toThrow(/only programs write it/);
    expect(() => BpfMap.create({ type: 'stack_trace', key: u32, value: 12, maxEntries: 1 })).toThrow(
      /arrays of 8-byte addresses/,
    );
  });
});

describe('queue, stack, bloom filter, ring buffer', () => {
  it('refuse keyed operations with the method to use instead', () => {
    using q = BpfMap.create({ type: 'queue', key: 0, value: u32, maxEntries: 2 });
    expect(() => q.get(undefined as never)).toThrow(/use peek\(\) or pop\(\)/);
    expect(() => q.set(undefined as never, 1)).toThrow(/use push\(\)/);
    q.push(1);
    q.push(2);
    expect(() => q.push(3)).toThrow(
      expect.objectContaining({ code: 'E2BIG', message: expect.stringMatching(/flag 'exist'/) }),
    );
    using b = BpfMap.create({ type: 'bloom_filter', key: 0, value: u64, maxEntries: 64 });
    expect(() => b.has(1n as never)).toThrow(/use mayContain\(\)/);
    expect(() => b.pop()).toThrow(MapOperationError);
    using h = BpfMap.create({ type: 'hash', key: u32, value: u32, maxEntries: 1 });
    expect(() => h.push(1)).toThrow(/use set\(\)/);
  });

  it('ring buffers are created here and read by @bpfkit/perf', () => {
    using rb = BpfMap.create({ type: 'ringbuf', key: 0, value: 0, maxEntries: 1 << 16 });
    expect(mapInfo(rb.fd)).toMatchObject({ typeName: 'ringbuf', maxEntries: 65536 });
    expect(() => rb.get(0 as never)).toThrow(/read and written through @bpfkit\/perf/);
    expect(() => BpfMap.create({ type: 'ringbuf', key: 0, value: 0, maxEntries: 5000 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }), // a power-of-2 multiple of the page size
    );
  });
});

describe('mmap-able arrays', () => {
  it('expose the values as memory shared with the kernel', () => {
    using m = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 8, flags: ['mmapable'] });
    const mem = m.mmap();
    m.set(3, 77n);
    expect(mem.at(3)).toBe(77n); // written by syscall, read from memory
    mem.set(5, 99n);
    expect(m.get(5)).toBe(99n); // written in memory, read by syscall
    const words = new BigUint64Array(mem.buffer, 0, mem.length);
    words[6] = 123n;
    expect(m.get(6)).toBe(123n);
    expect([...mem]).toEqual([0n, 0n, 0n, 77n, 0n, 99n, 123n, 0n]);
    expect(() => mem.at(8)).toThrow(RangeError);
  });

  it('a frozen map maps read-only; a plain array not at all', () => {
    using m = BpfMap.create({ type: 'array', key: u32, value: u32, maxEntries: 4, flags: MapFlags.MMAPABLE });
    m.set(1, 5);
    m.set(3, 7);
    m.freeze();
    expect(() => m.mmap()).toThrow(expect.objectContaining({ code: 'EPERM' }));
    const ro = m.mmap({ writable: false });
    expect(ro.stride).toBe(8); // 4-byte values, 8-byte elements
    expect([...ro]).toEqual([0, 5, 0, 7]);
    expect(() => ro.set(1, 6)).toThrow(/read-only/);
    using plain = BpfMap.create({ type: 'array', key: u32, value: u32, maxEntries: 4 });
    expect(() => plain.mmap()).toThrow(/created with BPF_F_MMAPABLE/);
    expect(() =>
      BpfMap.create({ type: 'hash', key: u32, value: u32, maxEntries: 4, flags: ['mmapable'] }),
    ).toThrow(/needs an array map/);
  });
});

describe('creation flags', () => {
  it('rdonly and wronly limit the syscall side; _prog variants are recorded', () => {
    using ro = BpfMap.create({ type: 'hash', key: u32, value: u32, maxEntries: 2, flags: ['rdonly'] });
    expect(() => ro.set(1, 1)).toThrow(expect.objectContaining({ code: 'EPERM' }));
    expect(ro.get(1)).toBeUndefined();
    using wo = BpfMap.create({ type: 'array', key: u32, value: u32, maxEntries: 2, flags: ['wronly'] });
    wo.set(0, 1);
    expect(() => wo.get(0)).toThrow(expect.objectContaining({ code: 'EPERM' }));
    using rp = BpfMap.create({
      type: 'array',
      key: u32,
      value: u32,
      maxEntries: 1,
      flags: ['rdonly_prog', 'numa_node'],
      numaNode: 0,
      name: 'flagged',
    });
    expect(rp.info).toMatchObject({ mapFlags: MapFlags.RDONLY_PROG | MapFlags.NUMA_NODE, name: 'flagged' });
    using np = BpfMap.create({ type: 'hash', key: u32, value: u32, maxEntries: 2, flags: ['no_prealloc'] });
    expect(np.info.mapFlags).toBe(MapFlags.NO_PREALLOC);
    expect(() =>
      BpfMap.create({ type: 'hash', key: u32, value: u32, maxEntries: 2, flags: ['prealloc' as never] }),
    ).toThrow(/unknown map flag 'prealloc'; known: no_prealloc/);
  });
});

describe('iteration under modification', () => {
  it('keys(): deleting the current key restarts the walk from the first key, as the kernel does', () => {
    using m = BpfMap.create({ type: 'hash', key: u32, value: u32, maxEntries: 64 });
    for (let i = 0; i < 10; i++) m.set(i, i);
    const order = [...m.keys()];
    const seen: number[] = [];
    for (const k of m.keys()) {
      seen.push(k);
      if (seen.length === 4) m.delete(k); // GET_NEXT_KEY no longer finds it: back to the first
      if (seen.length > 30) break;
    }
    expect(seen.slice(0, 5)).toEqual([...order.slice(0, 4), order[0]]);
    expect(seen.length).toBe(4 + 9);
  });

  it('keys(): the loop body may use the map for other keys without moving the walk', () => {
    using m = BpfMap.create({ type: 'hash', key: u32, value: u32, maxEntries: 64 });
    for (let i = 0; i < 20; i++) m.set(i, i);
    const seen: number[] = [];
    for (const k of m.keys()) {
      seen.push(k);
      expect(m.get((k + 7) % 20)).toBe((k + 7) % 20);
      m.has(999);
    }
    expect(seen.sort((a, b) => a - b)).toEqual([...Array(20).keys()]);
  });

  it('keys(): deleting every key as it is visited empties the map and ends', () => {
    using m = BpfMap.create({ type: 'hash', key: u32, value: u32, maxEntries: 128 });
    for (let i = 0; i < 100; i++) m.set(i, i);
    let visits = 0;
    for (const k of m.keys()) {
      m.delete(k);
      visits++;
    }
    expect(visits).toBe(100);
    expect([...m.keys()]).toEqual([]);
  });

  it('entries(): batched, a concurrent delete does not restart it and inserts do not break it', () => {
    using m = BpfMap.create({ type: 'hash', key: u32, value: u32, maxEntries: 4096 });
    for (let i = 0; i < 3000; i++) m.set(i, i * 2);
    const seen = new Map<number, number>();
    let i = 0;
    for (const [k, v] of m.entries({ chunk: 64 })) {
      expect(seen.has(k)).toBe(false);
      seen.set(k, v);
      if (i++ % 10 === 0) m.delete(k);
      if (i === 1500) for (let j = 3000; j < 3050; j++) m.set(j, j * 2);
    }
    expect(seen.size).toBeGreaterThanOrEqual(3000 - 150);
    for (const [k, v] of seen) expect(v).toBe(k * 2);
  });

  it('entries() falls back to a key walk where there is no batch command (LPM trie)', () => {
    using t = BpfMap.create({
      type: 'lpm_trie',
      key: cidr(4),
      value: u32,
      maxEntries: 4,
      flags: ['no_prealloc'],
    });
    expect(t.supports('batch')).toBe(false);
    t.set('192.168.0.0/16', 1);
    expect([...t.entries()]).toEqual([['192.168.0.0/16', 1]]);
    expect(() => t.getBatch()).toThrow(MapOperationError);
  });

  it('a hash bucket larger than the batch chunk grows the chunk instead of failing', () => {
    using m = BpfMap.create({ type: 'hash', key: u32, value: u32, maxEntries: 1024 });
    for (let i = 0; i < 1000; i++) m.set(i, i);
    expect(m.getBatch({ chunk: 1 }).length).toBe(1000);
    expect([...m.entries({ chunk: 1 })].length).toBe(1000);
  });
});
