// Helpers of the comparison tests: the kernel's view of a loaded program (its xlated instructions
// with map ids numbered by first use, and the shapes of its maps), through libbpf (bpftool, or the
// small loader in load.c built against the system's libbpf) and through bpfkit.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CollectionOptions, loadCollection } from '@bpfkit/loader';
import { type Fd, MapFlags, mapFdById, mapInfo, NativeBuffer, objGet, progInfo } from '@bpfkit/sys';
import { expect } from 'vitest';
import { tempBpffs } from '../../../../tools/testing/kernel.js';

const LD_IMM64 = 0x18;
const PSEUDO_MAP_FD = 1; // in a dump: imm is the map's id
const PSEUDO_MAP_VALUE = 2; // the same, with the value offset in the second slot
const BPF_F_RDONLY_PROG = MapFlags.RDONLY_PROG;

export interface KernelView {
  type: string;
  name: string;
  gplCompatible: number;
  /** xlated instructions, map ids replaced by their index in `maps` */
  insns: string;
  maps: MapShape[];
  /** maps the program holds that no remaining instruction names */
  unreferenced: MapShape[];
  /** the load-time attach target: its BTF id, and the id of the BTF object it is in */
  attachBtfId: number;
  attachBtfObjId: number;
}
export type MapShape = {
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
};

/** A loaded program as the kernel reports it, with the map ids (which differ per load) numbered. */
export function kernelView(fd: Fd): KernelView {
  const info = progInfo(fd, { insns: true });
  const insns = info.xlatedInsns!;
  const view = new DataView(insns.buffer, insns.byteOffset, insns.byteLength);
  const order: number[] = [];
  for (let at = 0; at < insns.length; at += 8) {
    if (insns[at] !== LD_IMM64) continue;
    const src = insns[at + 1]! >> 4;
    if (src === PSEUDO_MAP_FD || src === PSEUDO_MAP_VALUE) {
      const id = view.getUint32(at + 4, true);
      const index = order.includes(id) ? order.indexOf(id) : order.push(id) - 1;
      view.setUint32(at + 4, index, true);
    }
    at += 8; // the second slot of the wide instruction
  }
  const shape = (id: number) => {
    using m = mapFdById(id);
    const { typeName, keySize, valueSize, maxEntries, mapFlags } = mapInfo(m);
    // global data (.rodata, .data, .bss) is mmap-able on both sides
    return { type: typeName, keySize, valueSize, maxEntries, flags: mapFlags };
  };
  // The verifier may drop every instruction that used a map (dead code under a frozen .rodata
  // value) and still hold the map: those are compared as a set.
  const unreferenced = info.mapIds
    .filter((id) => !order.includes(id))
    .map(shape)
    .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  const hex = Buffer.from(insns.buffer, insns.byteOffset, insns.byteLength).toString('hex');
  return {
    type: info.typeName,
    name: info.name,
    gplCompatible: info.gplCompatible,
    insns: hex.replace(/(.{16})/g, '$1\n'), // one instruction a line, so a diff points at it
    maps: order.map(shape),
    unreferenced,
    attachBtfId: info.attachBtfId,
    attachBtfObjId: info.attachBtfObjId,
  };
}

/**
 * libbpf binds .rodata to every program it loads (BPF_PROG_BIND_MAP, so that bpftool finds the
 * bpf_metadata_ variables there), even to programs that never read it; bpfkit does not.
 */
export function withoutBoundRodata(held: MapShape[], ours: MapShape[]): MapShape[] {
  const isRodata = (m: MapShape) => m.type === 'array' && (m.flags & BPF_F_RDONLY_PROG) !== 0;
  const at = held.findIndex(isRodata);
  if (at < 0 || ours.some(isRodata)) return held;
  return held.filter((_, i) => i !== at);
}

/** The kernel's view of every program pinned in `dir`, by pin name. */
function pinnedViews(dir: string): Record<string, KernelView> {
  const out: Record<string, KernelView> = {};
  for (const name of readdirSync(dir)) {
    const path = NativeBuffer.from(join(dir, name));
    try {
      using fd = objGet({ pathname: path.ptr, fileFlags: 0 }, join(dir, name));
      out[name] = kernelView(fd);
    } finally {
      path.free();
    }
  }
  return out;
}

/** Loads `object` with bpftool (libbpf) into a private bpffs; the kernel's view of each program. */
export function viaBpftool(object: string): Record<string, KernelView> {
  using fs = tempBpffs();
  const dir = join(fs.path, 'progs');
  execFileSync('bpftool', ['prog', 'loadall', object, dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  return pinnedViews(dir); // unmounting the bpffs drops the pins, and with them the programs and maps
}

/** load.c, built once per process against the system's libbpf; removed with `dispose`. */
export function libbpfLoader(): { run(object: string, args?: string[]): LibbpfResult } & Disposable {
  const dir = mkdtempSync(join(tmpdir(), 'bpfkit-libbpf-'));
  const bin = join(dir, 'load');
  try {
    execFileSync('cc', ['-O1', '-o', bin, new URL('./load.c', import.meta.url).pathname, '-lbpf'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch (e) {
    rmSync(dir, { recursive: true });
    throw e;
  }
  return {
    run(object, args = []) {
      using fs = tempBpffs();
      const pins = join(fs.path, 'progs');
      const r = spawnSync(bin, [object, pins, ...args], { encoding: 'utf8' });
      if (r.status === 1) return { loaded: false, log: r.stderr };
      if (r.status !== 0) throw new Error(`libbpf loader: exit ${r.status} ${r.signal ?? ''}\n${r.stderr}`);
      return { loaded: true, programs: pinnedViews(pins) };
    },
    [Symbol.dispose]: () => rmSync(dir, { recursive: true }),
  };
}
export type LibbpfResult =
  | { loaded: true; programs: Record<string, KernelView> }
  | { loaded: false; log: string };

export function viaBpfkit(object: string, opts: CollectionOptions = {}): Record<string, KernelView> {
  using c = loadCollection(object, opts);
  return Object.fromEntries(Object.entries(c.programs).map(([name, p]) => [name, kernelView(p.fd)]));
}

/** Every program libbpf loaded, bpfkit loaded too, with the same instructions and maps; and no other. */
export function expectSamePrograms(
  bpfkit: Record<string, KernelView>,
  libbpf: Record<string, KernelView>,
): void {
  expect(Object.keys(bpfkit).sort()).toEqual(Object.keys(libbpf).sort());
  for (const [name, view] of Object.entries(libbpf)) {
    expect(view.insns.length).toBeGreaterThan(0);
    const { unreferenced: held, ...theirs } = view;
    const { unreferenced: ours, ...mine } = bpfkit[name]!;
    expect({ program: name, ...mine }).toEqual({ program: name, ...theirs });
    expect(ours).toEqual(withoutBoundRodata(held, ours));
  }
}
