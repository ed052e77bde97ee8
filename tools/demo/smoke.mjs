#!/usr/bin/env node
// The quick-start smoke run: create a map in the running kernel, write, read back and print.
// (The live demo replaces this once the CLI lands.)
import { release } from 'node:os';
import { BpfMap, cstring, struct, u32, u64 } from '@bpfkit/maps';
import { haveMapType, progIds } from '@bpfkit/sys';

const Proc = struct({ pid: u32, starts: u64, comm: cstring(16) });
const m = BpfMap.create({ type: 'hash', key: u32, value: Proc, maxEntries: 64, name: 'bpfkit_smoke' });
try {
  m.set(1, { pid: process.pid, starts: 1n, comm: 'node' });
  m.set(2, { pid: process.ppid, starts: 2n, comm: 'parent' });
  const { id, typeName, maxEntries } = m.info;
  console.log(`bpfkit smoke run on Linux ${release()}`);
  console.log(
    `created ${typeName} map id ${id} (max ${maxEntries} entries); ring buffers supported: ${haveMapType('ringbuf')}`,
  );
  console.table(
    [...m.entries()].map(([key, v]) => ({ key, pid: v.pid, starts: String(v.starts), comm: v.comm })),
  );
  console.log(`programs loaded on this kernel right now: ${[...progIds()].length}`);
} finally {
  m.close();
}
