// Hostile objects: every pure stage of loading (ObjectFile.read, prepareCollection) ends with a
// typed error or a result — never a hang, a raw RangeError/TypeError, or a huge allocation.
import { readFileSync } from 'node:fs';
import { Btf, BtfLookupError } from '@bpfkit/btf';
import { ElfError, ObjectFile, parseElf, prepareCollection } from '@bpfkit/loader';
import { describe, expect, it } from 'vitest';
import { BlobWriter } from '../../../tools/testing/btf.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url).pathname);

interface Sec {
  name: string;
  type: number;
  flags?: number;
  data?: Uint8Array;
  size?: number;
  link?: number;
  entsize?: number;
}

/** A minimal ELF64 LE BPF relocatable object: section 0, the given sections, then .shstrtab. */
function elf(sections: Sec[]): Uint8Array {
  const all = [...sections, { name: '.shstrtab', type: 3 } as Sec];
  const names: number[] = [0];
  const nameOff = all.map((s) => {
    const off = names.length;
    names.push(...new TextEncoder().encode(s.name), 0);
    return off;
  });
  all[all.length - 1]!.data = new Uint8Array(names);
  let off = 64;
  const offsets = all.map((s) => {
    const at = off;
    off += s.data?.length ?? 0;
    off = Math.ceil(off / 8) * 8;
    return at;
  });
  const shoff = off;
  const out = new Uint8Array(shoff + (all.length + 1) * 64);
  const dv = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  dv.setUint16(16, 1, true); // ET_REL
  dv.setUint16(18, 247, true); // EM_BPF
  dv.setBigUint64(40, BigInt(shoff), true);
  dv.setUint16(52, 64, true);
  dv.setUint16(58, 64, true);
  dv.setUint16(60, all.length + 1, true);
  dv.setUint16(62, all.length, true);
  all.forEach((s, i) => {
    const h = shoff + (i + 1) * 64;
    if (s.data) out.set(s.data, offsets[i]!);
    dv.setUint32(h, nameOff[i]!, true);
    dv.setUint32(h + 4, s.type, true);
    dv.setBigUint64(h + 8, BigInt(s.flags ?? 0), true);
    dv.setBigUint64(h + 24, BigInt(offsets[i]!), true);
    dv.setBigUint64(h + 32, BigInt(s.size ?? s.data?.length ?? 0), true);
    dv.setUint32(h + 40, s.link ?? 0, true);
    dv.setBigUint64(h + 56, BigInt(s.entsize ?? 0), true);
  });
  return out;
}

/** BTF: `depth` unions each holding two members of the next, over an int, and `var CONFIG_X` of the root in .kconfig. */
function dagBtf(depth: number): Uint8Array {
  const w = new BlobWriter();
  const [a, b] = [w.str('a'), w.str('b')];
  for (let k = 0; k < depth; k++) w.type('', 5, 2, 4, [a, k + 2, 0, b, k + 2, 0]); // union of the next
  w.type('int', 1, 0, 4, [(1 << 24) | 32]); // depth + 1
  w.type('CONFIG_X', 14, 0, 1, [2]); // var of the root union (id 1), extern linkage: depth + 2
  return w.type('.kconfig', 15, 1, 0, [depth + 2, 0, 4]).build(); // datasec
}

/** .strtab and .symtab with one undefined global symbol `name` (sections 1 and 2). */
function externSymbol(name: string): Sec[] {
  const strtab = new Uint8Array([0, ...new TextEncoder().encode(name), 0]);
  const symtab = new Uint8Array(48);
  new DataView(symtab.buffer).setUint32(24, 1, true);
  symtab[24 + 4] = 0x10; // STB_GLOBAL, STT_NOTYPE; shndx 0 (undefined)
  return [
    { name: '.strtab', type: 3, data: strtab },
    { name: '.symtab', type: 2, data: symtab, link: 1, entsize: 24 },
  ];
}

describe('hostile objects', () => {
  it('a union DAG of depth 30 behind a kconfig extern: ObjectFile.read and prepareCollection complete', () => {
    const bytes = elf([...externSymbol('CONFIG_X'), { name: '.BTF', type: 1, data: dagBtf(30) }]);
    const obj = ObjectFile.read(bytes);
    expect(obj.externs.get('CONFIG_X')).toMatchObject({ kind: 'kconfig', size: 4, offset: 0 });
    // The union is not an int the kernel config can fill: a deliberate error, after a linear walk.
    expect(() => prepareCollection(obj, { kernelBtf: obj.btf! })).toThrow(/CONFIG_X|kconfig/);
  });

  it('four 256 MiB .bss sections in a tiny file: an ElfError naming the section, nothing allocated', () => {
    const bss = ['.bss.a', '.bss.b', '.bss.c', '.bss.d'].map((name) => ({
      name,
      type: 8, // NOBITS
      flags: 3, // WRITE | ALLOC
      size: 256 << 20,
    }));
    const bytes = elf(bss);
    expect(bytes.length).toBeLessThan(1024);
    expect(() => ObjectFile.read(bytes)).toThrow(ElfError);
    expect(() => ObjectFile.read(bytes)).toThrow(
      /^section '.bss.a': global data of 268435456 bytes is larger/,
    );
  });

  it('.bss within the cap is not allocated when reading', () => {
    const obj = ObjectFile.read(elf([{ name: '.bss', type: 8, flags: 3, size: 4 << 20 }]));
    expect(obj.maps.get('.bss')).toMatchObject({ valueSize: 4 << 20, data: undefined });
  });

  it('global data adding up past the total cap', () => {
    const many = Array.from({ length: 17 }, (_, i) => ({
      name: `.bss.${i}`,
      type: 8,
      flags: 3,
      size: 4 << 20,
    }));
    expect(() => ObjectFile.read(elf(many))).toThrow(
      /^section '.bss.16': global data sections add up to more than/,
    );
  });

  it('a one-byte change (a legacy maps section made NOBITS) is an ElfError, not a RangeError', () => {
    const good = fixture('basics.bpf.o');
    const e = parseElf(good);
    const maps = e.sections.find((s) => s.name === 'maps')!;
    const shoff = Number(new DataView(good.buffer, good.byteOffset).getBigUint64(40, true));
    const b = new Uint8Array(good);
    b[shoff + maps.index * 64 + 4] = 8; // sh_type: NOBITS
    expect(() => ObjectFile.read(b)).toThrow(ElfError);
    expect(() => ObjectFile.read(b)).toThrow(/^section 'maps': legacy map '\w+' .* does not fit/);
  });

  it('a section name table without data is an ElfError', () => {
    const b = elf([]);
    const dv = new DataView(b.buffer);
    const shoff = Number(dv.getBigUint64(40, true));
    dv.setUint32(shoff + 64 + 4, 8, true); // .shstrtab: NOBITS
    expect(() => ObjectFile.read(b)).toThrow(/section name table 1 has no data/);
  });

  it('a bad BTF func type id is a typed error naming the program and the id', () => {
    const obj = ObjectFile.read(fixture('basics.bpf.o'));
    obj.programs.get('xdp_pass')!.funcInfo[0]!.typeId = 99999;
    expect(() => prepareCollection(obj, { kernelBtf: obj.btf! })).toThrow(BtfLookupError);
    expect(() => prepareCollection(obj, { kernelBtf: obj.btf! })).toThrow(
      /^program 'xdp_pass': func_info at instruction 0 names BTF type 99999, which does not exist, not a func/,
    );
  });

  it('an extern function whose prototype id does not exist is a typed error naming it', () => {
    const obj = ObjectFile.read(fixture('kfunc.bpf.o'));
    const f = [...obj.btf!.types()].find((t) => t.kind === 'func' && t.linkage === 2)!;
    (f as { type: number }).type = 77777;
    const kernel = Btf.parse(readFileSync('/sys/kernel/btf/vmlinux'));
    expect(() => prepareCollection(obj, { kernelBtf: kernel })).toThrow(
      new RegExp(
        `extern function '${f.name}' \\(BTF type ${f.id}\\) refers to BTF type 77777, which does not exist`,
      ),
    );
  });
});
