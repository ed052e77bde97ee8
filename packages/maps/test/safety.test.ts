// Memory safety (issue 13): a map never acts on a closed fd, and bad batch sizes fail before
// any syscall. The hostile sequence that used to abort runs in a child process.
import { spawnSync } from 'node:child_process';
import { BpfMap, bytes, u32, u64 } from '@bpfkit/maps';
import { ClosedError, MapType, mapCreate } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';

describe('closing the Fd closes the map', () => {
  it('map.fd.close(): every op throws ClosedError, and the map that reuses the number is untouched', () => {
    const m = BpfMap.create({ type: 'hash', key: u32, value: u32, maxEntries: 8, name: 'old' });
    m.set(1, 1);
    const n = m.fd.value;
    m.fd.close();
    expect(m.closed).toBe(true);
    using next = BpfMap.create({ type: 'hash', key: u32, value: bytes(4096), maxEntries: 8, name: 'next' });
    expect(next.fd.value).toBe(n); // the kernel hands the number out again
    const ops: [string, () => unknown][] = [
      ['get', () => m.get(1)],
      ['has', () => m.has(1)],
      ['set', () => m.set(1, 2)],
      ['delete', () => m.delete(1)],
      ['getAndDelete', () => m.getAndDelete(1)],
      ['keys', () => [...m.keys()]],
      ['entries', () => [...m.entries()]],
      ['getBatch', () => m.getBatch()],
      ['setBatch', () => m.setBatch([[1, 2]])],
      ['deleteBatch', () => m.deleteBatch([1])],
      ['setBatchFrom', () => m.setBatchFrom(new Uint32Array([1]), new Uint32Array([2]))],
      ['readBatches', () => [...m.readBatches(new Uint32Array(4), new Uint32Array(4))]],
      ['info', () => m.info],
      ['freeze', () => m.freeze()],
    ];
    for (const [name, op] of ops) expect(op, name).toThrow(ClosedError);
    expect([...next.keys()]).toEqual([]);
    m.close(); // still idempotent
    expect(m.closed).toBe(true);
  });

  it('BpfMap.fromFd takes the Fd: closing it closes the map; a dup stays the caller’s', () => {
    const fd = mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 8, maxEntries: 2 });
    const m = BpfMap.fromFd(fd, { key: u32, value: u64 });
    expect(m.fd).toBe(fd);
    m.set(0, 5n);
    using mine = fd.dup();
    fd.close();
    expect(m.closed).toBe(true);
    expect(() => m.get(0)).toThrow(ClosedError);
    using again = BpfMap.fromFd(mine.dup(), { key: u32, value: u64 });
    expect(again.get(0)).toBe(5n);
  });

  it('the hostile sequence (close the fd, reuse its number with bigger values, write) exits cleanly (child process)', () => {
    const script = `
      import { BpfMap, bytes, u32 } from '@bpfkit/maps';
      const out = {};
      for (let round = 0; round < 20; round++) {
        const small = BpfMap.create({ type: 'array', key: u32, value: bytes(4), maxEntries: 1 });
        small.fd.close();
        const big = BpfMap.create({ type: 'array', key: u32, value: bytes(65536), maxEntries: 1 });
        for (const [name, op] of [['get', () => small.get(0)], ['set', () => small.set(0, new Uint8Array(4))]]) {
          try { op(); out[name] = 'no error'; } catch (e) { out[name] = e.name; }
        }
        out.bigUntouched = big.get(0).every((b) => b === 0);
        big.close();
      }
      console.log(JSON.stringify(out));
    `;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: new URL('..', import.meta.url),
      encoding: 'utf8',
      timeout: 280_000,
    });
    expect(run.signal).toBeNull();
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout.trim())).toEqual({
      get: 'ClosedError',
      set: 'ClosedError',
      bigUntouched: true,
    });
  });
});

describe('batch chunk sizes', () => {
  it('0, negative, fractional or NaN chunks throw RangeError before any syscall', () => {
    using m = BpfMap.create({ type: 'hash', key: u32, value: u32, maxEntries: 8 });
    m.set(9, 9);
    for (const chunk of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 32]) {
      expect(() => m.setBatch([[1, 1]], { chunk }), `setBatch ${chunk}`).toThrow(RangeError);
      expect(() => m.deleteBatch([9], { chunk }), `deleteBatch ${chunk}`).toThrow(RangeError);
      expect(() => m.getBatch({ chunk }), `getBatch ${chunk}`).toThrow(RangeError);
      expect(() => m.getBatch({ chunk, delete: true }), `getBatch delete ${chunk}`).toThrow(RangeError);
      expect(() => [...m.entries({ chunk })], `entries ${chunk}`).toThrow(RangeError);
    }
    // Nothing was written or deleted.
    expect([...m.keys()]).toEqual([9]);
    expect(m.setBatch([[1, 1]], { chunk: 1 })).toBe(1);
    expect(m.deleteBatch([1, 9], { chunk: 1 })).toBe(2);
  });
});
