// libbpf's load-time conventions, checked against libbpf itself: each fixture is loaded by bpftool
// (`prog loadall ... pinmaps`, libbpf inside) into a private bpffs and by bpfkit, and the kernel's
// view of both is compared — per program loaded or not, its translated instructions and attach
// target; per map its type, sizes, max_entries, flags, map_extra and key/value BTF.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Btf, BtfLoadError, type BtfMember, btfFromKernel, kernelModuleBtfs } from '@bpfkit/btf';
import { type Collection, type CollectionOptions, kernelBtfFd, loadCollection } from '@bpfkit/loader';
import { possibleCpus, u32, u64 } from '@bpfkit/maps';
import {
  btfInfo,
  type Fd,
  mapFdById,
  mapIds,
  mapInfo,
  NativeBuffer,
  objGet,
  objPin,
  progFdById,
  progIds,
  progInfo,
} from '@bpfkit/sys';
import { afterAll, describe, expect, it, type TestContext } from 'vitest';
import { lackOf, requireFeature } from '../../../tools/testing/features.js';
import { tempBpffs } from '../../../tools/testing/kernel.js';
import { expectSamePrograms, kernelView, libbpfLoader } from './libbpf/compare.js';

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
 * Loads `object` both ways: libbpf must load it, and bpfkit must load it alike (every program's
 * instructions but those in `differ`, each with the reason the test gives).
 */
function compare(object: string, differ: string[] = []): { libbpf: Loaded; bpfkit: Loaded } {
  const libbpf = viaLibbpf(fixture(object));
  if ('error' in libbpf) throw new Error(`libbpf refused ${object}:\n${libbpf.error}`);
  using c = loadCollection(fixture(object));
  const bpfkit = views(c);
  const same = (l: Loaded) =>
    Object.fromEntries(
      Object.entries(l.programs).map(([n, v]) => [n, differ.includes(n) ? { ...v, insns: '(differs)' } : v]),
    );
  expect(same(bpfkit)).toEqual(same(libbpf));
  expect(bpfkit.maps).toEqual(underOurNames(libbpf, bpfkit));
  return { libbpf, bpfkit };
}

/**
 * Tracing and extension loads: this host's environment refuses them with EPERM (to libbpf as to
 * bpfkit), so there the test is unsupported; the QEMU guests allow them, and compare.
 */
function needsTracingLoads(ctx: TestContext, what: string, load: () => Collection): void {
  requireFeature(ctx, `${what} loads (this environment refuses tracing and ext program loads)`, {
    probe: () => load().close(),
  });
}

describe('maps as libbpf creates them', () => {
  it('map_rules.bpf.o: every map has libbpf’s shape, flags and key/value BTF (or none)', () => {
    const maps = compare('map_rules.bpf.o').bpfkit.maps;
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
    const k = Btf.kernel();
    expect(r.bpfkit.programs.count_switch!.attachBtfId).toBe(k.find('btf_trace_sched_switch', 'typedef').id);
    expect(r.bpfkit.programs.list_tasks!.attachBtfId).toBe(k.find('bpf_iter_task', 'func').id);
  });

  it('attach_fentry.bpf.o: fentry/, fexit/ and lsm/ load as with libbpf, on the same targets', (ctx) => {
    needsTracingLoads(ctx, 'fentry, fexit and lsm', () => loadCollection(fixture('attach_fentry.bpf.o')));
    const r = compare('attach_fentry.bpf.o');
    const k = Btf.kernel();
    expect(Object.keys(r.bpfkit.programs).sort()).toEqual(['after_unlink', 'before_unlink', 'on_file_open']);
    expect(r.bpfkit.programs.before_unlink!.attachBtfId).toBe(k.find('do_unlinkat', 'func').id);
    expect(r.bpfkit.programs.after_unlink!.attachBtfId).toBe(k.find('do_unlinkat', 'func').id);
    expect(r.bpfkit.programs.on_file_open!.attachBtfId).toBe(k.find('bpf_lsm_file_open', 'func').id);
  });

  it('freplace/: the target program’s function, by its id in that program’s BTF, as with libbpf', (ctx) => {
    using target = loadCollection(fixture('freplace_target.bpf.o'));
    const filter = target.program('filter');
    const load = () =>
      loadCollection(fixture('freplace.bpf.o'), { attachTargets: { keep_all: { program: filter } } });
    needsTracingLoads(ctx, 'freplace', load);
    const verdict = btfFromKernel(filter.info.btfId).find('verdict', 'func').id;
    using c = load();
    const ours = kernelView(c.program('keep_all').fd);
    expect(ours).toMatchObject({ type: 'ext', attachBtfId: verdict });
    // libbpf, given the same target (pinned for it; bpf_program__set_attach_target)
    using fs = tempBpffs();
    const pinPath = join(fs.path, 'target');
    {
      using p = NativeBuffer.from(pinPath);
      objPin({ pathname: p.ptr, bpfFd: filter.fd.value }, pinPath);
    }
    using libbpf = libbpfLoader();
    const r = libbpf.run(fixture('freplace.bpf.o'), [`keep_all@${pinPath}:verdict`]);
    if (!r.loaded) throw new Error(`libbpf refused freplace.bpf.o:\n${r.log}`);
    expectSamePrograms({ keep_all: ours }, r.programs);
  });
});

describe('kprobes as libbpf loads them', () => {
  it('probes.bpf.o: kprobe/, kretprobe/ and ksyscall/ (BPF_KPROBE, CO-RE, BPF_KSYSCALL) load alike', () => {
    // Loading needs no attach, so this compares on the host as in the guests. libbpf 1.1 probes
    // LINUX_HAS_SYSCALL_WRAPPER by creating a kprobe on __<arch>_sys_bpf; on a kernel without
    // kprobes that fails and libbpf reads the syscall's arguments as if unwrapped (wrong there, but
    // nothing can attach). bpfkit finds the wrapper in /proc/kallsyms, so there enter_kill (the
    // only program reading syscall arguments) differs; wherever kprobes exist it is compared too.
    const kprobes = lackOf({ config: ['CONFIG_KPROBES', 'CONFIG_KPROBE_EVENTS'] }) === undefined;
    const r = compare('probes.bpf.o', kprobes ? [] : ['enter_kill']);
    expect(r.bpfkit.programs).toMatchObject({
      enter_unlinkat: { type: 'kprobe' },
      exit_unlinkat: { type: 'kprobe' },
      enter_kill: { type: 'kprobe' },
    });
    // LINUX_HAS_SYSCALL_WRAPPER, probed by both: the same .kconfig map
    expect(r.bpfkit.maps['.kconfig']).toBeDefined();
  });
});

/** The bytes of ELF section `name` in `elf` (a 64-bit little-endian object), as a view into it. */
function elfSection(elf: Buffer, name: string): Buffer {
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const [size, count, names] = [elf.readUInt16LE(0x3a), elf.readUInt16LE(0x3c), elf.readUInt16LE(0x3e)];
  const header = (i: number) => {
    const at = shoff + i * size;
    return {
      name: elf.readUInt32LE(at),
      offset: Number(elf.readBigUInt64LE(at + 0x18)),
      size: Number(elf.readBigUInt64LE(at + 0x20)),
    };
  };
  const strtab = header(names);
  for (let i = 0; i < count; i++) {
    const h = header(i);
    const end = elf.indexOf(0, strtab.offset + h.name);
    if (elf.toString('latin1', strtab.offset + h.name, end) === name)
      return elf.subarray(h.offset, h.offset + h.size);
  }
  throw new Error(`no section ${name}`);
}

describe('BTF the kernel refuses', () => {
  /**
   * A copy of fixture `name` whose only parameter named `param` is renamed with a `-` in its BTF:
   * not a C identifier, so BPF_BTF_LOAD refuses the whole BTF ("Invalid arg#1"), while a parser
   * (ours, libbpf's) reads it as it is. Runs `body` on the copy with the BPFKIT_BTF_REFUSED
   * warnings it gives; the copy is removed after.
   */
  async function withRefusedBtf(
    name: string,
    param: string,
    copy: string,
    body: (object: string, warnings: string[]) => Promise<void> | void,
  ): Promise<void> {
    const elf = readFileSync(fixture(name));
    const btf = elfSection(elf, '.BTF');
    const at = btf.indexOf(`\0${param}\0`, 0, 'latin1');
    expect(at).toBeGreaterThan(0);
    expect(btf.indexOf(`\0${param}\0`, at + 1, 'latin1')).toBe(-1);
    btf.write('-', at + 2, 'latin1');
    const dir = mkdtempSync(join(tmpdir(), 'bpfkit-badbtf-'));
    const object = join(dir, copy);
    writeFileSync(object, elf);
    const warnings: string[] = [];
    const listen = (w: Error & { code?: string }) => {
      if (w.code === 'BPFKIT_BTF_REFUSED') warnings.push(w.message);
    };
    process.on('warning', listen);
    try {
      await body(object, warnings);
    } finally {
      process.off('warning', listen);
      rmSync(dir, { recursive: true });
    }
  }

  it('the object loads without it, as with libbpf: same programs, no func/line info, maps without BTF, said once', async () => {
    // globals.bpf.o with its program's parameter `skb` renamed `s-b` (the FUNC_PROTO's); neither needs the name
    await withRefusedBtf('globals.bpf.o', 'skb', 'bad_btf.bpf.o', async (object, warnings) => {
      const libbpf = viaLibbpf(object);
      if ('error' in libbpf) throw new Error(`libbpf refused the object:\n${libbpf.error}`);
      for (let i = 0; i < 2; i++) {
        using c = loadCollection(object);
        expect(c.btf).toBeUndefined();
        const ours = views(c);
        expect(ours.programs).toEqual(libbpf.programs);
        expect(ours.maps).toEqual(underOurNames(libbpf, ours));
        expect(Object.keys(ours.programs).length).toBeGreaterThan(0);
        for (const [name, p] of Object.entries(c.programs))
          expect({ name, btfId: p.info.btfId }).toEqual({ name, btfId: 0 });
        for (const [name, m] of Object.entries(ours.maps))
          expect({ name, hasBtf: m.hasBtf }).toEqual({ name, hasBtf: false });
        // and it works: the program reads its global data
        expect(c.program('globals').testRun({ data: new Uint8Array(64) }).retval).toBe('h'.charCodeAt(0));
      }
      await new Promise((r) => setImmediate(r));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/refused the BTF of bad_btf.*EINVAL/);
    });
  });

  it('a struct_ops object fails with the kernel’s refusal, naming its struct_ops map, as libbpf (“BTF is mandatory”)', async () => {
    // struct_ops.bpf.o with its programs' parameter `ctx` renamed `c-x` in its BTF: refused as above
    await withRefusedBtf('struct_ops.bpf.o', 'ctx', 'bad_ops.bpf.o', async (object, warnings) => {
      using libbpf = libbpfLoader();
      const r = libbpf.run(object);
      expect(r.loaded).toBe(false);
      expect(r.loaded === false && r.log).toMatch(/BTF is mandatory, can't proceed/);
      let e: unknown;
      try {
        loadCollection(object).close();
      } catch (err) {
        e = err;
      }
      expect(e).toBeInstanceOf(BtfLoadError);
      expect(e).toMatchObject({
        code: 'EINVAL',
        cmd: 'BPF_BTF_LOAD',
        message: expect.stringMatching(
          /^struct_ops map 'bpfkit_cc' needs the object's BTF, which the kernel refused/,
        ),
      });
      expect((e as BtfLoadError).log).toMatch(/Invalid arg/);
      await new Promise((r) => setImmediate(r));
      expect(warnings).toEqual([]); // it does not load without it, so no "loads without it" warning
    });
  });
});

describe('maps not created (mapOptions autocreate: false), as libbpf’s bpf_map__set_autocreate', () => {
  const object = fixture('autocreate.bpf.o');
  const notOptional = { mapOptions: { optional: { autocreate: false } } };

  it('autocreate.bpf.o: programs whose use of the map is dead code load with libbpf’s instructions; the map is not made', () => {
    using libbpf = libbpfLoader();
    const r = libbpf.run(object, ['!optional', '-uses_optional']);
    if (!r.loaded) throw new Error(`libbpf refused autocreate.bpf.o without 'optional':\n${r.log}`);
    using c = loadCollection(object, { ...notOptional, programs: ['plain', 'guarded'] });
    expectSamePrograms(
      Object.fromEntries(Object.entries(c.programs).map(([n, p]) => [n, kernelView(p.fd)])),
      r.programs,
    );
    expect(Object.keys(c.maps).sort()).toEqual(['.rodata', 'counts']);
    expect(() => c.map('optional')).toThrow(
      /map 'optional' was not created \(mapOptions autocreate: false\)/,
    );
    // and they run: guarded's switch is off, so it never needed the map
    expect(c.program('guarded').testRun({ data: new Uint8Array(64) }).retval).toBe(2);
    expect(c.program('plain').testRun({ data: new Uint8Array(64) }).retval).toBe(1);
    expect(c.map('counts', { key: u32, value: u64 }).get(1)).toBe(1n);
  });

  it('a program that reaches the map fails as with libbpf, its error naming program, section and map', () => {
    using libbpf = libbpfLoader();
    const r = libbpf.run(object, ['!optional']);
    expect(r.loaded).toBe(false);
    expect(r.loaded === false && r.log).toMatch(/BPF map 'optional' is referenced but wasn't created/);
    const failure = (opts: CollectionOptions) => {
      try {
        loadCollection(object, opts).close();
      } catch (e) {
        return e;
      }
      throw new Error('it loaded');
    };
    expect(failure(notOptional)).toMatchObject({
      program: 'uses_optional',
      section: 'socket',
      notCreatedMaps: ['optional'],
      message: expect.stringMatching(
        /^program 'uses_optional' \(section 'socket'\)[\s\S]*not created \(mapOptions autocreate: false\): 'optional'/,
      ),
    });
    // guarded too, once its switch turns the use on
    expect(failure({ ...notOptional, programs: ['guarded'], constants: { use_optional: 1 } })).toMatchObject({
      program: 'guarded',
      notCreatedMaps: ['optional'],
    });
    // with the map, the same object loads whole
    using c = loadCollection(object, { constants: { use_optional: 1 } });
    expect(c.program('uses_optional').testRun({ data: new Uint8Array(64) }).retval).toBe(3);
    expect(c.map('optional', { key: u32, value: u64 }).get(0)).toBe(1n);
  });

  it('bad input is a typed error before any syscall', () => {
    expect(() =>
      loadCollection(object, { mapOptions: { optional: { autocreate: 'no' as unknown as boolean } } }),
    ).toThrow(/mapOptions.optional.autocreate: expected a boolean, got no/);
    expect(() => loadCollection(object, { mapOptions: { nope: { autocreate: false } } })).toThrow(
      /mapOptions: the object has no map 'nope'/,
    );
  });

  it('struct_ops.bpf.o without its struct_ops map: nothing to register, and its programs are not loaded (libbpf 1.4+)', () => {
    // loads on any kernel: only `calls` is made, no struct_ops program is loaded
    const opts = { mapOptions: { bpfkit_cc: { autocreate: false } } };
    using c = loadCollection(fixture('struct_ops.bpf.o'), opts);
    expect(Object.keys(c.maps)).toEqual(['calls']);
    expect(c.programs).toEqual({});
    expect(c.structOps).toEqual({});
    expect(() => loadCollection(fixture('struct_ops.bpf.o'), { ...opts, programs: ['cc_init'] })).toThrow(
      /program 'cc_init' \(section 'struct_ops\/cc_init'\) serves struct_ops map 'bpfkit_cc' only, which is not created/,
    );
  });

  it('struct_ops_link.bpf.o without its .struct_ops.link map: the .struct_ops table alone, on any kernel (before 6.4 too), as libbpf 1.1 loads it', (ctx) => {
    requireFeature(ctx, 'struct_ops programs', {
      probe: () => loadCollection(fixture('struct_ops.bpf.o')).close(),
    });
    const PROGRAMS = ['cc_init', 'cc_ssthresh', 'cc_cong_avoid', 'cc_undo_cwnd'];
    // libbpf 1.1 predates `.struct_ops.link` (1.2) and skips the section ("unrecognized data
    // section"): what it loads is the object without that map, which is what autocreate false
    // asks of bpfkit (newer libbpf takes `!bpfkit_cc_link`, bpf_map__set_autocreate, for it)
    using libbpf = libbpfLoader();
    const r = libbpf.run(fixture('struct_ops_link.bpf.o'));
    if (!r.loaded) throw new Error(`libbpf refused struct_ops_link.bpf.o:\n${r.log}`);
    using c = loadCollection(fixture('struct_ops_link.bpf.o'), {
      mapOptions: { bpfkit_cc_link: { autocreate: false } },
    });
    expect(Object.keys(c.structOps)).toEqual(['bpfkit_cc']);
    expect(Object.keys(c.programs).sort()).toEqual([...PROGRAMS].sort());
    expectSamePrograms(
      Object.fromEntries(Object.entries(c.programs).map(([n, p]) => [n, kernelView(p.fd)])),
      r.programs,
    );
  });
});

describe('CO-RE against module BTF', () => {
  it('core_module.bpf.o: a type vmlinux lacks resolves against the module that has it, as with libbpf', (ctx) => {
    requireFeature(ctx, 'module BTF', { config: ['CONFIG_DEBUG_INFO_BTF_MODULES'] });
    // veth is a module in the guests (tools/vmtest/initramfs.mjs loads it): struct veth_priv is
    // in its BTF only
    const veth = kernelModuleBtfs().find((m) => m.name === 'veth');
    expect(veth, 'the veth module with BTF').toBeDefined();
    expect(Btf.kernel().findAll('veth_priv', 'struct')).toEqual([]);
    const priv = veth!.btf.find('veth_priv', 'struct') as { members: BtfMember[] };
    const member = (name: string) => priv.members.find((m) => m.name === name)!;
    compare('core_module.bpf.o'); // the same instructions as libbpf's, which looks in modules too
    using c = loadCollection(fixture('core_module.bpf.o'));
    expect(c.program('veth_fields').testRun({ data: new Uint8Array(64) }).retval).toBe(1);
    expect(c.map<number, Record<string, unknown>>('.bss').get(0)).toEqual({
      headroom_offset: BigInt(member('requested_headroom').bitOffset / 8),
      peer_offset: BigInt(member('peer').bitOffset / 8),
      headroom_size: 4n,
      has_type: 1n,
    });
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
