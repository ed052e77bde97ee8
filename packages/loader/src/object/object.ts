// ObjectFile: a clang-built eBPF object read into maps, global data, variables, externs and
// programs (linked by ../linker/programs.ts: subprograms in, relocations as symbolic references).
// Pure: no syscalls — the linking stage (../linker/prepare.ts) and loadCollection
// (../collection.ts) turn it into kernel objects.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Insn } from '@bpfkit/asm';
import {
  Btf,
  type BtfExt,
  type BtfStruct,
  type BtfType,
  type CoreRelo,
  type FuncInfo,
  type LineInfo,
  parseBtfExt,
} from '@bpfkit/btf';
import { type AttachType, cString, MapType, type ProgType, ProgType as ProgTypes } from '@bpfkit/sys';
import { linkPrograms } from '../linker/programs.js';
import {
  type Elf,
  ElfError,
  type ElfSection,
  type ElfSymbol,
  parseElf,
  SHF,
  SHN_UNDEF,
  SHT,
  STT,
} from './elf.js';
import { DATA_SECTION } from './sections.js';

export interface ObjectProgram {
  /** The C function's name: the key in a loaded collection. */
  name: string;
  /** The ELF section, as written (a leading `?` included). */
  section: string;
  /** Undefined when the section names no program type: loading the program then fails, reading the object does not. */
  type: ProgType | undefined;
  attachType: AttachType | undefined;
  attachTo: string | undefined;
  flags: number;
  /** Loaded unless asked otherwise: false for `?` sections (libbpf's autoload). */
  autoload: boolean;
  /** Main function then every subprogram it calls, calls resolved; maps, data and externs by reference. */
  insns: Insn[];
  /** func_info and line_info with `insnOff` in instruction slots, as BPF_PROG_LOAD takes them. */
  funcInfo: FuncInfo[];
  lineInfo: LineInfo[];
  /** CO-RE relocations with `slot` the instruction they patch. */
  coreRelos: { slot: number; relo: CoreRelo }[];
}

export type PinningKind = 'none' | 'by_name';

export interface ObjectMap {
  name: string;
  /** `.maps` (BTF-defined), `maps` (legacy), a data section (`.rodata`, `.bss`, ...), `.kconfig`, `.struct_ops` or `.struct_ops.link`. */
  section: string;
  kind: 'map' | 'data' | 'kconfig' | 'struct_ops';
  type: MapType;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  numaNode: number;
  mapExtra: bigint;
  pinning: PinningKind;
  /** BTF type ids (in the object's BTF) of key and value, when known. */
  btfKeyTypeId: number;
  btfValueTypeId: number;
  /** For map-in-map: what every inner map looks like. */
  inner: ObjectMap | undefined;
  /** Initial slots of program arrays and map-in-maps: slot → program or map name. */
  initial: { slot: number; kind: 'prog' | 'map'; name: string }[];
  /**
   * Initial contents of global data; undefined for `.bss` (NOBITS), which the kernel zero-fills,
   * so reading an object never allocates its `.bss`.
   */
  data: Uint8Array | undefined;
  /** `.rodata`: frozen after its contents are written, read-only to programs. */
  readonly: boolean;
  /** For a `.struct_ops`/`.struct_ops.link` variable: the ops table it declares. */
  structOps: ObjectStructOps | undefined;
}

/** A variable of `.struct_ops` (or `.struct_ops.link`): a kernel ops table filled with programs. */
export interface ObjectStructOps {
  /** The struct's name, the kernel's ops type it stands for (`tcp_congestion_ops`). */
  typeName: string;
  /** The struct's id in the object's BTF. */
  typeId: number;
  /** The variable's bytes as compiled (the function pointers are relocations, zero here). */
  data: Uint8Array;
  /** Function-pointer members set to a program, from the section's relocations: member → program name. */
  programs: Record<string, string>;
}

/** A global variable of a data section, typed through BTF: what `constants` can set. */
export interface ObjectVariable {
  name: string;
  section: string;
  offset: number;
  size: number;
  typeId: number;
}

/** An extern: `.kconfig` values resolved from the kernel config, `__ksym` from the kernel's BTF. */
export interface ObjectExtern {
  name: string;
  kind: 'kconfig' | 'ksym' | 'kfunc';
  weak: boolean;
  typeId: number;
  /** Offset in the `.kconfig` map. */
  offset: number;
  size: number;
}

const BPF_F_RDONLY_PROG = 0x80;
const BPF_F_LINK = 0x2000;
/**
 * Largest global data section (`.data*`, `.rodata*`, `.bss*`, and `.kconfig`): a data section
 * is the one value of an array map, and the kernel refuses an array value larger than
 * KMALLOC_MAX_SIZE (E2BIG), which is 4 MiB with 4 KiB pages.
 */
export const MAX_DATA_SECTION = 4 << 20;
/** Largest sum of an object's global data sections: what loading it may allocate for them. */
export const MAX_DATA_TOTAL = 64 << 20;

export class ObjectFile {
  readonly name: string;
  readonly elf: Elf;
  readonly btf: Btf | undefined;
  readonly btfExt: BtfExt | undefined;
  readonly license: string;
  readonly kernVersion: number;
  readonly programs = new Map<string, ObjectProgram>();
  readonly maps = new Map<string, ObjectMap>();
  readonly variables = new Map<string, ObjectVariable>();
  readonly externs = new Map<string, ObjectExtern>();

  private constructor(name: string, elf: Elf) {
    this.name = name;
    this.elf = elf;
    const btfSec = elf.section('.BTF');
    this.btf = btfSec ? Btf.parse(btfSec.data) : undefined;
    const extSec = elf.section('.BTF.ext');
    this.btfExt = extSec && this.btf ? parseBtfExt(extSec.data, this.btf.raw.strings) : undefined;
    const lic = elf.section('license');
    this.license = lic ? cString(lic.data) : '';
    const ver = elf.section('version');
    this.kernVersion =
      ver && ver.data.length >= 4
        ? new DataView(ver.data.buffer, ver.data.byteOffset, 4).getUint32(0, true)
        : 0;
    this.#collectExterns();
    this.#collectMaps();
    this.#collectData();
    for (const [name, p] of linkPrograms(this)) this.programs.set(name, p);
    this.#collectStructOps('.struct_ops', 0);
    this.#collectStructOps('.struct_ops.link', BPF_F_LINK);
  }

  /** Read an object from bytes or a path. Throws ElfError / BtfParseError on malformed input. */
  static read(bytesOrPath: Uint8Array | string, name?: string): ObjectFile {
    const bytes = typeof bytesOrPath === 'string' ? readFileSync(bytesOrPath) : bytesOrPath;
    const objName =
      name ?? (typeof bytesOrPath === 'string' ? basename(bytesOrPath).replace(/\.(bpf\.)?o$/, '') : 'obj');
    return new ObjectFile(
      objName,
      parseElf(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
    );
  }

  #sym(name: string, section: ElfSection): ElfSymbol | undefined {
    return this.elf.symbols.find(
      (s) => s.name === name && s.shndx === section.index && s.type !== STT.SECTION,
    );
  }

  #datasec(name: string): (BtfType & { kind: 'datasec' }) | undefined {
    return this.btf?.findAll(name, 'datasec')[0];
  }

  // ---- externs ---------------------------------------------------------------------------------

  #collectExterns(): void {
    const kconfig = this.#datasec('.kconfig');
    const ksyms = this.#datasec('.ksyms');
    const varsIn = (sec: typeof kconfig) =>
      new Set((sec?.vars ?? []).map((v) => this.btf!.typeById(v.type).name));
    const inKconfig = varsIn(kconfig);
    const inKsyms = varsIn(ksyms);
    const undef = this.elf.symbols.filter((s) => s.shndx === SHN_UNDEF && s.name && s.type !== STT.FILE);
    const kconfigs: { ext: ObjectExtern; align: number }[] = [];
    for (const s of undef) {
      const btfVar = this.btf?.findAll(s.name, 'var')[0];
      const btfFunc = this.btf?.findAll(s.name, 'func')[0];
      const isKconfig = inKconfig.has(s.name) || (!inKsyms.has(s.name) && /^(CONFIG_|LINUX_)/.test(s.name));
      if (isKconfig) {
        const size = btfVar ? this.btf!.sizeof(btfVar.type) : 8;
        const align = btfVar ? Math.min(this.btf!.alignof(btfVar.type), 8) : 8;
        if (size > MAX_DATA_SECTION)
          throw new ElfError(
            `kconfig extern '${s.name}' of ${size} bytes takes .kconfig past ${MAX_DATA_SECTION} bytes`,
            '.kconfig',
            0,
          );
        const ext: ObjectExtern = {
          name: s.name,
          kind: 'kconfig',
          weak: s.bind === 2,
          typeId: btfVar?.type ?? 0,
          offset: 0,
          size,
        };
        kconfigs.push({ ext, align });
        this.externs.set(s.name, ext);
      } else {
        this.externs.set(s.name, {
          name: s.name,
          kind: btfFunc || s.type === STT.FUNC ? 'kfunc' : 'ksym',
          weak: s.bind === 2,
          typeId: btfVar?.type ?? btfFunc?.type ?? 0,
          offset: 0,
          size: 0,
        });
      }
    }
    // The .kconfig layout libbpf gives: by alignment (largest first), then size (smallest
    // first), then name; the map is exactly as long as its last value.
    kconfigs.sort(
      (a, b) =>
        b.align - a.align ||
        a.ext.size - b.ext.size ||
        (a.ext.name < b.ext.name ? -1 : a.ext.name > b.ext.name ? 1 : 0),
    );
    let offset = 0;
    for (const { ext, align } of kconfigs) {
      ext.offset = Math.ceil(offset / align) * align;
      offset = ext.offset + ext.size;
      if (offset > MAX_DATA_SECTION)
        throw new ElfError(
          `kconfig extern '${ext.name}' of ${ext.size} bytes takes .kconfig past ${MAX_DATA_SECTION} bytes`,
          '.kconfig',
          0,
        );
    }
    if (offset > 0) {
      const prefix = this.name.replace(/[^\w]/g, '_').slice(0, 7);
      this.maps.set('.kconfig', {
        ...this.#mapDefaults(`${prefix}.kconfig`, '.kconfig'),
        kind: 'kconfig',
        valueSize: offset,
        readonly: true,
        flags: BPF_F_RDONLY_PROG,
        btfValueTypeId: kconfig?.id ?? 0,
      });
    }
  }

  #mapDefaults(name: string, section: string): ObjectMap {
    return {
      name,
      section,
      kind: 'data',
      type: MapType.ARRAY,
      keySize: 4,
      valueSize: 0,
      maxEntries: 1,
      flags: 0,
      numaNode: 0,
      mapExtra: 0n,
      pinning: 'none',
      btfKeyTypeId: 0,
      btfValueTypeId: 0,
      inner: undefined,
      initial: [],
      data: undefined,
      readonly: false,
      structOps: undefined,
    };
  }

  // ---- maps ------------------------------------------------------------------------------------

  #collectMaps(): void {
    const legacy = this.elf.section('maps');
    if (legacy) {
      for (const s of this.elf.symbols.filter(
        (x) => x.shndx === legacy.index && x.type !== STT.SECTION && x.name,
      )) {
        const size = s.size || 20;
        if (s.value + Math.min(size, 20) > legacy.data.length || size < 16)
          throw new ElfError(
            `legacy map '${s.name}' [${s.value}, +${size}) does not fit`,
            'maps',
            legacy.offset + s.value,
          );
        const dv = new DataView(legacy.data.buffer, legacy.data.byteOffset + s.value, Math.min(size, 20));
        this.maps.set(s.name, {
          ...this.#mapDefaults(s.name, 'maps'),
          kind: 'map',
          type: dv.getUint32(0, true) as MapType,
          keySize: dv.getUint32(4, true),
          valueSize: dv.getUint32(8, true),
          maxEntries: dv.getUint32(12, true),
          flags: size >= 20 ? dv.getUint32(16, true) : 0,
        });
      }
    }
    const sec = this.elf.section('.maps');
    if (!sec) return;
    const ds = this.#datasec('.maps');
    if (!ds || !this.btf)
      throw new ElfError('BTF-defined maps need the .BTF section (compile with -g)', '.maps', sec.offset);
    const starts = this.elf.symbols
      .filter((x) => x.shndx === sec.index && x.type !== STT.SECTION)
      .map((x) => x.value);
    for (const v of ds.vars) {
      const varType = this.btf.typeById(v.type);
      if (varType.kind !== 'var') continue;
      const sym = this.#sym(varType.name, sec);
      const m = this.#btfMapDef(varType.name, varType.type, '.maps');
      const base = sym?.value ?? v.offset;
      // Initial slots: relocations into the `values` member.
      const def = this.btf.resolve(varType.type);
      const valuesMember = def.kind === 'struct' ? def.members.find((x) => x.name === 'values') : undefined;
      if (valuesMember) {
        // `values` is a flexible array: it runs up to the next map variable (or the section's end).
        const from = base + valuesMember.bitOffset / 8;
        const to = Math.min(sec.size, ...starts.filter((v) => v > base));
        for (const r of this.elf.relocs.get(sec.index) ?? []) {
          if (r.offset < from || r.offset >= to || (r.offset - from) % 8 !== 0) continue;
          const target = r.symbol;
          const slot = (r.offset - from) / 8;
          if (slot >= m.maxEntries && m.maxEntries > 0) continue;
          const targetSec = this.elf.sections[target.shndx];
          const kind = targetSec && targetSec.flags & SHF.EXECINSTR ? 'prog' : 'map';
          m.initial.push({ slot, kind, name: target.name });
        }
      }
      this.maps.set(m.name, m);
    }
  }

  /** A BTF-defined map: a struct of `__uint`/`__type`/`__array` members. */
  #btfMapDef(name: string, typeId: number, section: string, inner = false): ObjectMap {
    const btf = this.btf!;
    const t = btf.resolve(typeId);
    if (t.kind !== 'struct') throw new ElfError(`map '${name}' is a ${t.kind}, not a struct`, section, 0);
    const m: ObjectMap = {
      ...this.#mapDefaults(name, section),
      kind: 'map',
      type: MapType.UNSPEC as MapType,
      keySize: 0,
      valueSize: 0,
      maxEntries: 0,
    };
    const uint = (mt: number, field: string): number => {
      const p = btf.resolve(mt);
      const arr = p.kind === 'ptr' ? btf.resolve(p.type) : undefined;
      if (arr?.kind !== 'array') throw new ElfError(`map '${name}': '${field}' is not __uint()`, section, 0);
      return arr.nelems;
    };
    const typed = (mt: number, field: string): number => {
      const p = btf.resolve(mt);
      if (p.kind !== 'ptr') throw new ElfError(`map '${name}': '${field}' is not __type()`, section, 0);
      return p.type;
    };
    for (const mem of t.members) {
      switch (mem.name) {
        case 'type':
          m.type = uint(mem.type, 'type') as MapType;
          break;
        case 'max_entries':
          m.maxEntries = uint(mem.type, 'max_entries');
          break;
        case 'map_flags':
          m.flags = uint(mem.type, 'map_flags');
          break;
        case 'numa_node':
          m.numaNode = uint(mem.type, 'numa_node');
          break;
        case 'map_extra':
          m.mapExtra = BigInt(uint(mem.type, 'map_extra'));
          break;
        case 'key_size':
          m.keySize = uint(mem.type, 'key_size');
          break;
        case 'value_size':
          m.valueSize = uint(mem.type, 'value_size');
          break;
        case 'key': {
          const id = typed(mem.type, 'key');
          m.keySize = btf.sizeof(id);
          m.btfKeyTypeId = id;
          break;
        }
        case 'value': {
          const id = typed(mem.type, 'value');
          m.valueSize = btf.sizeof(id);
          m.btfValueTypeId = id;
          break;
        }
        case 'pinning': {
          const p = uint(mem.type, 'pinning');
          if (p > 1) throw new ElfError(`map '${name}': unsupported pinning ${p}`, section, 0);
          m.pinning = p === 1 ? 'by_name' : 'none';
          break;
        }
        case 'values': {
          const arr = btf.resolve(mem.type);
          if (arr.kind !== 'array')
            throw new ElfError(`map '${name}': 'values' is not __array()`, section, 0);
          const elem = btf.resolve(arr.type);
          const target = elem.kind === 'ptr' ? btf.resolve(elem.type) : undefined;
          m.valueSize = 4;
          if (target?.kind === 'struct') {
            if (inner) throw new ElfError(`map '${name}': an inner map cannot hold maps itself`, section, 0);
            m.inner = this.#btfMapDef(`${name}.inner`, target.id, section, true);
          }
          break;
        }
        default:
          throw new ElfError(`map '${name}': unknown attribute '${mem.name}'`, section, 0);
      }
    }
    if (m.type === MapType.UNSPEC) throw new ElfError(`map '${name}' has no type`, section, 0);
    if (m.type === MapType.RINGBUF || m.type === MapType.USER_RINGBUF) {
      m.keySize = 0;
      m.valueSize = 0;
    }
    return m;
  }

  // ---- struct_ops -------------------------------------------------------------------------------

  /**
   * Every variable of a `.struct_ops` section becomes a struct_ops map, as libbpf's
   * init_struct_ops_maps makes them (`flags`: BPF_F_LINK for `.struct_ops.link`); the section's
   * relocations say which program fills which function-pointer member. Sizes are the object's
   * until the linking stage lays the value out as the kernel's `bpf_struct_ops_<type>`.
   */
  #collectStructOps(section: string, flags: number): void {
    const sec = this.elf.section(section);
    if (!sec) return;
    const ds = this.#datasec(section);
    if (!ds || !this.btf)
      throw new ElfError(`${section} needs the .BTF section (compile with -g)`, section, sec.offset);
    const vars: { name: string; offset: number; size: number; type: BtfStruct }[] = [];
    for (const v of ds.vars) {
      const vt = this.btf.typeById(v.type);
      if (vt.kind !== 'var') continue;
      const t = this.btf.resolve(vt.type);
      if (t.kind !== 'struct' || !t.name)
        throw new ElfError(
          `${section} variable '${vt.name}' is not of a named struct type`,
          section,
          sec.offset,
        );
      if (v.offset + t.size > sec.size)
        throw new ElfError(`${section} variable '${vt.name}' lies outside the section`, section, sec.offset);
      vars.push({ name: vt.name, offset: v.offset, size: t.size, type: t });
      this.maps.set(vt.name, {
        ...this.#mapDefaults(vt.name, section),
        kind: 'struct_ops',
        type: MapType.STRUCT_OPS,
        valueSize: t.size,
        flags,
        structOps: {
          typeName: t.name,
          typeId: t.id,
          data:
            sec.type === SHT.NOBITS ? new Uint8Array(t.size) : sec.data.slice(v.offset, v.offset + t.size),
          programs: {},
        },
      });
    }
    for (const r of this.elf.relocs.get(sec.index) ?? []) {
      const v = vars.find((x) => r.offset >= x.offset && r.offset < x.offset + x.size);
      if (!v)
        throw new ElfError(`${section}: a relocation at ${r.offset} is in no variable`, section, sec.offset);
      const bit = (r.offset - v.offset) * 8;
      const member = v.type.members.find((m) => m.bitOffset === bit);
      const mt = member ? this.btf.resolve(member.type) : undefined;
      if (!member || mt?.kind !== 'ptr' || this.btf.resolve(mt.type).kind !== 'func_proto')
        throw new ElfError(
          `${section} '${v.name}': a relocation at offset ${r.offset - v.offset} is in no function-pointer member`,
          section,
          sec.offset + r.offset,
        );
      const prog = this.programs.get(r.symbol.name);
      if (!prog || prog.type !== ProgTypes.STRUCT_OPS)
        throw new ElfError(
          `${section} '${v.name}'.${member.name} points at '${r.symbol.name}', which is not a program of a struct_ops section`,
          section,
          sec.offset + r.offset,
        );
      this.maps.get(v.name)!.structOps!.programs[member.name] = prog.name;
    }
  }

  #collectData(): void {
    let total = this.maps.get('.kconfig')?.valueSize ?? 0;
    for (const s of this.elf.sections) {
      if (!DATA_SECTION.test(s.name) || !(s.flags & SHF.ALLOC) || s.flags & SHF.EXECINSTR) continue;
      if (s.size === 0) continue;
      // Sizes are checked before anything is allocated; .bss is never allocated here.
      if (s.size > MAX_DATA_SECTION)
        throw new ElfError(
          `global data of ${s.size} bytes is larger than a map value can be (${MAX_DATA_SECTION} bytes)`,
          s.name,
          s.offset,
        );
      total += s.size;
      if (total > MAX_DATA_TOTAL)
        throw new ElfError(
          `global data sections add up to more than ${MAX_DATA_TOTAL} bytes`,
          s.name,
          s.offset,
        );
      const prefixLen = Math.min(8, Math.max(0, 15 - s.name.length));
      const mapName = `${this.name.replace(/[^\w]/g, '_').slice(0, prefixLen)}${s.name}`.slice(0, 15);
      const readonly = s.name.startsWith('.rodata');
      const ds = this.#datasec(s.name);
      this.maps.set(s.name, {
        ...this.#mapDefaults(mapName, s.name),
        valueSize: s.size,
        data: s.type === SHT.NOBITS ? undefined : s.data.slice(),
        readonly,
        flags: readonly ? BPF_F_RDONLY_PROG : 0,
        btfValueTypeId: ds?.id ?? 0,
      });
      for (const v of ds?.vars ?? []) {
        const vt = this.btf!.typeById(v.type);
        if (vt.kind !== 'var') continue;
        const sym = this.#sym(vt.name, s);
        const offset = sym?.value ?? v.offset;
        const size = this.btf!.sizeof(vt.type);
        if (offset + size > s.size)
          throw new ElfError(
            `variable '${vt.name}' [${offset}, +${size}) lies outside the section (${s.size} bytes)`,
            s.name,
            s.offset + Math.min(offset, s.size),
          );
        this.variables.set(vt.name, { name: vt.name, section: s.name, offset, size, typeId: vt.type });
      }
    }
  }
}
