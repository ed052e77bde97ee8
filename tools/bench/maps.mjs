// Node side of the map benchmarks: the same loops as c/maps.c, through @bpfkit/sys (raw,
// allocation-free ElemOps and batch commands) and through @bpfkit/maps (typed BpfMap with codecs).
// Usage: node maps.mjs <iterations> <entries> <chunk> <sys|maps>. Prints one JSON object: ns per
// operation (per entry for the iteration rows, which walk the map 5 times).
import { BpfMap, u32, u64 } from '@bpfkit/maps';
import { ElemOps, MapType, mapCreate, mapLookupBatch, NativeBuffer } from '@bpfkit/sys';

const n = Number(process.argv[2] ?? 200000);
const entries = Number(process.argv[3] ?? 100000);
const chunk = Number(process.argv[4] ?? 1024);
const layer = process.argv[5] ?? 'sys';
const PASSES = 5;
const now = () => Number(process.hrtime.bigint());
const out = {};

/** Time `fn(k)` (k operations) after a JIT warm-up; `prepare` runs untimed before each. */
function measure(name, fn, prepare = () => {}, count = n) {
  globalThis.gc?.(); // start each row from a clean heap: earlier rows' garbage must not be billed here
  prepare();
  fn(Math.min(count, 20000));
  prepare();
  const t0 = now();
  const done = fn(count) ?? count;
  out[name] = Number(((now() - t0) / done).toFixed(1));
}

/** Time `PASSES` full walks; `pass()` returns the entries it saw. */
function measureWalk(name, pass) {
  globalThis.gc?.();
  pass(); // warm-up
  const t0 = now();
  let seen = 0;
  for (let p = 0; p < PASSES; p++) seen += pass();
  if (seen !== PASSES * entries) throw new Error(`${name} saw ${seen} entries`);
  out[name] = Number(((now() - t0) / seen).toFixed(1));
}

function sysLayer() {
  for (const [label, type] of [
    ['hash', MapType.HASH],
    ['array', MapType.ARRAY],
  ]) {
    const fd = mapCreate({ mapType: type, keySize: 4, valueSize: 8, maxEntries: 1024 });
    const ops = new ElemOps(fd.value, 4, 8);
    ops.keyView.setUint32(0, 7, true);
    ops.valueView.setBigUint64(0, 1n, true);
    ops.update(0);
    measure(`${label} get`, (k) => {
      for (let i = 0; i < k; i++) if (!ops.lookup(0)) throw new Error('lookup');
    });
    measure(`${label} set`, (k) => {
      for (let i = 0; i < k; i++) {
        ops.valueView.setUint32(0, i, true);
        ops.update(0);
      }
    });
    if (type === MapType.HASH)
      measure('hash set+delete', (k) => {
        for (let i = 0; i < k; i++) {
          ops.update(0);
          if (!ops.delete()) throw new Error('delete');
        }
      });
    ops.free();
    fd.close();
  }
  const fd2 = mapCreate({ mapType: MapType.HASH, keySize: 4, valueSize: 8, maxEntries: n });
  const ops2 = new ElemOps(fd2.value, 4, 8);
  measure(
    'hash delete',
    (k) => {
      for (let i = 0; i < k; i++) {
        ops2.keyView.setUint32(0, i, true);
        if (!ops2.delete()) throw new Error('delete');
      }
    },
    () => {
      for (let i = 0; i < n; i++) {
        ops2.keyView.setUint32(0, i, true);
        ops2.update(0);
      }
    },
  );
  ops2.free();
  fd2.close();

  const fd = mapCreate({ mapType: MapType.HASH, keySize: 4, valueSize: 8, maxEntries: entries });
  const ops = new ElemOps(fd.value, 4, 8);
  for (let i = 0; i < entries; i++) {
    ops.keyView.setUint32(0, i, true);
    ops.valueView.setBigUint64(0, BigInt(i), true);
    ops.update(0);
  }
  let sum = 0;
  measureWalk('walk: next_key+lookup', () => {
    let seen = 0;
    for (let first = true; ops.next(first); first = false) {
      ops.key.set(ops.nextKey);
      if (!ops.lookup(0)) throw new Error('walk lookup');
      sum += ops.keyView.getUint32(0, true);
      seen++;
    }
    return seen;
  });
  const keys = new NativeBuffer(4 * chunk);
  const values = new NativeBuffer(8 * chunk);
  const tokens = new NativeBuffer(16);
  measureWalk('batch lookup', () => {
    let seen = 0;
    for (let first = true; ; first = false) {
      const { count, done } = mapLookupBatch({
        inBatch: first ? 0n : tokens.ptr,
        outBatch: tokens.at(8),
        keys: keys.ptr,
        values: values.ptr,
        count: chunk,
        mapFd: fd.value,
      });
      for (let i = 0; i < count; i++) sum += keys.view.getUint32(4 * i, true);
      seen += count;
      if (done) return seen;
      tokens.bytes.copyWithin(0, 8, 16);
    }
  });
  ops.free();
  fd.close();
  return sum;
}

function mapsLayer() {
  for (const type of ['hash', 'array']) {
    const m = BpfMap.create({ type, key: u32, value: u64, maxEntries: 1024 });
    m.set(7, 1n);
    measure(`${type} get`, (k) => {
      for (let i = 0; i < k; i++) if (m.get(7) === undefined) throw new Error('lookup');
    });
    measure(`${type} set`, (k) => {
      for (let i = 0; i < k; i++) m.set(7, BigInt(i & 0xffff));
    });
    if (type === 'hash')
      measure('hash set+delete', (k) => {
        for (let i = 0; i < k; i++) {
          m.set(7, 1n);
          m.delete(7);
        }
      });
    m.close();
  }
  const m2 = BpfMap.create({ type: 'hash', key: u32, value: u64, maxEntries: n });
  const all = Array.from({ length: n }, (_, i) => [i, 1n]);
  measure(
    'hash delete',
    (k) => {
      for (let i = 0; i < k; i++) if (!m2.delete(i)) throw new Error('delete');
    },
    () => m2.setBatch(all),
  );
  m2.close();

  const m = BpfMap.create({ type: 'hash', key: u32, value: u64, maxEntries: entries });
  m.setBatch(Array.from({ length: entries }, (_, i) => [i, BigInt(i)]));
  let keySum = 0;
  measureWalk('walk: next_key+lookup', () => {
    let seen = 0;
    for (const k of m.keys()) {
      if (m.get(k) === undefined) throw new Error('walk lookup');
      keySum += k;
      seen++;
    }
    return seen;
  });
  const keys = new Uint32Array(chunk);
  const values = new BigUint64Array(chunk);
  measureWalk('readBatches()', () => {
    let seen = 0;
    for (const count of m.readBatches(keys, values)) {
      for (let i = 0; i < count; i++) keySum += keys[i];
      seen += count;
    }
    return seen;
  });
  let pass = 0n;
  measureWalk('setBatchFrom()', () => {
    pass++;
    let written = 0;
    for (let start = 0; start < entries; start += chunk) {
      const c = Math.min(chunk, entries - start);
      for (let i = 0; i < c; i++) keys[i] = start + i;
      values.fill(pass);
      written += m.setBatchFrom(keys.subarray(0, c), values.subarray(0, c));
    }
    return written;
  });
  measureWalk('batch lookup', () => {
    const got = m.getBatch({ chunk });
    for (const [k, v] of got) {
      keySum += k;
      if (v === undefined) throw new Error('value');
    }
    return got.length;
  });
  measureWalk('entries()', () => {
    let seen = 0;
    for (const [k, v] of m.entries({ chunk })) {
      keySum += k;
      if (v === undefined) throw new Error('value');
      seen++;
    }
    return seen;
  });
  const tuples = Array.from({ length: entries }, (_, i) => [i, 0n]);
  measureWalk('batch update', () => {
    pass++;
    for (const t of tuples) t[1] = pass;
    return m.setBatch(tuples, { chunk });
  });
  m.close();
  return keySum;
}

(layer === 'sys' ? sysLayer : mapsLayer)();
console.log(JSON.stringify(out));
