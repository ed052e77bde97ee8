// libbpf's load-time conventions, checked against libbpf itself: each fixture is loaded by bpftool
// (`prog loadall ... pinmaps`, libbpf inside) into a private bpffs and by bpfkit, and the kernel's
// view of both is compared — per program loaded or not, its translated instructions and attach
// target; per map its type, sizes, max_entries, flags, map_extra and key/value BTF.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Btf, btfFromKernel, kernelModuleBtfs } from '@bpfkit/btf';
import { type Collection, kernelBtfFd, loadCollection } from '@bpfkit/loader';
import { possibleCpus } from '@bpfkit/maps';
import {
  BpfError,
  btfInfo,
  type Fd,
  mapFdById,
  mapIds,
  mapInfo,
  NativeBuffer,
  NotSupportedError,
  objGet,
  progFdById,
  progIds,
  progInfo,
} from '@bpfkit/sys';
import { afterAll, describe, expect, it } from 'vitest';
import { requireFeature } from '../../../tools/testing/features.js';
import { tempBpffs } from '../../../tools/testing/kernel.js';
import { kernelView } from './libbpf/compare.js';

afterAll(() => {
  expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(`bpfkit-fs-${process.pid}-`);
});

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;
const LD_IMM64 = 0x18;

/** xlated instructions, one a line, with map ids numbered by first use (ids differ per load). */
function xlated(fd: Fd): string {
  const insns = progInfo(fd, { insns: true }).xlatedInsns!;
  const view = new DataView(insns.buffer, insns.byteOffset, insns.byteLength);
  const order: number[] = [];
  for (let at = 0; at < insns.length; at += 8) {
    if (insns[at] !== LD_IMM64) continue;
    const src = insns[at + 1]! >> 4;
    if (src === 1 || src === 2) {
      // PSEUDO_MAP_FD, PSEUDO_MAP_VALUE: imm is the map's id in a dump
      const id = view.getUint32(at + 4, true);
      view.setUint32(at + 4, order.includes(id) ? order.indexOf(id) : order.push(id) - 1, true);
    }
    at += 8; // the second slot of the wide instruction
  }
  return Buffer.from(insns)
    .toString('hex')
    .replace(/(.{16})/g, '$1\n');
}

interface ProgView {
  type: string;
  insns: string;
  attachBtfId: number;
  attachBtfObjId: number;
}
const progView = (fd: Fd): ProgView => {
  const i = progInfo(fd);
  return {
    type: i.typeName,
    insns: xlated(fd),
    attachBtfId: i.attachBtfId,
    attachBtfObjId: i.attachBtfObjId,
  };
};

/** What libbpf and bpfkit must agree on for a map (BTF ids are the object's own, numbered alike). */
const mapView = (fd: Fd) => {
  const i = mapInfo(fd);
  return {
    type: i.typeName,
    keySize: i.keySize,
    valueSize: i.valueSize,
    maxEntries: i.maxEntries,
    flags: i.mapFlags, // global data is mmap-able on both sides
    mapExtra: i.mapExtra,
    hasBtf: i.btfId !== 0,
    btfKeyTypeId: i.btfKeyTypeId,
    btfValueTypeId: i.btfValueTypeId,
  };
};

function pinned<T>(dir: string, view: (fd: Fd) => T): Record<string, T> {
  const out: Record<string, T> = {};
  for (const name of readdirSync(dir)) {
    const path = NativeBuffer.from(join(dir, name));
    try {
      using fd = objGet({ pathname: path.ptr, fileFlags: 0 }, join(dir, name));
      out[name] = view(fd);
    } finally {
      path.free();
    }
  }
  return out;
}

type Loaded = { programs: Record<string, ProgView>; maps: Record<string, ReturnType<typeof mapView>> };

/** The object as libbpf loads it, or libbpf's complaint when it does not. */
function viaLibbpf(object: string): Loaded | { error: string } {
  using fs = tempBpffs();
  try {
    execFileSync('bpftool', ['prog', 'loadall', object, join(fs.path, 'p'), 'pinmaps', join(fs.path, 'm')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch (e) {
    return { error: String((e as { stderr?: Buffer }).stderr ?? e) };
  }
  return { programs: pinned(join(fs.path, 'p'), progView), maps: pinned(join(fs.path, 'm'), mapView) };
}

function views(c: Collection): Loaded {
  return {
    programs: Object.fromEntries(Object.entries(c.programs).map(([n, p]) => [n, progView(p.fd)])),
    maps: Object.fromEntries(Object.entries(c.maps).map(([n, m]) => [n, mapView(m.fd)])),
  };
}

/**
 * libbpf's maps under bpfkit's names: global data maps are pinned as `<object prefix>_rodata`
 * (libbpf's internal name, dots made underscores), bpfkit names them by their section.
 */
function underOurNames(l: Loaded, ours: Loaded): Loaded['maps'] {
  const out: Loaded['maps'] = {};
  for (const [name, view] of Object.entries(l.maps)) {
    const data = Object.keys(ours.maps).find(
      (n) => n.startsWith('.') && name.endsWith(n.replace(/\./g, '_')),
    );
    out[data ?? name] = view;
  }
  return out;
}

/**
 * Loads `object` both ways. Where libbpf loads it, bpfkit must load it alike; where libbpf does not
 * (here: tracing loads refused by the environment), bpfkit must fail too, with the kernel's own
 * error for a program (the errno libbpf reported), never a probe's or a NotSupportedError.
 */
function compare(object: string): { libbpf: Loaded; bpfkit: Loaded } | undefined {
  const libbpf = viaLibbpf(fixture(object));
  let c: Collection;
  try {
    c = loadCollection(fixture(object));
  } catch (e) {
    if (!('error' in libbpf)) throw e; // libbpf loaded it: so must we
    expect(e).toBeInstanceOf(BpfError);
    expect(e).not.toBeInstanceOf(NotSupportedError);
    const strerror = /: [A-Z0-9]+ \(([^)]+)\)/.exec((e as Error).message)?.[1];
    expect(libbpf.error).toContain(strerror);
    return undefined;
  }
  try {
    if ('error' in libbpf) throw new Error(`bpfkit loaded ${object}, which libbpf refused:\n${libbpf.error}`);
    const bpfkit = views(c);
    expect(bpfkit.programs).toEqual(libbpf.programs);
    expect(bpfkit.maps).toEqual(underOurNames(libbpf, bpfkit));
    return { libbpf, bpfkit };
  } finally {
    c.close();
  }
}

describe('maps as libbpf creates them', () => {
  it('map_rules.bpf.o: every map has libbpf’s shape, flags and key/value BTF (or none)', () => {
    const r = compare('map_rules.bpf.o');
    expect(r).toBeDefined(); // socket filters and these map types load on every kernel we test
    const maps = r!.bpfkit.maps;
    // a perf event array without max_entries: one slot per possible CPU
    expect(maps.per_cpu_events!.maxEntries).toBe(possibleCpus());
    expect(maps.sized_events!.maxEntries).toBe(3);
    // declared with __type, created without key/value BTF, as libbpf does
    for (const name of [
      'per_cpu_events',
      'stacks',
      'cgroups',
      'tables',
      'table_slots',
      'devices',
      'device_hash',
      'cpus',
      'sockets_xdp',
      'sock_slots',
      'sock_by_key',
      'fifo',
      'lifo',
    ])
      expect({ name, hasBtf: maps[name]!.hasBtf }).toEqual({ name, hasBtf: false });
    // the kernel refuses a spin lock in a per-CPU value: created again without BTF
    expect(maps.locked).toMatchObject({ type: 'percpu_array', hasBtf: false });
    // these keep theirs: the value-only BTF of a bloom filter, with its map_extra
    expect(maps.tallies).toMatchObject({ hasBtf: true, flags: 4 /* BPF_F_NUMA_NODE */ });
    expect(maps.seen).toMatchObject({ hasBtf: true, btfKeyTypeId: 0, mapExtra: 3n });
  });
});

describe('attach targets resolved at load, as libbpf names them', () => {
  it('attach_targets.bpf.o: tp_btf/ and iter/ load with the BTF id libbpf gives them', () => {
    const r = compare('attach_targets.bpf.o');
    expect(r).toBeDefined();
    const k = Btf.kernel();
    expect(r!.bpfkit.programs.count_switch!.attachBtfId).toBe(k.find('btf_trace_sched_switch', 'typedef').id);
    expect(r!.bpfkit.programs.list_tasks!.attachBtfId).toBe(k.find('bpf_iter_task', 'func').id);
  });

  it('attach_fentry.bpf.o: fentry/, fexit/ and lsm/ load as with libbpf (or fail as with libbpf)', () => {
    // Where tracing loads are allowed (the QEMU guests) both load it and the instructions and
    // targets are compared; here the environment refuses them (EPERM) to both.
    const r = compare('attach_fentry.bpf.o');
    if (!r) return;
    const k = Btf.kernel();
    expect(r.bpfkit.programs.before_unlink!.attachBtfId).toBe(k.find('do_unlinkat', 'func').id);
    expect(r.bpfkit.programs.on_file_open!.attachBtfId).toBe(k.find('bpf_lsm_file_open', 'func').id);
  });

  it('freplace/: the target program’s function, by its id in that program’s BTF', () => {
    using target = loadCollection(fixture('freplace_target.bpf.o'));
    const filter = target.program('filter');
    const verdict = btfFromKernel(filter.info.btfId).find('verdict', 'func').id;
    let c: Collection | undefined;
    try {
      c = loadCollection(fixture('freplace.bpf.o'), { attachTargets: { keep_all: { program: filter } } });
    } catch (e) {
      // refused by this environment, as every tracing load: the kernel's own EPERM, for this program
      expect(e).toBeInstanceOf(BpfError);
      expect((e as BpfError).code).toBe('EPERM');
      expect((e as Error).message).toContain("ext 'keep_all'");
      return;
    }
    try {
      const info = c.program('keep_all').info;
      expect(info.attachBtfId).toBe(verdict);
    } finally {
      c.close();
    }
  });
});

describe('kernel BTF objects for module targets', () => {
  it('kernelBtfFd finds vmlinux and every module with BTF by name, and nothing else', () => {
    // module targets load with their module's BTF object (attach_btf_obj_fd), found this way
    for (const name of ['vmlinux', ...kernelModuleBtfs().map((m) => m.name)]) {
      const fd = kernelBtfFd(name);
      expect(fd, name).toBeDefined();
      try {
        const info = btfInfo(fd!);
        expect({ name: info.name, kernel: info.kernelBtf }).toEqual({ name, kernel: 1 });
      } finally {
        fd!.close();
      }
    }
    expect(kernelBtfFd('no_such_module_bpfkit')).toBeUndefined();
  });
});

const availableCongestionControls = () =>
  readFileSync('/proc/sys/net/ipv4/tcp_available_congestion_control', 'utf8').trim().split(/\s+/);

/** What libbpf and bpfkit must agree on for a struct_ops map and its programs. */
function kernelSide(map: Fd, programs: Record<string, Fd>) {
  const m = mapInfo(map);
  return {
    map: {
      type: m.typeName,
      keySize: m.keySize,
      valueSize: m.valueSize,
      maxEntries: m.maxEntries,
      flags: m.mapFlags,
      btfVmlinuxValueTypeId: m.btfVmlinuxValueTypeId,
      hasBtf: m.btfId !== 0,
      btfValueTypeId: m.btfValueTypeId,
    },
    programs: Object.fromEntries(
      Object.entries(programs).map(([name, fd]) => {
        // xlated instructions with map ids numbered by first use, and the maps' shapes
        return [name, { ...kernelView(fd), attachBtfId: progInfo(fd).attachBtfId }];
      }),
    ),
  };
}

/** The kernel objects named `name` (maps or programs) that exist now, as fds. */
function byName(kind: 'map' | 'prog', names: string[]): Record<string, Fd> {
  const out: Record<string, Fd> = {};
  for (const id of kind === 'map' ? mapIds() : progIds()) {
    const fd = kind === 'map' ? mapFdById(id) : progFdById(id);
    const name = kind === 'map' ? mapInfo(fd).name : progInfo(fd).name;
    if (names.includes(name) && !out[name]) out[name] = fd;
    else fd.close();
  }
  return out;
}

describe('struct_ops maps and programs as libbpf makes them (.struct_ops)', () => {
  const PROGRAMS = ['cc_init', 'cc_ssthresh', 'cc_cong_avoid', 'cc_undo_cwnd'];

  it('struct_ops.bpf.o: maps and programs reach the kernel as libbpf (bpftool struct_ops register) sends them', (ctx) => {
    requireFeature(ctx, 'struct_ops programs', {
      probe: () => loadCollection(fixture('struct_ops.bpf.o')).close(),
    });
    let theirs: ReturnType<typeof kernelSide>;
    execFileSync('bpftool', ['struct_ops', 'register', fixture('struct_ops.bpf.o')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      const maps = byName('map', ['bpfkit_cc']);
      const progs = byName('prog', PROGRAMS);
      try {
        theirs = kernelSide(maps.bpfkit_cc!, progs);
      } finally {
        for (const fd of [...Object.values(maps), ...Object.values(progs)]) fd.close();
      }
    } finally {
      execFileSync('bpftool', ['struct_ops', 'unregister', 'name', 'bpfkit_cc'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    }
    expect(availableCongestionControls()).not.toContain('bpfkit_cc');
    using c = loadCollection(fixture('struct_ops.bpf.o'));
    const ours = kernelSide(
      c.map('bpfkit_cc').fd,
      Object.fromEntries(PROGRAMS.map((n) => [n, c.program(n).fd])),
    );
    expect(ours).toEqual(theirs);
    expect(ours.map).toMatchObject({
      type: 'struct_ops',
      keySize: 4,
      maxEntries: 1,
      flags: 0,
      hasBtf: true,
      btfValueTypeId: 0,
    });
  });
});
