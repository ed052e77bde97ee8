// Node side of the map benchmarks: the same loops as c/maps.c, through @bpfkit/sys (raw,
// allocation-free ElemOps) and through @bpfkit/maps (typed BpfMap with codecs).
// Usage: node maps.mjs <iterations> <sys|maps>. Prints one JSON object: ns per operation.
import { BpfMap, u32, u64 } from '@bpfkit/maps';
import { ElemOps, MapType, mapCreate } from '@bpfkit/sys';

const n = Number(process.argv[2] ?? 200000);
const layer = process.argv[3] ?? 'sys';
const now = () => Number(process.hrtime.bigint());
const out = {};

function measure(name, fn, prepare = () => {}) {
  prepare();
  fn(Math.min(n, 20000)); // warm up the JIT
  prepare();
  const t0 = now();
  fn(n);
  out[name] = Number(((now() - t0) / n).toFixed(1));
}

if (layer === 'sys') {
  const fd = mapCreate({ mapType: MapType.HASH, keySize: 4, valueSize: 8, maxEntries: 1024 });
  const ops = new ElemOps(fd.value, 4, 8);
  ops.keyView.setUint32(0, 7, true);
  ops.valueView.setBigUint64(0, 1n, true);
  ops.update(0);
  measure('lookup', (k) => {
    for (let i = 0; i < k; i++) if (!ops.lookup(0)) throw new Error('lookup');
  });
  measure('update', (k) => {
    for (let i = 0; i < k; i++) {
      ops.valueView.setUint32(0, i, true);
      ops.update(0);
    }
  });
  measure('update+delete', (k) => {
    for (let i = 0; i < k; i++) {
      ops.update(0);
      if (!ops.delete()) throw new Error('delete');
    }
  });
  ops.free();
  fd.close();
  const fd2 = mapCreate({ mapType: MapType.HASH, keySize: 4, valueSize: 8, maxEntries: n });
  const ops2 = new ElemOps(fd2.value, 4, 8);
  const fill = () => {
    for (let i = 0; i < n; i++) {
      ops2.keyView.setUint32(0, i, true);
      ops2.update(0);
    }
  };
  measure(
    'delete',
    (k) => {
      for (let i = 0; i < k; i++) {
        ops2.keyView.setUint32(0, i, true);
        if (!ops2.delete()) throw new Error('delete');
      }
    },
    fill,
  );
  ops2.free();
  fd2.close();
} else {
  const m = BpfMap.create({ type: 'hash', key: u32, value: u64, maxEntries: 1024 });
  m.set(7, 1n);
  measure('lookup', (k) => {
    for (let i = 0; i < k; i++) if (m.get(7) === undefined) throw new Error('lookup');
  });
  measure('update', (k) => {
    for (let i = 0; i < k; i++) m.set(7, BigInt(i & 0xffff));
  });
  measure('update+delete', (k) => {
    for (let i = 0; i < k; i++) {
      m.set(7, 1n);
      m.delete(7);
    }
  });
  m.close();
  const m2 = BpfMap.create({ type: 'hash', key: u32, value: u64, maxEntries: n });
  const all = Array.from({ length: n }, (_, i) => [i, 1n]);
  measure(
    'delete',
    (k) => {
      for (let i = 0; i < k; i++) if (!m2.delete(i)) throw new Error('delete');
    },
    () => m2.setBatch(all),
  );
  m2.close();
}
console.log(JSON.stringify(out));
