// Section conventions, choosing programs and adjusting programs and maps before load, each
// compared with libbpf (the system's, through test/libbpf/load.c): for every program, loaded or
// not and its translated instructions are the same.
import { readFileSync } from 'node:fs';
import { Builder, R0 } from '@bpfkit/asm';
import {
  loadCollection,
  ObjectFile,
  Program,
  type ProgramLoadError,
  programForSection,
  UnknownSectionError,
  VerifierError,
} from '@bpfkit/loader';
import { AttachType, BpfError, Defines, MapFlags, mapInfo, NotSupportedError, ProgType } from '@bpfkit/sys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSamePrograms, libbpfLoader, viaBpfkit } from './libbpf/compare.js';

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;
const SECTIONS = fixture('sections.bpf.o');

/**
 * The fixture's programs this kernel cannot load at all (a program type, attach type or flag it
 * lacks, as `r0 = 0; exit` of the same kind shows): left out on both sides, so an older kernel
 * compares what it has (netfilter programs need 6.4, tcx 6.6, ...).
 */
const lacking = (() => {
  const out = new Set<string>();
  for (const p of ObjectFile.read(SECTIONS).programs.values()) {
    if (p.type === undefined) continue;
    try {
      Program.load({
        type: p.type,
        ...(p.attachType !== undefined ? { attachType: p.attachType } : {}),
        flags: p.flags,
        license: 'GPL',
        instructions: new Builder().mov64(R0, 0).exit(),
      }).close();
    } catch (e) {
      if (!(e instanceof NotSupportedError) && (!(e instanceof BpfError) || e.code === 'EPERM')) throw e;
      out.add(p.name);
    }
  }
  return out;
})();
const leaveOut = [...lacking].map((n) => `-${n}`);

describe('section names, the libbpf way', () => {
  const kind = programForSection;

  it('knows the bare forms', () => {
    for (const [sec, type] of [
      ['kprobe', ProgType.KPROBE],
      ['kretprobe', ProgType.KPROBE],
      ['uprobe', ProgType.KPROBE],
      ['uretprobe', ProgType.KPROBE],
      ['usdt', ProgType.KPROBE],
      ['ksyscall', ProgType.KPROBE],
      ['kretsyscall', ProgType.KPROBE],
      ['tc', ProgType.SCHED_CLS],
      ['classifier', ProgType.SCHED_CLS],
      ['action', ProgType.SCHED_ACT],
      ['xdp', ProgType.XDP],
      ['perf_event', ProgType.PERF_EVENT],
      ['tracepoint', ProgType.TRACEPOINT],
      ['tp', ProgType.TRACEPOINT],
      ['raw_tp', ProgType.RAW_TRACEPOINT],
      ['raw_tracepoint.w', ProgType.RAW_TRACEPOINT_WRITABLE],
      ['socket', ProgType.SOCKET_FILTER],
      ['syscall', ProgType.SYSCALL],
      ['struct_ops', ProgType.STRUCT_OPS],
      ['iter', ProgType.TRACING],
    ] as const)
      expect(programForSection(sec), sec).toMatchObject({ type, attachTo: undefined, autoload: true });
  });

  it('takes a target after "/" where libbpf does, and only there', () => {
    expect(programForSection('kprobe/do_sys_open')).toMatchObject({ attachTo: 'do_sys_open' });
    expect(programForSection('uprobe//bin/bash:readline')).toMatchObject({ attachTo: '/bin/bash:readline' });
    expect(programForSection('usdt/libc.so.6:libc:setjmp')).toMatchObject({
      attachTo: 'libc.so.6:libc:setjmp',
    });
    expect(programForSection('struct_ops/dctcp_init')).toMatchObject({
      type: ProgType.STRUCT_OPS,
      attachTo: 'dctcp_init',
    });
    // exact names take nothing after them (libbpf 1.x dropped the sloppy prefixes)
    for (const s of [
      'xdp/foo',
      'socket/x',
      'tcx',
      'netkit',
      'kprobe.multix',
      'kprobes/x',
      'sk_skb/unknown',
      'not_a_program',
    ])
      expect(programForSection(s), s).toBeUndefined();
  });

  it('sleepable, multi, session, frags, tcx, netkit and struct_ops forms', () => {
    const S = Defines.BPF_F_SLEEPABLE;
    const F = Defines.BPF_F_XDP_HAS_FRAGS;
    expect(kind('uprobe.s//bin/sh:main')).toMatchObject({ flags: S, attachType: undefined });
    expect(kind('usdt.s')).toMatchObject({ flags: S });
    expect(kind('fentry.s/do_unlinkat')).toMatchObject({ flags: S, attachType: AttachType.TRACE_FENTRY });
    expect(kind('lsm.s/file_open')).toMatchObject({ flags: S, attachType: AttachType.LSM_MAC });
    expect(kind('iter.s/task')).toMatchObject({ flags: S, attachType: AttachType.TRACE_ITER });
    expect(kind('struct_ops.s/init')).toMatchObject({ type: ProgType.STRUCT_OPS, flags: S });
    expect(kind('kprobe.multi')).toMatchObject({ attachType: AttachType.TRACE_KPROBE_MULTI });
    expect(kind('kretprobe.multi/vfs_*')).toMatchObject({ attachType: AttachType.TRACE_KPROBE_MULTI });
    expect(kind('kprobe.session/vfs_read')).toMatchObject({ attachType: AttachType.TRACE_KPROBE_SESSION });
    expect(kind('uprobe.multi.s/x:y')).toMatchObject({ attachType: AttachType.TRACE_UPROBE_MULTI, flags: S });
    expect(kind('uprobe.session')).toMatchObject({ attachType: AttachType.TRACE_UPROBE_SESSION });
    expect(kind('xdp.frags')).toMatchObject({ type: ProgType.XDP, attachType: AttachType.XDP, flags: F });
    expect(kind('xdp.frags/devmap')).toMatchObject({ attachType: AttachType.XDP_DEVMAP, flags: F });
    expect(kind('xdp/cpumap')).toMatchObject({ attachType: AttachType.XDP_CPUMAP, flags: 0 });
    expect(kind('tcx/ingress')).toMatchObject({
      type: ProgType.SCHED_CLS,
      attachType: AttachType.TCX_INGRESS,
    });
    expect(kind('tc/egress')).toMatchObject({ type: ProgType.SCHED_CLS, attachType: AttachType.TCX_EGRESS });
    expect(kind('netkit/peer')).toMatchObject({
      type: ProgType.SCHED_CLS,
      attachType: AttachType.NETKIT_PEER,
    });
    expect(kind('cgroup/connect_unix')).toMatchObject({ attachType: AttachType.CGROUP_UNIX_CONNECT });
  });

  it('"?" sections are the same convention, not loaded unless asked', () => {
    expect(programForSection('?xdp')).toMatchObject({ type: ProgType.XDP, autoload: false });
    expect(programForSection('?tp/sched/sched_switch')).toMatchObject({
      attachTo: 'sched/sched_switch',
      autoload: false,
    });
    expect(programForSection('?nonsense')).toBeUndefined();
  });
});

describe('an object with an unknown section', () => {
  it('reads; the program has no type and fails only when loaded', () => {
    const obj = ObjectFile.read(SECTIONS);
    expect(obj.programs.get('unknown_section')).toMatchObject({
      section: 'not_a_program_type/x',
      type: undefined,
      autoload: true,
    });
    expect(obj.programs.get('optional_sock')).toMatchObject({ section: '?socket', autoload: false });
    // by default it is chosen, as libbpf's autoload chooses it, and the load fails naming it
    const e = (() => {
      try {
        loadCollection(obj).close();
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(UnknownSectionError);
    expect(e).toMatchObject({ program: 'unknown_section', section: 'not_a_program_type/x' });
    // the others load
    using c = loadCollection(obj, {
      programs: (p) => p.name !== 'unknown_section' && p.autoload && !lacking.has(p.name),
    });
    expect(Object.keys(c.programs)).not.toContain('unknown_section');
    expect(Object.keys(c.programs)).not.toContain('optional_sock');
    expect(Object.keys(c.programs).length).toBe(obj.programs.size - 2 - lacking.size);
  });
});

describe('loaded as libbpf loads them', () => {
  let libbpf: ReturnType<typeof libbpfLoader>;
  beforeAll(() => {
    libbpf = libbpfLoader();
  });
  afterAll(() => {
    libbpf?.[Symbol.dispose]();
    // every bpffs the tests mounted is gone again
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(`bpfkit-fs-${process.pid}-`);
  });

  // libbpf 1.1 (this system's) predates these sections: it is given their type by hand, as
  // bpf_program__set_type/set_expected_attach_type let a user do.
  const newer: Record<string, [number, number]> = {
    tcx_ingress: [ProgType.SCHED_CLS, AttachType.TCX_INGRESS],
    tc_egress_alias: [ProgType.SCHED_CLS, AttachType.TCX_EGRESS],
    netkit_primary: [ProgType.SCHED_CLS, AttachType.NETKIT_PRIMARY],
    uprobe_multi_bare: [ProgType.KPROBE, AttachType.TRACE_UPROBE_MULTI],
    netfilter_bare: [ProgType.NETFILTER, AttachType.NETFILTER],
  };
  const byHand = Object.entries(newer).map(([name, [t, a]]) => `${name}=${t}:${a}`);

  it('both refuse the object as it is: its unknown section is chosen by default', () => {
    expect(libbpf.run(SECTIONS, [...byHand, ...leaveOut])).toMatchObject({
      loaded: false,
      log: expect.stringContaining("prog 'unknown_section': missing BPF prog type"),
    });
    expect(() => loadCollection(SECTIONS)).toThrow(UnknownSectionError);
  });

  it('without the unknown one: the same programs, instruction for instruction, and no "?" program', () => {
    const theirs = libbpf.run(SECTIONS, [...byHand, ...leaveOut, '-unknown_section']);
    if (!theirs.loaded) throw new Error(theirs.log);
    const ours = viaBpfkit(SECTIONS, {
      programs: (p) => p.autoload && p.name !== 'unknown_section' && !lacking.has(p.name),
    });
    expect(Object.keys(ours)).not.toContain('optional_sock');
    expect(Object.keys(ours).length).toBeGreaterThanOrEqual(45 - lacking.size);
    expectSamePrograms(ours, theirs.programs);
  });

  it('a "?" program asked for, an unknown one given a type: the same again', () => {
    const theirs = libbpf.run(SECTIONS, [
      ...byHand,
      ...leaveOut,
      '+optional_sock',
      `unknown_section=${ProgType.SOCKET_FILTER}:0`,
      '-xdp_bare',
    ]);
    if (!theirs.loaded) throw new Error(theirs.log);
    const ours = viaBpfkit(SECTIONS, {
      programs: (p) =>
        p.name !== 'xdp_bare' && !lacking.has(p.name) && (p.autoload || p.name === 'optional_sock'),
      programOptions: { unknown_section: { type: 'socket_filter' } },
    });
    expect(Object.keys(ours)).toContain('optional_sock');
    expect(ours.unknown_section?.type).toBe('socket_filter');
    expect(Object.keys(ours)).not.toContain('xdp_bare');
    expectSamePrograms(ours, theirs.programs);
  });
});

describe('choosing and adjusting before load', () => {
  it('loads the programs named, and creates every map anyway', () => {
    using c = loadCollection(SECTIONS, { programs: ['sock_bare', 'optional_sock'] });
    expect(Object.keys(c.programs).sort()).toEqual(['optional_sock', 'sock_bare']);
    using d = loadCollection(SECTIONS, { programs: ['sock_bare'] });
    expect(Object.keys(d.maps).sort()).toEqual(['hits', 'only_optional']);
    expect(() => loadCollection(SECTIONS, { programs: ['no_such'] })).toThrow(
      /no program 'no_such'.*sock_bare/,
    );
    expect(() => loadCollection(SECTIONS, { programs: [], programOptions: { nope: {} } })).toThrow(TypeError);
  });

  it("changes a map's shape, flags and pinning before it is created", () => {
    const seen: Record<string, string> = {};
    using c = loadCollection(SECTIONS, {
      programs: ['sock_bare'],
      mapOptions: {
        hits: { maxEntries: 128 },
        only_optional: {
          type: 'lru_hash',
          valueSize: 8,
          maxEntries: 4,
          flags: MapFlags.NO_COMMON_LRU,
          pinning: 'by_name',
        },
      },
      resolveMap: (name, _spec, def) => {
        seen[name] = def.pinning;
        return undefined;
      },
    });
    expect(seen).toEqual({ hits: 'none', only_optional: 'by_name' });
    expect(c.map('hits').info).toMatchObject({ maxEntries: 128, valueSize: 8 });
    const o = mapInfo(c.map('only_optional').fd);
    expect(o).toMatchObject({ typeName: 'lru_hash', maxEntries: 4, valueSize: 8, keySize: 4 });
    expect(o.mapFlags & MapFlags.NO_COMMON_LRU).toBeTruthy();
    // a value size the BTF type does not have: the map is created without that type
    expect(o.btfValueTypeId).toBe(0);
    expect(mapInfo(c.map('hits').fd).btfValueTypeId).not.toBe(0);
    expect(() => loadCollection(SECTIONS, { programs: [], mapOptions: { nope: {} } })).toThrow(
      /no map 'nope'/,
    );
  });

  it('an inner map template handed in', () => {
    // (its program array's initial slots need the programs they name)
    using c0 = loadCollection(fixture('maps.bpf.o'));
    using c = loadCollection(fixture('maps.bpf.o'), {
      mapOptions: { outer: { innerMap: c0.map('inner_a') } },
    });
    expect(c.map('outer').info.maxEntries).toBe(2);
    expect(c0.map('inner_a').fd.value).toBeGreaterThan(0); // not taken over
  });

  it('global data keeps its shape', () => {
    expect(() =>
      loadCollection(fixture('globals.bpf.o'), {
        programs: [],
        mapOptions: { '.rodata': { maxEntries: 2 } },
      }),
    ).toThrow(/only flags and pinning/);
  });

  it("a program's load error names the program and section, keeping the kernel's error", () => {
    const failure = (opts: Parameters<typeof loadCollection>[1]) => {
      try {
        loadCollection(SECTIONS, opts).close();
      } catch (e) {
        return e as ProgramLoadError;
      }
      throw new Error('loaded');
    };
    // flags the kernel does not know: EINVAL from BPF_PROG_LOAD
    const bad = failure({ programs: ['sock_bare'], programOptions: { sock_bare: { flags: 1 << 30 } } });
    expect(bad).toBeInstanceOf(BpfError);
    expect(bad).toMatchObject({
      code: 'EINVAL',
      cmd: 'BPF_PROG_LOAD',
      program: 'sock_bare',
      section: 'socket',
    });
    expect(bad.message).toMatch(/^program 'sock_bare' \(section 'socket'\)/);
    // an XDP return value where sk_lookup allows only 0 or 1: the verifier's rejection
    const v = failure({
      programs: ['xdp_bare'],
      programOptions: { xdp_bare: { type: 'sk_lookup', attachType: 'sk_lookup' } },
    });
    expect(v).toBeInstanceOf(VerifierError);
    expect(v).toMatchObject({ code: 'EINVAL', program: 'xdp_bare', section: 'xdp' });
    expect((v as unknown as VerifierError).log).toMatch(/R0/);
  });
});
