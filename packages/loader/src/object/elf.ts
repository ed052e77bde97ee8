// A small, pure reader for ELF64 little-endian relocatable objects as clang emits for
// `-target bpf`. Every malformed input becomes an ElfError naming the section and offset.

export const SHT = { PROGBITS: 1, SYMTAB: 2, STRTAB: 3, RELA: 4, NOBITS: 8, REL: 9, DYNSYM: 11 } as const;
export const SHF = { WRITE: 1, ALLOC: 2, EXECINSTR: 4 } as const;
export const STT = { NOTYPE: 0, OBJECT: 1, FUNC: 2, SECTION: 3, FILE: 4 } as const;
export const STB = { LOCAL: 0, GLOBAL: 1, WEAK: 2 } as const;
export const SHN_UNDEF = 0;
export const SHN_ABS = 0xfff1;
export const SHN_COMMON = 0xfff2;
export const EM_BPF = 247;
/** BPF relocation types (llvm/BinaryFormat/ELFRelocs/BPF.def). */
export const R_BPF = {
  NONE: 0,
  '64_64': 1,
  '64_ABS64': 2,
  '64_ABS32': 3,
  '64_NODYLD32': 4,
  '64_32': 10,
} as const;

/** Malformed ELF: says what, in which section, at which byte. */
export class ElfError extends Error {
  override name = 'ElfError';
  constructor(
    message: string,
    readonly section: string | undefined,
    readonly offset: number,
  ) {
    super(`${section ? `section '${section}': ` : ''}${message} (at byte ${offset})`);
  }
}

export interface ElfSection {
  index: number;
  name: string;
  type: number;
  flags: number;
  /** Virtual address (executables and shared objects). */
  addr: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  entsize: number;
  /** The section's bytes (empty for NOBITS such as .bss). */
  data: Uint8Array;
}

export interface ElfSymbol {
  index: number;
  name: string;
  bind: number;
  type: number;
  visibility: number;
  /** Section index, or SHN_UNDEF for externs. */
  shndx: number;
  value: number;
  size: number;
}

export interface ElfReloc {
  /** Byte offset in the section the relocation applies to. */
  offset: number;
  type: number;
  symbol: ElfSymbol;
}

export interface Elf {
  machine: number;
  sections: ElfSection[];
  /** `.symtab` symbols (for BPF objects, the only table). */
  symbols: ElfSymbol[];
  /** `.dynsym` symbols of executables and shared objects. */
  dynamicSymbols: ElfSymbol[];
  /** Relocations by the index of the section they apply to. */
  relocs: Map<number, ElfReloc[]>;
  section(name: string): ElfSection | undefined;
}

const decoder = new TextDecoder();

function str(table: Uint8Array, off: number, what: string, at: number, section?: string): string {
  if (off >= table.length)
    throw new ElfError(`${what}: string offset ${off} is outside the string table`, section, at);
  const end = table.indexOf(0, off);
  if (end < 0) throw new ElfError(`${what}: string at ${off} is not NUL-terminated`, section, at);
  return decoder.decode(table.subarray(off, end));
}

/**
 * Parse an ELF64 LE file: a BPF object by default, any machine with `{ anyMachine: true }`
 * (executables and libraries for uprobes). Pure; throws {@link ElfError} on malformed input.
 */
export function parseElf(bytes: Uint8Array, opts: { anyMachine?: boolean } = {}): Elf {
  if (bytes.length < 64)
    throw new ElfError(`file of ${bytes.length} bytes is shorter than an ELF header`, undefined, 0);
  if (bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46)
    throw new ElfError('not an ELF file (bad magic)', undefined, 0);
  if (bytes[4] !== 2) throw new ElfError('only 64-bit ELF is supported', undefined, 4);
  if (bytes[5] !== 1) throw new ElfError('only little-endian ELF is supported', undefined, 5);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const machine = dv.getUint16(18, true);
  if (machine !== EM_BPF && !opts.anyMachine)
    throw new ElfError(`machine ${machine} is not BPF (${EM_BPF}); compile with -target bpf`, undefined, 18);
  const shoff = Number(dv.getBigUint64(40, true));
  const shentsize = dv.getUint16(58, true);
  const shnum = dv.getUint16(60, true);
  const shstrndx = dv.getUint16(62, true);
  if (shentsize !== 64) throw new ElfError(`section header size ${shentsize} is not 64`, undefined, 58);
  if (shoff + shnum * 64 > bytes.length || (shoff < 64 && shnum > 0))
    throw new ElfError(`section headers [${shoff}, +${shnum}×64) exceed the file`, undefined, 40);
  if (shstrndx >= shnum)
    throw new ElfError(`section name table index ${shstrndx} is out of range`, undefined, 62);

  const raw = Array.from({ length: shnum }, (_, i) => {
    const at = shoff + i * 64;
    const s = {
      nameOff: dv.getUint32(at, true),
      type: dv.getUint32(at + 4, true),
      flags: Number(dv.getBigUint64(at + 8, true)),
      addr: Number(dv.getBigUint64(at + 16, true)),
      offset: Number(dv.getBigUint64(at + 24, true)),
      size: Number(dv.getBigUint64(at + 32, true)),
      link: dv.getUint32(at + 40, true),
      info: dv.getUint32(at + 44, true),
      entsize: Number(dv.getBigUint64(at + 56, true)),
      at,
    };
    if (s.type !== SHT.NOBITS && (s.offset > bytes.length || s.size > bytes.length - s.offset))
      throw new ElfError(
        `section ${i} data [${s.offset}, +${s.size}) exceeds the file (${bytes.length} bytes)`,
        undefined,
        at + 24,
      );
    return s;
  });
  const shstr = raw[shstrndx]!;
  if (shstr.type === SHT.NOBITS)
    throw new ElfError(`section name table ${shstrndx} has no data (NOBITS)`, undefined, shstr.at + 4);
  const names = bytes.subarray(shstr.offset, shstr.offset + shstr.size);
  const sections: ElfSection[] = raw.map((s, index) => ({
    index,
    name: index === 0 ? '' : str(names, s.nameOff, `section ${index} name`, s.at, 'section headers'),
    type: s.type,
    flags: s.flags,
    addr: s.addr,
    offset: s.offset,
    size: s.size,
    link: s.link,
    info: s.info,
    entsize: s.entsize,
    data: s.type === SHT.NOBITS ? new Uint8Array() : bytes.subarray(s.offset, s.offset + s.size),
  }));

  const symbols = readSymbols(
    sections.find((s) => s.type === SHT.SYMTAB),
    sections,
  );
  const dynamicSymbols = readSymbols(
    sections.find((s) => s.type === SHT.DYNSYM),
    sections,
  );

  const relocs = new Map<number, ElfReloc[]>();
  // Relocations matter only for BPF objects; executables and libraries are read for symbols.
  for (const s of opts.anyMachine ? [] : sections) {
    if (s.type === SHT.RELA)
      throw new ElfError('RELA relocations are not used by BPF objects', s.name, s.offset);
    if (s.type !== SHT.REL) continue;
    if (s.size % 16 !== 0) throw new ElfError(`size ${s.size} is not a multiple of 16`, s.name, s.offset);
    const target = sections[s.info];
    if (!target) throw new ElfError(`applies to section ${s.info}, which does not exist`, s.name, s.offset);
    const rdv = new DataView(s.data.buffer, s.data.byteOffset, s.data.byteLength);
    const list: ElfReloc[] = [];
    for (let at = 0; at < s.size; at += 16) {
      const offset = Number(rdv.getBigUint64(at, true));
      const info = rdv.getBigUint64(at + 8, true);
      const symIdx = Number(info >> 32n);
      const symbol = symbols[symIdx];
      if (!symbol) throw new ElfError(`relocation against unknown symbol ${symIdx}`, s.name, s.offset + at);
      if (target.type !== SHT.NOBITS && offset >= Math.max(target.size, 1))
        throw new ElfError(
          `relocation offset ${offset} is outside '${target.name}' (${target.size} bytes)`,
          s.name,
          s.offset + at,
        );
      list.push({ offset, type: Number(info & 0xffffffffn), symbol });
    }
    relocs.set(target.index, list);
  }
  const byName = new Map(sections.map((s) => [s.name, s]));
  return { machine, sections, symbols, dynamicSymbols, relocs, section: (name) => byName.get(name) };
}

function readSymbols(symtab: ElfSection | undefined, sections: ElfSection[]): ElfSymbol[] {
  const symbols: ElfSymbol[] = [];
  if (!symtab) return symbols;
  if (symtab.entsize !== 24)
    throw new ElfError(`symbol entry size ${symtab.entsize} is not 24`, symtab.name, symtab.offset);
  if (symtab.size % 24 !== 0)
    throw new ElfError(`size ${symtab.size} is not a multiple of 24`, symtab.name, symtab.offset);
  const strtab = sections[symtab.link];
  if (!strtab || strtab.type !== SHT.STRTAB)
    throw new ElfError(
      `links to section ${symtab.link}, which is not a string table`,
      symtab.name,
      symtab.offset,
    );
  const sdv = new DataView(symtab.data.buffer, symtab.data.byteOffset, symtab.data.byteLength);
  for (let i = 0; i < symtab.size / 24; i++) {
    const at = i * 24;
    const info = sdv.getUint8(at + 4);
    const shndx = sdv.getUint16(at + 6, true);
    const type = info & 0xf;
    let name = str(strtab.data, sdv.getUint32(at, true), `symbol ${i} name`, symtab.offset + at, symtab.name);
    if (type === STT.SECTION && !name && sections[shndx]) name = sections[shndx]!.name;
    symbols.push({
      index: i,
      name,
      bind: info >> 4,
      type,
      visibility: sdv.getUint8(at + 5) & 3,
      shndx,
      value: Number(sdv.getBigUint64(at + 8, true)),
      size: Number(sdv.getBigUint64(at + 16, true)),
    });
  }
  return symbols;
}
