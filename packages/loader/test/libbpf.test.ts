// The same object loaded by bpfkit and by libbpf (bpftool prog loadall, libbpf inside) reaches the
// kernel as the same programs: for each program, the instructions the verifier kept (xlated, as
// the kernel dumps them) are byte for byte equal once the map ids in them are numbered by first
// use, and the maps they use have the same shapes.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCollection } from '@bpfkit/loader';
import { type Fd, mapFdById, mapInfo, NativeBuffer, objGet, progInfo } from '@bpfkit/sys';
import { afterAll, describe, expect, it } from 'vitest';
import { tempBpffs } from '../../../tools/testing/kernel.js';

afterAll(() => {
  // every bpffs this file mounted is gone again
  expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(`bpfkit-fs-${process.pid}-`);
});

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;
const LD_IMM64 = 0x18;
const PSEUDO_MAP_FD = 1; // in a dump: imm is the map's id
const PSEUDO_MAP_VALUE = 2; // the same, with the value offset in the second slot
const BPF_F_MMAPABLE = 1 << 10;
const BPF_F_RDONLY_PROG = 1 << 7;

interface KernelView {
  type: string;
  name: string;
  gplCompatible: number;
  /** xlated instructions, map ids replaced by their index in `maps` */
  insns: string;
  maps: MapShape[];
  /** maps the program holds that no remaining instruction names */
  unreferenced: MapShape[];
}
type MapShape = { type: string; keySize: number; valueSize: number; maxEntries: number; flags: number };

/** A loaded program as the kernel reports it, with the map ids (which differ per load) numbered. */
function kernelView(fd: Fd): KernelView {
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
    // libbpf also makes global data (.rodata, .data, .bss) mmap-able; bpfkit does not (yet)
    return { type: typeName, keySize, valueSize, maxEntries, flags: mapFlags & ~BPF_F_MMAPABLE };
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
  };
}

/**
 * libbpf binds .rodata to every program it loads (BPF_PROG_BIND_MAP, so that bpftool finds the
 * bpf_metadata_ variables there), even to programs that never read it; bpfkit does not.
 */
function withoutBoundRodata(held: MapShape[], ours: MapShape[]): MapShape[] {
  const isRodata = (m: MapShape) => m.type === 'array' && (m.flags & BPF_F_RDONLY_PROG) !== 0;
  const at = held.findIndex(isRodata);
  if (at < 0 || ours.some(isRodata)) return held;
  return held.filter((_, i) => i !== at);
}

/** Loads `object` with bpftool (libbpf) into a private bpffs; the kernel's view of each program. */
function viaLibbpf(object: string): Record<string, KernelView> {
  using fs = tempBpffs();
  const dir = join(fs.path, 'progs');
  execFileSync('bpftool', ['prog', 'loadall', object, dir], { stdio: ['ignore', 'ignore', 'pipe'] });
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
  return out; // unmounting the bpffs drops the pins, and with them the programs and maps
}

function viaBpfkit(object: string): Record<string, KernelView> {
  using c = loadCollection(object);
  return Object.fromEntries(Object.entries(c.programs).map(([name, p]) => [name, kernelView(p.fd)]));
}

describe('bpfkit and libbpf load the same instructions', () => {
  for (const object of [
    'core_big.bpf.o',
    'core.bpf.o',
    '../../../cli/bpf/execsnoop.bpf.o',
    'externs.bpf.o',
  ]) {
    it(`${object}: every program's xlated instructions and maps match libbpf's`, () => {
      const libbpf = viaLibbpf(fixture(object));
      const bpfkit = viaBpfkit(fixture(object));
      expect(Object.keys(bpfkit).sort()).toEqual(Object.keys(libbpf).sort());
      for (const [name, view] of Object.entries(libbpf)) {
        expect(view.insns.length).toBeGreaterThan(0);
        const { unreferenced: held, ...theirs } = view;
        const { unreferenced: ours, ...mine } = bpfkit[name]!;
        expect({ program: name, ...mine }).toEqual({ program: name, ...theirs });
        expect(ours).toEqual(withoutBoundRodata(held, ours));
      }
    });
  }

  it('core_big.bpf.o has the programs the benchmark counts on', () => {
    const progs = viaBpfkit(fixture('core_big.bpf.o'));
    expect(Object.fromEntries(Object.entries(progs).map(([n, v]) => [n, v.type]))).toEqual({
      on_exec: 'tracepoint',
      on_openat: 'tracepoint',
      count_syscalls: 'raw_tracepoint',
      sock_state: 'raw_tracepoint',
      on_switch: 'raw_tracepoint',
      keep_udp: 'socket_filter',
    });
    expect(
      progs
        .on_exec!.maps.concat(progs.on_exec!.unreferenced)
        .map((m) => m.type)
        .sort(),
    ).toEqual(['array', 'array', 'percpu_array', 'ringbuf']);
  });
});
