import { readdirSync, readFileSync } from 'node:fs';
import { decode, disassemble, encode } from '@bpfkit/asm';
import { BtfLookupError, BtfParseError } from '@bpfkit/btf';
import { ElfError, ObjectFile, parseElf, programForSection } from '@bpfkit/loader';
import { AttachType, MapType, ProgType } from '@bpfkit/sys';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;
const objects = readdirSync(new URL('./fixtures/', import.meta.url)).filter((f) => f.endsWith('.bpf.o'));

describe('ObjectFile.read', () => {
  it('reads programs with their SEC() types, subprograms linked in', () => {
    const o = ObjectFile.read(fixture('basics.bpf.o'));
    expect(o.license).toBe('GPL');
    expect([...o.programs.keys()]).toEqual(['xdp_pass', 'xdp_by_len', 'count_packets']);
    const xdp = o.programs.get('xdp_by_len')!;
    expect(xdp).toMatchObject({ section: 'xdp', type: ProgType.XDP, attachType: AttachType.XDP });
    const p = o.programs.get('count_packets')!;
    expect(p.type).toBe(ProgType.SOCKET_FILTER);
    const text = disassemble(p.insns);
    // main, then twice_plus_two (global), then add_one (static): calls patched to the copies
    expect(text).toMatch(/12: \(85\) call pc\+1/);
    expect(text).toMatch(/14: \(85\) call pc\+7/);
    expect(p.funcInfo.map((f) => f.insnOff)).toEqual([0, 14, 22]);
    expect(p.lineInfo.length).toBeGreaterThan(5);
    expect(o.maps.get('legacy_counts')).toMatchObject({
      section: 'maps',
      type: MapType.ARRAY,
      keySize: 4,
      valueSize: 8,
      maxEntries: 4,
    });
  });

  it('reads BTF-defined maps: types, sizes, flags, pinning, inner maps, initial slots', () => {
    const o = ObjectFile.read(fixture('maps.bpf.o'));
    expect(o.maps.get('stats_map')).toMatchObject({
      type: MapType.HASH,
      keySize: 4,
      valueSize: 24,
      maxEntries: 128,
      flags: 1,
    });
    expect(o.maps.get('percpu')).toMatchObject({
      type: MapType.PERCPU_ARRAY,
      keySize: 4,
      valueSize: 8,
      btfKeyTypeId: 0,
    });
    expect(o.maps.get('pinned_lru')).toMatchObject({ type: MapType.LRU_HASH, pinning: 'by_name' });
    expect(o.maps.get('events')).toMatchObject({
      type: MapType.RINGBUF,
      keySize: 0,
      valueSize: 0,
      maxEntries: 16384,
    });
    expect(o.maps.get('outer')?.inner).toMatchObject({
      type: MapType.ARRAY,
      keySize: 4,
      valueSize: 4,
      maxEntries: 1,
    });
    expect(o.maps.get('outer')?.initial).toEqual([
      { slot: 0, kind: 'map', name: 'inner_a' },
      { slot: 1, kind: 'map', name: 'inner_b' },
    ]);
    expect(o.maps.get('jumps')?.initial).toEqual([{ slot: 1, kind: 'prog', name: 'tail_target' }]);
  });

  it('reads global data, variables and externs', () => {
    const o = ObjectFile.read(fixture('globals.bpf.o'));
    expect([...o.maps.keys()].sort()).toEqual(['.bss', '.data', '.data.custom', '.kconfig', '.rodata']);
    expect(o.maps.get('.rodata')).toMatchObject({ readonly: true, flags: 0x80, valueSize: 19 });
    expect(o.variables.get('cfg_multiplier')).toMatchObject({ section: '.rodata', offset: 0, size: 4 });
    expect(o.variables.get('custom_val')).toMatchObject({ section: '.data.custom', size: 4 });
    expect(o.externs.get('LINUX_KERNEL_VERSION')).toMatchObject({ kind: 'kconfig', weak: false });
    expect(o.externs.get('CONFIG_HZ')).toMatchObject({ kind: 'kconfig', weak: true, size: 4 });
    expect(o.externs.get('bpfkit_no_such_ksym')).toMatchObject({ kind: 'ksym', weak: true });
    const k = ObjectFile.read(fixture('kfunc.bpf.o'));
    expect(k.externs.get('bpf_cast_to_kern_ctx')?.kind).toBe('kfunc');
    expect(k.programs.get('kern_len')!.insns.some((i) => i.ref?.kind === 'kfunc')).toBe(true);
  });

  it('carries CO-RE relocations with the instructions they patch', () => {
    const o = ObjectFile.read(fixture('core.bpf.o'));
    const p = o.programs.get('on_sys_enter_raw')!;
    expect(p).toMatchObject({ type: ProgType.RAW_TRACEPOINT, attachTo: 'sys_enter' });
    expect(o.programs.get('on_getppid')).toMatchObject({
      type: ProgType.TRACEPOINT,
      attachTo: 'syscalls/sys_enter_getppid',
    });
    expect(p.coreRelos.length).toBeGreaterThan(10);
    for (const { slot } of p.coreRelos) expect(slot).toBeLessThan(p.insns.length + 20);
  });

  it('maps section names to program types the libbpf way', () => {
    expect(programForSection('cgroup/connect4')).toMatchObject({
      type: ProgType.CGROUP_SOCK_ADDR,
      attachType: AttachType.CGROUP_INET4_CONNECT,
    });
    expect(programForSection('cgroup_skb/ingress')).toMatchObject({
      type: ProgType.CGROUP_SKB,
      attachType: AttachType.CGROUP_INET_INGRESS,
    });
    expect(programForSection('tp_btf/sched_switch')).toMatchObject({
      type: ProgType.TRACING,
      attachType: AttachType.TRACE_RAW_TP,
      attachTo: 'sched_switch',
    });
    expect(programForSection('fentry/do_unlinkat')).toMatchObject({
      type: ProgType.TRACING,
      attachType: AttachType.TRACE_FENTRY,
    });
    expect(programForSection('kprobe/do_sys_open')).toMatchObject({
      type: ProgType.KPROBE,
      attachTo: 'do_sys_open',
    });
    expect(programForSection('uprobe//bin/bash:readline')).toMatchObject({
      type: ProgType.KPROBE,
      attachTo: '/bin/bash:readline',
    });
    expect(programForSection('tc')?.type).toBe(ProgType.SCHED_CLS);
    expect(programForSection('lsm.s/file_open')).toMatchObject({ type: ProgType.LSM, flags: 16 });
    expect(programForSection('not_a_program')).toBeUndefined();
  });
});

describe('instructions round-trip byte for byte', () => {
  it('decode then encode every program section of every fixture', () => {
    let checked = 0;
    for (const f of objects) {
      const elf = parseElf(readFileSync(fixture(f)));
      for (const s of elf.sections.filter((x) => x.flags & 4 && x.size > 0)) {
        expect(encode(decode(s.data)), `${f} ${s.name}`).toEqual(new Uint8Array(s.data));
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(8);
  });
});

describe('malformed objects are typed errors naming section and offset', () => {
  const good = readFileSync(fixture('maps.bpf.o'));
  const patched = (at: number, bytes: number[]) => {
    const b = new Uint8Array(good);
    b.set(bytes, at);
    return b;
  };
  const shoff = Number(new DataView(good.buffer, good.byteOffset).getBigUint64(40, true));

  it('truncation, wrong machine, bad headers', () => {
    expect(() => ObjectFile.read(good.subarray(0, 40))).toThrow(/shorter than an ELF header/);
    expect(() => ObjectFile.read(patched(0, [0, 0, 0, 0]))).toThrow(/bad magic/);
    expect(() => ObjectFile.read(patched(18, [62, 0]))).toThrow(/machine 62 is not BPF/);
    expect(() => ObjectFile.read(good.subarray(0, good.length - 200))).toThrow(ElfError);
  });

  it('a section whose data runs past the end of the file', () => {
    // section 2's size field
    const bad = patched(shoff + 2 * 64 + 32, [0xff, 0xff, 0xff, 0x7f]);
    expect(() => ObjectFile.read(bad)).toThrow(/section 2 data .* exceeds the file .*\(at byte \d+\)/);
  });

  it('bad string offsets', () => {
    const elf = parseElf(good);
    const symtab = elf.sections.find((s) => s.name === '.symtab')!;
    const b = new Uint8Array(good);
    new DataView(b.buffer).setUint32(symtab.offset + 24, 0x7fffffff, true); // symbol 1's name
    expect(() => ObjectFile.read(b)).toThrow(
      new RegExp(
        `^section '.symtab': symbol 1 name: string offset 2147483647 is outside the string table \\(at byte ${symtab.offset + 24}\\)`,
      ),
    );
  });

  it('a relocation against an unknown symbol', () => {
    const elf = parseElf(good);
    const rel = elf.sections.find((s) => s.name === '.relsocket')!;
    const b = new Uint8Array(good);
    new DataView(b.buffer).setUint32(rel.offset + 12, 9999, true); // high half of r_info: the symbol
    expect(() => ObjectFile.read(b)).toThrow(
      /section '.relsocket': relocation against unknown symbol 9999 \(at byte \d+\)/,
    );
  });

  it('an unsupported relocation type', () => {
    const elf = parseElf(good);
    const rel = elf.sections.find((s) => s.name === '.relsocket')!;
    const b = new Uint8Array(good);
    new DataView(b.buffer).setUint32(rel.offset + 8, 7, true);
    expect(() => ObjectFile.read(b)).toThrow(
      /section 'socket': relocation at instruction \d+ against 'jumps': unsupported relocation type 7/,
    );
  });

  it('never crashes on corrupted objects (seeded property test)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 16,
        }),
        (flips) => {
          const b = new Uint8Array(good);
          for (const [at, v] of flips) b[at] = v;
          try {
            ObjectFile.read(b);
          } catch (e) {
            if (!(e instanceof ElfError || e instanceof BtfParseError || e instanceof BtfLookupError))
              throw e;
          }
        },
      ),
      { seed: 1, numRuns: 500 },
    );
  });
});
