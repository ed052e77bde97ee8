import {
  array,
  BpfMap,
  bool,
  bytes,
  cstring,
  i32,
  i64,
  perCpu,
  possibleCpus,
  struct,
  u8,
  u16,
  u32,
  u64,
} from '@bpfkit/maps';
import { BpfError, ClosedError } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';

describe('BpfMap: Map-like API on a hash map', () => {
  it('set, get, has, delete, size-checked keys and values', () => {
    using m = BpfMap.create({ type: 'hash', key: u32, value: u64, maxEntries: 16, name: 'counts' });
    expect(m.get(1)).toBeUndefined();
    expect(m.set(1, 10n)).toBe(m);
    m.set(2, 20n);
    expect(m.get(1)).toBe(10n);
    expect(m.has(2)).toBe(true);
    expect(m.delete(2)).toBe(true);
    expect(m.delete(2)).toBe(false);
    expect(m.has(2)).toBe(false);
    expect(() => m.set(-1, 1n)).toThrow(RangeError);
    expect(() => m.set(1, 1 as never)).toThrow(TypeError);
    expect(m.info).toMatchObject({
      name: 'counts',
      keySize: 4,
      valueSize: 8,
      maxEntries: 16,
      typeName: 'hash',
    });
  });

  it('honours update flags', () => {
    using m = BpfMap.create({ type: 'hash', key: u32, value: u32, maxEntries: 4 });
    m.set(1, 1, { flag: 'noexist' });
    expect(() => m.set(1, 2, { flag: 'noexist' })).toThrow(
      expect.objectContaining({
        code: 'EEXIST',
        message: expect.stringMatching(/already exists and flag 'noexist'/),
      }),
    );
    expect(() => m.set(2, 2, { flag: 'exist' })).toThrow(
      expect.objectContaining({
        code: 'ENOENT',
        message: expect.stringMatching(/does not exist and flag 'exist'/),
      }),
    );
    m.set(1, 3, { flag: 'exist' });
    expect(m.get(1)).toBe(3);
    for (let i = 2; i <= 4; i++) m.set(i, i);
    expect(() => m.set(5, 5)).toThrow(
      expect.objectContaining({ code: 'E2BIG', message: expect.stringMatching(/map is full/) }),
    );
    expect(m.get(5)).toBeUndefined();
  });

  it('iterates keys, values and entries; clear empties it', () => {
    using m = BpfMap.create({ type: 'hash', key: u32, value: i32, maxEntries: 64 });
    for (let i = 0; i < 50; i++) m.set(i, -i);
    expect([...m.keys()].sort((a, b) => a - b)).toEqual([...Array(50).keys()]);
    expect(new Map(m).get(7)).toBe(-7);
    expect([...m.values()].reduce((a, b) => a + b, 0)).toBe(-1225);
    m.clear();
    expect([...m.entries()]).toEqual([]);
  });

  it('batch operations move many entries per syscall', () => {
    using m = BpfMap.create({ type: 'hash', key: u32, value: u64, maxEntries: 2048 });
    const input: [number, bigint][] = Array.from({ length: 1000 }, (_, i) => [i, BigInt(i) * 3n]);
    expect(m.setBatch(input, { chunk: 128 })).toBe(1000);
    const out = m.getBatch({ chunk: 100 });
    expect(out.length).toBe(1000);
    expect(new Map(out).get(999)).toBe(2997n);
    expect(m.deleteBatch(input.slice(0, 400).map(([k]) => k))).toBe(400);
    const drained = m.getBatch({ delete: true });
    expect(drained.length).toBe(600);
    expect(m.getBatch()).toEqual([]);
  });

  it('readBatches and setBatchFrom move entries through typed arrays with no per-entry objects', () => {
    using m = BpfMap.create({ type: 'hash', key: u32, value: u64, maxEntries: 4096 });
    const keys = Uint32Array.from({ length: 3000 }, (_, i) => i * 7);
    const values = BigUint64Array.from({ length: 3000 }, (_, i) => BigInt(i) << 33n);
    expect(m.setBatchFrom(keys, values)).toBe(3000);
    expect(m.get(21)).toBe(3n << 33n);
    const k = new Uint32Array(256);
    const v = new BigUint64Array(256);
    const seen = new Map<number, bigint>();
    const counts: number[] = [];
    for (const n of m.readBatches(k, v)) {
      counts.push(n);
      for (let i = 0; i < n; i++) seen.set(k[i]!, v[i]!);
    }
    expect(seen.size).toBe(3000);
    expect(Math.max(...counts)).toBeLessThanOrEqual(256);
    expect(seen.get(7 * 2999)).toBe(2999n << 33n);
    let drained = 0;
    for (const n of m.readBatches(k, v, { delete: true })) drained += n;
    expect(drained).toBe(3000);
    expect(m.has(0)).toBe(false);
    expect(() => m.readBatches(new Uint8Array(6), v).next()).toThrow(/not a whole number of keys/);
    expect(() => m.setBatchFrom(new Uint32Array(4), new BigUint64Array(3))).toThrow(/4 keys need 32 bytes/);
    using a = BpfMap.create({ type: 'array', key: u32, value: u32, maxEntries: 8 });
    expect(() => a.readBatches(k, v, { delete: true }).next()).toThrow(
      /deleteBatch\(\) is not allowed on array/,
    );
  });

  it('getAndDelete removes as it reads', () => {
    using m = BpfMap.create({ type: 'hash', key: u32, value: u32, maxEntries: 4 });
    m.set(9, 99);
    expect(m.getAndDelete(9)).toBe(99);
    expect(m.has(9)).toBe(false);
    expect(m.getAndDelete(9)).toBeUndefined();
  });
});

describe('codecs', () => {
  it('lay out structs as C does and round-trip every codec', () => {
    const Event = struct({
      kind: u8,
      port: u16,
      pid: u32,
      ts: u64,
      comm: cstring(16),
      ok: bool,
      raw: bytes(3),
      xs: array(i64, 2),
    });
    expect(Event.size).toBe(56);
    expect(Event.offsets).toEqual({ kind: 0, port: 2, pid: 4, ts: 8, comm: 16, ok: 32, raw: 33, xs: 40 });
    using m = BpfMap.create({ type: 'array', key: u32, value: Event, maxEntries: 2 });
    const v = {
      kind: 7,
      port: 443,
      pid: 1234,
      ts: 2n ** 63n,
      comm: 'node',
      ok: true,
      raw: new Uint8Array([1, 2, 3]),
      xs: [-1n, 5n],
    };
    m.set(1, v);
    expect(m.get(1)).toEqual(v);
    expect(m.get(0)).toEqual({
      kind: 0,
      port: 0,
      pid: 0,
      ts: 0n,
      comm: '',
      ok: false,
      raw: new Uint8Array(3),
      xs: [0n, 0n],
    });
    expect(() => m.set(0, { ...v, comm: 'x'.repeat(16) })).toThrow(RangeError);
    expect(() => m.set(0, { ...v, raw: new Uint8Array(4) })).toThrow(/exactly 3 bytes/);
    expect(() => m.set(0, { kind: 1 } as never)).toThrow(/missing field 'port'/);
  });

  it('perCpu: one value per CPU, each in a slot rounded up to 8 bytes', () => {
    const c = perCpu(struct({ a: u8, b: u16 }), 3); // 4 bytes a CPU, in 8-byte slots
    expect([c.size, c.stride, c.align]).toEqual([24, 8, 8]);
    const view = new DataView(new ArrayBuffer(32));
    const vals = [
      { a: 1, b: 2 },
      { a: 3, b: 4 },
      { a: 5, b: 6 },
    ];
    c.encode(view, 8, vals);
    expect([view.getUint8(8), view.getUint8(16), view.getUint16(26, true)]).toEqual([1, 3, 6]);
    expect(c.decode(view, 8)).toEqual(vals);
    expect(perCpu(u64, 2).size).toBe(16);
    expect(() => c.encode(view, 0, vals.slice(1))).toThrow(/array of 3 values/);
    expect(() => perCpu(u32, 0)).toThrow(RangeError);
  });

  it('uses raw bytes when given sizes', () => {
    using m = BpfMap.create({ type: 'hash', key: 2, value: 3, maxEntries: 2 });
    m.set(new Uint8Array([1, 2]), new Uint8Array([3, 4, 5]));
    expect(m.get(new Uint8Array([1, 2]))).toEqual(new Uint8Array([3, 4, 5]));
    expect(() => m.get(new Uint8Array([1]))).toThrow(RangeError);
  });
});

describe('map kinds', () => {
  it('per-CPU maps read and write one value per possible CPU', () => {
    const n = possibleCpus();
    using m = BpfMap.create({ type: 'percpu_array', key: u32, value: u32, maxEntries: 1 });
    const vals = Array.from({ length: n }, (_, i) => i + 100);
    m.set(0, vals);
    expect(m.get(0)).toEqual(vals);
    expect(() => m.set(0, [1] as never)).toThrow(/array of \d+ values/);
    using h = BpfMap.create({ type: 'percpu_hash', key: u32, value: u64, maxEntries: 4 });
    h.setBatch([[1, Array(n).fill(5n)]]);
    expect(h.getBatch()).toEqual([[1, Array(n).fill(5n)]]);
  });

  it('queue and stack push, pop and peek', () => {
    using q = BpfMap.create({ type: 'queue', key: 0, value: u32, maxEntries: 3 });
    q.push(1);
    q.push(2);
    q.push(3);
    expect(() => q.push(4)).toThrow(expect.objectContaining({ code: 'E2BIG' }));
    q.push(4, { flag: 'exist' });
    expect(q.peek()).toBe(2);
    expect([q.pop(), q.pop(), q.pop(), q.pop()]).toEqual([2, 3, 4, undefined]);
    using s = BpfMap.create({ type: 'stack', key: 0, value: u32, maxEntries: 3 });
    s.push(1);
    s.push(2);
    expect([s.pop(), s.pop()]).toEqual([2, 1]);
    expect(() => s.keys()).toThrow(/keys\(\) is not allowed on stack maps/);
  });

  it('bloom filter answers maybe / certainly not', () => {
    using b = BpfMap.create({ type: 'bloom_filter', key: 0, value: u32, maxEntries: 100 });
    b.push(42);
    expect(b.mayContain(42)).toBe(true);
    expect(b.mayContain(43)).toBe(false);
  });

  it('LPM trie matches the longest prefix', () => {
    const Key = struct({ prefixlen: u32, addr: bytes(4) });
    using t = BpfMap.create({
      type: 'lpm_trie',
      key: Key,
      value: u32,
      maxEntries: 8,
      flags: ['no_prealloc'],
    });
    t.set({ prefixlen: 8, addr: new Uint8Array([10, 0, 0, 0]) }, 8);
    t.set({ prefixlen: 24, addr: new Uint8Array([10, 1, 2, 0]) }, 24);
    expect(t.get({ prefixlen: 32, addr: new Uint8Array([10, 1, 2, 3]) })).toBe(24);
    expect(t.get({ prefixlen: 32, addr: new Uint8Array([10, 9, 9, 9]) })).toBe(8);
    expect(t.get({ prefixlen: 32, addr: new Uint8Array([11, 0, 0, 0]) })).toBeUndefined();
  });

  it('map-in-map stores inner maps by fd and reads back their ids', () => {
    using inner = BpfMap.create({ type: 'array', key: u32, value: u32, maxEntries: 1 });
    using outer = BpfMap.create({
      type: 'hash_of_maps',
      key: u32,
      value: u32,
      maxEntries: 4,
      innerMap: inner,
    });
    outer.set(5, inner);
    expect(outer.get(5)).toBe(inner.info.id);
    using fromSpec = BpfMap.create({
      type: 'array_of_maps',
      key: u32,
      value: u32,
      maxEntries: 2,
      innerMap: { type: 'array', key: u32, value: u32, maxEntries: 1 },
    });
    fromSpec.set(0, inner);
    expect(fromSpec.get(0)).toBe(inner.info.id);
    expect(() => BpfMap.create({ type: 'array_of_maps', key: u32, value: u32, maxEntries: 2 })).toThrow(
      /needs innerMap/,
    );
  });

  it('freeze makes a map read-only to user space', () => {
    using m = BpfMap.create({ type: 'array', key: u32, value: u32, maxEntries: 1 });
    m.set(0, 1);
    m.freeze();
    expect(() => m.set(0, 2)).toThrow(expect.objectContaining({ code: 'EPERM' }));
    expect(m.get(0)).toBe(1);
  });
});

describe('ownership and bad input', () => {
  it('fromFd / fromId check codecs against the kernel’s shape', () => {
    using m = BpfMap.create({ type: 'hash', key: u32, value: u64, maxEntries: 4 });
    m.set(3, 33n);
    using again = BpfMap.fromId(m.info.id, { key: u32, value: u64 });
    expect(again.get(3)).toBe(33n);
    expect(() => BpfMap.fromId(m.info.id, { key: u64 })).toThrow(
      /key codec u64 is 8 bytes; map '' has 4-byte keys/,
    );
    using raw = BpfMap.fromFd(m.fd.dup());
    expect(raw.get(new Uint8Array([3, 0, 0, 0]))).toEqual(new Uint8Array([33, 0, 0, 0, 0, 0, 0, 0]));
  });

  it('use after close throws ClosedError; close is idempotent', () => {
    const m = BpfMap.create({ type: 'array', key: u32, value: u32, maxEntries: 1 });
    m.close();
    m.close();
    expect(() => m.get(0)).toThrow(ClosedError);
    expect(() => m.set(0, 1)).toThrow(/is closed/);
    expect(() => [...m.keys()]).toThrow(ClosedError);
  });

  it('rejects unknown kinds, bad sizes and names before the syscall', () => {
    expect(() => BpfMap.create({ type: 'nonsense' as never, key: u32, value: u32, maxEntries: 1 })).toThrow(
      /unknown map type 'nonsense'/,
    );
    expect(() => BpfMap.create({ type: 'array', key: u32, value: u32, maxEntries: -1 })).toThrow(RangeError);
    expect(() => BpfMap.create({ type: 'prog_array', key: u32, value: u64, maxEntries: 1 })).toThrow(
      /4-byte fds/,
    );
    expect(() =>
      BpfMap.create({ type: 'hash', key: u32, value: u32, maxEntries: 1, name: 'bad name!' }),
    ).toThrow(RangeError);
    expect(() => BpfMap.create({ type: 'array', key: u64, value: u32, maxEntries: 1 })).toThrow(BpfError);
  });
});
