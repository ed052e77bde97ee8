// Externs as libbpf resolves them, on this kernel: .kconfig values of every type and value form
// libbpf accepts (and the same bytes as libbpf's .kconfig map), typeless ksyms from
// /proc/kallsyms, weak ksyms (externs.bpf.o, no kfuncs: every kernel) and kfuncs the kernel
// lacks (externs_kfunc.bpf.o, 6.2), module kfuncs through fd_array, missing
// strong externs as errors naming program, section and symbol; BTF sanitised for kernels that lack
// BTF kinds, and objects loaded on a kernel without BTF.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Pseudo } from '@bpfkit/asm';
import {
  ALL_BTF_FEATURES,
  Btf,
  type BtfFeatures,
  type BtfType,
  encodeBtf,
  intType,
  kernelBtfFeatures,
  loadBtf,
  type ModuleBtf,
} from '@bpfkit/btf';
import {
  KFUNC_POISON_BASE,
  KfuncNotSupportedError,
  kallsyms,
  kernelConfig,
  linuxKernelVersion,
  loadCollection,
  ObjectFile,
  prepareCollection,
  sanitizeBtf,
} from '@bpfkit/loader';
import { BpfMap } from '@bpfkit/maps';
import { NativeBuffer, NotSupportedError, objGet } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';
import { lackOf } from '../../../tools/testing/features.js';
import { tempBpffs } from '../../../tools/testing/kernel.js';

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;
const run = (
  c: { program(n: string): { testRun(o: { data: Uint8Array }): { retval: number } } },
  name: string,
) => expect(c.program(name).testRun({ data: new Uint8Array(64) }).retval).toBe(1);

/** The bytes of the .kconfig map libbpf creates for `object` (bpftool pins its maps). */
function libbpfKconfig(object: string): Uint8Array {
  using fs = tempBpffs();
  const progs = join(fs.path, 'progs');
  const maps = join(fs.path, 'maps');
  execFileSync('bpftool', ['prog', 'loadall', object, progs, 'pinmaps', maps], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const name = readdirSync(maps).find((n) => n.endsWith('kconfig'))!;
  const path = NativeBuffer.from(join(maps, name));
  try {
    using fd = objGet({ pathname: path.ptr, fileFlags: 0 }, name);
    using m = BpfMap.fromFd(fd);
    return m.getBytes(new Uint8Array(4))!;
  } finally {
    path.free();
  }
}

describe('.kconfig externs', () => {
  it('every type libbpf accepts gets the kernel config value, and the virtual LINUX_* values are probed', () => {
    using c = loadCollection(fixture('externs.bpf.o'));
    run(c, 'kconfig_values');
    const config = kernelConfig();
    const tri = (v: string | undefined) => (v === 'y' ? 1n : v === 'm' ? 2n : 0n);
    const num = (v: string | undefined) => (v === undefined ? 0n : BigInt(v));
    expect(c.map<number, Record<string, unknown>>('.bss').get(0)).toMatchObject({
      out_version: BigInt(linuxKernelVersion()),
      // bpf_get_attach_cookie (5.15): a tracepoint program may call it on 5.15 and later
      out_cookie: linuxKernelVersion() >= (5 << 16) + (15 << 8) ? 1n : 0n,
      out_wrapper: kallsyms(new Set(['__x64_sys_bpf', '__arm64_sys_bpf'])).size > 0 ? 1n : 0n,
      out_unknown: 0n, // an unknown LINUX_ extern, weak: zero
      out_syscall: 1n,
      out_jit: BigInt((config.get('CONFIG_BPF_JIT') ?? '\0').charCodeAt(0)), // a char gets 'y' itself
      out_events: tri(config.get('CONFIG_BPF_EVENTS')),
      out_hz: num(config.get('CONFIG_HZ')),
      out_cpus: num(config.get('CONFIG_NR_CPUS')),
      out_log_shift: num(config.get('CONFIG_LOG_BUF_SHIFT')),
      out_not_set: 0n,
      out_localversion: (config.get('CONFIG_LOCALVERSION') ?? '""').slice(1, -1),
    });
  });

  it('the .kconfig map holds what libbpf puts there, laid out as libbpf lays it out', () => {
    const ours = prepareCollection(fixture('externs.bpf.o')).data.get('.kconfig')!;
    const theirs = libbpfKconfig(fixture('externs.bpf.o'));
    expect(theirs.length).toBe(ours.length);
    // libbpf 1.1 (in this bpftool) probes LINUX_HAS_SYSCALL_WRAPPER by creating a kprobe on
    // __<arch>_sys_bpf: on a kernel without kprobes it says 0 where the wrapper's symbol is there
    // (bpfkit asks /proc/kallsyms); where kprobes exist both say 1. Every other byte is the same.
    const at = ObjectFile.read(fixture('externs.bpf.o')).externs.get('LINUX_HAS_SYSCALL_WRAPPER')!.offset;
    const kprobes = lackOf({ config: ['CONFIG_KPROBES', 'CONFIG_KPROBE_EVENTS'] }) === undefined;
    expect(ours[at]).toBe(1);
    expect(theirs[at]).toBe(kprobes ? 1 : 0);
    const same = ours.slice();
    same[at] = theirs[at]!;
    expect([...same]).toEqual([...theirs]);
  });

  it('value forms as libbpf reads them (the kconfig option takes precedence over the kernel config)', () => {
    const obj = ObjectFile.read(fixture('externs.bpf.o'));
    const at = (name: string) => obj.externs.get(name)!;
    const kconfig = (values: Record<string, string>) => {
      const data = prepareCollection(obj, { kconfig: values }).data.get('.kconfig')!;
      const view = new DataView(data.buffer, data.byteOffset);
      return { data, view };
    };
    {
      const { data, view } = kconfig({
        CONFIG_BPF_EVENTS: 'm',
        CONFIG_BPF_JIT: 'm',
        CONFIG_HZ: '0x10',
        CONFIG_NR_CPUS: '010',
        CONFIG_LOG_BUF_SHIFT: '-2',
        CONFIG_LOCALVERSION: '"a string longer than sixteen bytes"',
        CONFIG_BPF_SYSCALL: 'n',
      });
      expect(view.getUint32(at('CONFIG_BPF_EVENTS').offset, true)).toBe(2); // TRI_MODULE
      expect(data[at('CONFIG_BPF_JIT').offset]).toBe('m'.charCodeAt(0));
      expect(view.getInt32(at('CONFIG_HZ').offset, true)).toBe(16);
      expect(view.getBigUint64(at('CONFIG_NR_CPUS').offset, true)).toBe(8n); // octal
      expect(view.getInt16(at('CONFIG_LOG_BUF_SHIFT').offset, true)).toBe(-2);
      const s = at('CONFIG_LOCALVERSION');
      expect(Buffer.from(data.subarray(s.offset, s.offset + 16)).toString()).toBe('a string longer\0');
      expect(data[at('CONFIG_BPF_SYSCALL').offset]).toBe(0);
    }
    const bad = (values: Record<string, string>, message: RegExp) =>
      expect(() => prepareCollection(obj, { kconfig: values })).toThrow(
        expect.objectContaining({
          name: 'ExternError',
          program: 'kconfig_values',
          message: expect.stringMatching(message),
        }),
      );
    bad({ CONFIG_BPF_SYSCALL: 'm' }, /CONFIG_BPF_SYSCALL=m' is a tristate or char; the extern is a bool/);
    bad({ CONFIG_BPF_SYSCALL: '2' }, /is an integer; the extern is a bool/);
    bad({ CONFIG_HZ: 'y' }, /CONFIG_HZ=y' is a bool, tristate or char; the extern is a int/);
    bad({ CONFIG_HZ: '"250"' }, /is a string; the extern is a int/);
    bad({ CONFIG_HZ: '12abc' }, /is not a valid integer/);
    bad({ CONFIG_LOG_BUF_SHIFT: '40000' }, /does not fit in 2 bytes/);
    bad({ CONFIG_LOCALVERSION: '"unterminated' }, /is not a valid string/);
    expect(() => prepareCollection(obj, { kconfig: 'CONFIG_HZ=' })).toThrow(/has no value/);
  });
});

describe('__ksym and kfunc externs', () => {
  it('typeless ksyms are kallsyms addresses, weak absent ones zero', () => {
    using c = loadCollection(fixture('externs.bpf.o'));
    run(c, 'ksyms');
    expect(c.map<number, Record<string, unknown>>('.bss').get(0)).toMatchObject({
      out_stext: kallsyms(new Set(['_stext'])).get('_stext'),
      out_typeless_missing: 0n,
      out_typed_missing: 1n,
    });
  });

  it('kfuncs: called, bpf_ksym_exists() true when present and false when weak and absent', () => {
    using c = loadCollection(fixture('externs_kfunc.bpf.o'));
    run(c, 'kfuncs');
    expect(c.map<number, Record<string, unknown>>('.bss').get(0)).toMatchObject({
      out_has_kfunc: 1n,
      out_has_weak_present: 1n,
      out_has_missing: 0n,
      out_missing_ret: 0n,
    });
    // before the verifier drops it as dead code: the absent weak kfunc's call is an invalid
    // helper call, as libbpf poisons it
    const prep = prepareCollection(fixture('externs_kfunc.bpf.o'));
    const p = prep.programs.get('kfuncs')!;
    expect(p.missingKfuncs).toEqual(['bpfkit_no_such_kfunc']);
    expect(p.insns.some((i) => i.code === 0x85 && i.src === 0 && i.imm >= KFUNC_POISON_BASE)).toBe(true);
  });

  it('a weak kfunc the kernel lacks, called unguarded: the verifier refuses it, the error names it', () => {
    expect(() => loadCollection(fixture('kfunc_unguarded.bpf.o'))).toThrow(
      expect.objectContaining({
        name: 'VerifierError',
        message: expect.stringMatching(/weak kfuncs this kernel does not have.*\n {2}bpfkit_no_such_kfunc/s),
      }),
    );
    // libbpf refuses it too
    using fs = tempBpffs();
    expect(() =>
      execFileSync('bpftool', ['prog', 'loadall', fixture('kfunc_unguarded.bpf.o'), join(fs.path, 'p')], {
        stdio: ['ignore', 'ignore', 'pipe'],
      }),
    ).toThrow(/failed to load/);
  });

  it('a typed ksym is its BTF id; this kernel finds data symbols only with KALLSYMS_ALL, so both loaders are refused alike', () => {
    const prep = prepareCollection(fixture('ksym_typed.bpf.o'));
    const id = Btf.kernel().findAll('bpf_prog_active', 'var')[0]!.id;
    expect(prep.programs.get('typed_ksym')!.insns.find((i) => i.src === Pseudo.BTF_ID)).toMatchObject({
      imm: id,
    });
    const reason = "failed to find the address for kernel symbol 'bpf_prog_active'";
    let libbpf = '';
    try {
      using fs = tempBpffs();
      execFileSync('bpftool', ['prog', 'loadall', fixture('ksym_typed.bpf.o'), join(fs.path, 'p')], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    } catch (e) {
      libbpf = String((e as { stderr?: Buffer }).stderr);
    }
    if (libbpf === '') {
      // a kernel that lists data symbols: both load it
      using c = loadCollection(fixture('ksym_typed.bpf.o'));
      run(c, 'typed_ksym');
      return;
    }
    expect(libbpf).toContain(reason);
    expect(() => loadCollection(fixture('ksym_typed.bpf.o'))).toThrow(reason);
  });

  it('kfuncs and ksyms of a module BTF: the call names the module in fd_array (index 1 on), the load carries its fd', () => {
    // (a module's BTF is split on vmlinux's; one of its own stands in for it here)
    const moduleWith = (param: BtfType): ModuleBtf => ({
      name: 'bpfkit_mod',
      id: 4242,
      btf: Btf.parse(
        encodeBtf([
          intType(),
          param,
          { kind: 'func_proto', id: 3, name: '', returnType: 1, params: [{ name: 'ctx', type: 2 }] },
          { kind: 'func', id: 4, name: 'bpfkit_no_such_kfunc', type: 3, linkage: 1 },
        ]),
      ),
    });
    // int bpfkit_no_such_kfunc(void *ctx), as the object declares it
    const module = moduleWith({ kind: 'ptr', id: 2, name: '', type: 0 });
    const p = prepareCollection(fixture('externs_kfunc.bpf.o'), { kernelModules: [module] }).programs.get(
      'kfuncs',
    )!;
    expect(p.missingKfuncs).toEqual([]);
    expect(p.btfObjects.map((m) => m.name)).toEqual(['bpfkit_mod']);
    const id = module.btf.findAll('bpfkit_no_such_kfunc', 'func')[0]!.id;
    expect(p.insns.filter((i) => i.src === Pseudo.KFUNC_CALL && i.imm === id).map((i) => i.off)).toEqual([1]);
    // bpf_ksym_exists() on it: a BTF id whose high word becomes the module BTF's fd at load
    const loads = p.btfObjectFds.map(({ insn }) => p.insns[insn]!);
    expect(loads.length).toBeGreaterThan(0);
    for (const l of loads) expect(l).toMatchObject({ src: Pseudo.BTF_ID, imm: id });
    // a prototype that does not match (int, not a pointer): for a weak kfunc, as if absent
    const other = moduleWith({ kind: 'typedef', id: 2, name: 'not_a_pointer', type: 1 });
    expect(
      prepareCollection(fixture('externs_kfunc.bpf.o'), { kernelModules: [other] }).programs.get('kfuncs')!
        .missingKfuncs,
    ).toEqual(['bpfkit_no_such_kfunc']);
  });

  it('a missing strong extern is an ExternError naming program, section and symbol', () => {
    const obj = () => ObjectFile.read(fixture('externs_missing.bpf.o'));
    expect(() => prepareCollection(obj())).toThrow(
      expect.objectContaining({
        name: 'ExternError',
        program: 'needs_kconfig',
        section: 'socket',
        symbol: 'CONFIG_BPFKIT_MISSING',
      }),
    );
    const kconfig = { CONFIG_BPFKIT_MISSING: '1' };
    expect(() => prepareCollection(obj(), { kconfig })).toThrow(
      expect.objectContaining({
        program: 'needs_ksym',
        section: 'socket',
        symbol: 'bpfkit_missing_ksym',
      }),
    );
    const withoutKsym = obj();
    withoutKsym.programs.delete('needs_ksym');
    // a kfunc this kernel lacks is a missing kernel feature: NotSupportedError, named
    expect(() => prepareCollection(withoutKsym, { kconfig })).toThrow(
      new KfuncNotSupportedError('bpfkit_missing_kfunc', 'needs_kfunc', 'socket'),
    );
    expect(() => prepareCollection(withoutKsym, { kconfig })).toThrow(NotSupportedError);
  });
});

/** Every kind a kernel may lack, in one blob. */
function everyKind(): Uint8Array {
  const types: BtfType[] = [
    intType(),
    { kind: 'float', id: 2, name: 'double', size: 8 },
    { kind: 'enum64', id: 3, name: 'big', size: 8, signed: false, values: [{ name: 'a', value: 1n << 40n }] },
    { kind: 'enum', id: 4, name: 'sgn', size: 4, signed: true, values: [{ name: 'm', value: -1n }] },
    { kind: 'type_tag', id: 5, name: 'user', type: 1 },
    { kind: 'ptr', id: 6, name: '', type: 5 },
    { kind: 'func_proto', id: 7, name: '', returnType: 1, params: [{ name: 'x', type: 6 }] },
    { kind: 'func', id: 8, name: 'f', type: 7, linkage: 1 },
    { kind: 'var', id: 9, name: 'v', type: 1, linkage: 1 },
    { kind: 'decl_tag', id: 10, name: 'tag', type: 9, componentIdx: -1 },
    { kind: 'datasec', id: 11, name: '.data', size: 4, vars: [{ type: 9, offset: 0, size: 4 }] },
  ];
  return encodeBtf(types);
}

describe('BTF sanitised for older kernels', () => {
  /** Features in the order kernels gained them: a kernel before one lacks it and every later one. */
  const ORDER: (keyof BtfFeatures)[] = [
    'func',
    'datasec',
    'globalFunc',
    'float',
    'declTag',
    'typeTag',
    'enum64',
  ];
  const before = (feature: keyof BtfFeatures): BtfFeatures => ({
    ...ALL_BTF_FEATURES,
    ...Object.fromEntries(ORDER.slice(ORDER.indexOf(feature)).map((f) => [f, false])),
  });
  const kernel = kernelBtfFeatures();
  const sanitized = (have: BtfFeatures) => {
    const blob = everyKind();
    const out = sanitizeBtf({ blob, btf: Btf.parse(blob) }, have);
    // this kernel takes the rewritten blob; a kernel older than `have` (5.10 lacks FLOAT and
    // the tags) takes it rewritten for what it has too, as the loader would rewrite it there
    const both = Object.fromEntries(
      (Object.keys(have) as (keyof BtfFeatures)[]).map((f) => [f, have[f] && kernel[f]]),
    ) as unknown as BtfFeatures;
    loadBtf(sanitizeBtf({ blob, btf: Btf.parse(blob) }, both).blob).close();
    return Btf.parse(out.blob);
  };

  it('every feature present: the blob as it is', () => {
    const blob = everyKind();
    expect(sanitizeBtf({ blob, btf: Btf.parse(blob) }, ALL_BTF_FEATURES).blob).toBe(blob);
  });

  it('each missing kind becomes what libbpf makes of it', () => {
    // 5.19: no ENUM64
    const e = sanitized(before('enum64'));
    expect(e.typeById(12)).toMatchObject({ kind: 'int', name: 'enum64_placeholder', size: 1 });
    expect(e.typeById(3)).toMatchObject({
      kind: 'union',
      name: 'big',
      size: 8,
      members: [{ name: 'a', type: 12, bitOffset: 0 }],
    });
    expect(e.typeById(4)).toMatchObject({ kind: 'enum', signed: false });
    expect(e.typeById(5)).toMatchObject({ kind: 'type_tag' });
    // 5.16: no TYPE_TAG either
    expect(sanitized(before('typeTag')).typeById(5)).toMatchObject({ kind: 'const', name: '', type: 1 });
    // 5.15: no DECL_TAG
    expect(sanitized(before('declTag')).typeById(10)).toMatchObject({
      kind: 'int',
      name: 'tag',
      size: 1,
      bits: 8,
    });
    // 5.12: no FLOAT
    expect(sanitized(before('float')).typeById(2)).toMatchObject({
      kind: 'struct',
      name: '',
      size: 8,
      members: [],
    });
    // 5.5: no global functions
    expect(sanitized(before('globalFunc')).typeById(8)).toMatchObject({ kind: 'func', linkage: 0 });
    // 5.1: no DATASEC/VAR
    const d = sanitized(before('datasec'));
    expect(d.typeById(9)).toMatchObject({ kind: 'int', name: 'v', size: 1 });
    expect(d.typeById(11)).toMatchObject({
      kind: 'struct',
      name: '_data',
      size: 4,
      members: [{ name: 'v', type: 9, bitOffset: 0 }],
    });
    // 4.18: no FUNC/FUNC_PROTO
    const f = sanitized(before('func'));
    expect(f.typeById(7)).toMatchObject({ kind: 'enum', size: 4, values: [{ name: 'x', value: 6n }] });
    expect(f.typeById(8)).toMatchObject({ kind: 'typedef', name: 'f', type: 7 });
  });

  it('all of it missing at once (4.18) still loads', () => {
    const all = sanitized(before('func'));
    expect([...all.types()].map((t) => t.kind)).toEqual([
      'int',
      'struct',
      'union',
      'enum',
      'const',
      'ptr',
      'enum',
      'typedef',
      'int',
      'int',
      'struct',
      'int',
    ]);
  });

  it('an object loads for a kernel said to lack every BTF kind past 4.18, its programs and maps working', () => {
    const have = before('func');
    using c = loadCollection(fixture('globals.bpf.o'), { btfFeatures: have });
    expect(c.btf).toBeDefined();
    expect(c.program('globals').testRun({ data: new Uint8Array(64) }).retval).toBe('h'.charCodeAt(0));
    // without DATASEC the global data maps have no BTF, so no typed codec: bss_counter is the first u64
    const bss = c.map('.bss').getBytes(new Uint8Array(4))!;
    expect(new DataView(bss.buffer, bss.byteOffset).getBigUint64(0, true)).toBe(3n);
  });

  it('an object loads for a kernel without BTF at all: no BTF object, no func/line info, said once', async () => {
    const warnings: string[] = [];
    const listen = (w: Error & { code?: string }) => {
      if (w.code === 'BPFKIT_NO_BTF') warnings.push(w.message);
    };
    process.on('warning', listen);
    try {
      for (let i = 0; i < 2; i++) {
        using c = loadCollection(fixture('externs.bpf.o'), {
          btfFeatures: { ...ALL_BTF_FEATURES, btf: false },
        });
        expect(c.btf).toBeUndefined();
        run(c, 'ksyms');
        expect(c.program('ksyms').info.btfId).toBe(0); // no BTF, so no func/line info
      }
      await new Promise((r) => setImmediate(r));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/does not support BTF/);
    } finally {
      process.off('warning', listen);
    }
  });
});

describe('btfPath (libbpf btf_custom_path)', () => {
  it('CO-RE relocates against the BTF file given', () => {
    using c = loadCollection(fixture('core.bpf.o'), { btfPath: '/sys/kernel/btf/vmlinux' });
    expect(Object.keys(c.programs).length).toBeGreaterThan(0);
    expect(() => loadCollection(fixture('core.bpf.o'), { btfPath: '/nonexistent/vmlinux' })).toThrow(
      /ENOENT/,
    );
  });
});
