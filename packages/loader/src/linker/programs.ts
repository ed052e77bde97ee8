// Program linking: each program's main function decoded from its section, ELF relocations
// turned into symbolic references (maps, global data, externs, calls), and every subprogram it
// reaches placed after it once, calls re-targeted, func/line info and CO-RE relocations moved
// with their functions. Pure; ObjectFile.read runs it, the rest of linking is prepare.ts.
import { Class, decode, type Insn, JmpOp, LD_IMM64, Pseudo, slots } from '@bpfkit/asm';
import type { CoreRelo, FuncInfo, LineInfo } from '@bpfkit/btf';
import {
  type Elf,
  ElfError,
  type ElfReloc,
  type ElfSection,
  R_BPF,
  SHF,
  SHN_UNDEF,
  SHT,
  STT,
} from '../object/elf.js';
import type { ObjectFile, ObjectProgram } from '../object/object.js';
import { DATA_SECTION, programForSection } from '../object/sections.js';

/** What linking reads of an object. */
export type ObjectParts = Pick<ObjectFile, 'elf' | 'externs' | 'maps' | 'btfExt'>;

const CALL = Class.JMP | JmpOp.call;

/** A function symbol: its section and slot range. */
interface Func {
  section: ElfSection;
  name: string;
  /** Slot range in the section. */
  start: number;
  end: number;
}

function functions(elf: Elf): Func[] {
  const out: Func[] = [];
  for (const s of elf.sections) {
    if (s.type !== SHT.PROGBITS || !(s.flags & SHF.EXECINSTR) || s.size === 0) continue;
    if (s.size % 8 !== 0)
      throw new ElfError(`size ${s.size} is not a whole number of instructions`, s.name, s.offset);
    const syms = elf.symbols.filter((x) => x.shndx === s.index && x.type === STT.FUNC);
    for (const f of syms) {
      if (f.value >= s.size)
        throw new ElfError(`function '${f.name}' starts past the section end`, s.name, s.offset);
      if (f.value % 8 !== 0)
        throw new ElfError(`function '${f.name}' starts mid-instruction`, s.name, s.offset + f.value);
      const size = f.size || s.size - f.value;
      if (f.value + size > s.size)
        throw new ElfError(`function '${f.name}' runs past the section end`, s.name, s.offset + f.value);
      out.push({ section: s, name: f.name, start: f.value / 8, end: (f.value + size) / 8 });
    }
  }
  return out;
}

/**
 * Every program of an object: each function outside `.text` with the subprograms it calls
 * linked in after it (once each), calls re-targeted, func/line info and CO-RE relocations
 * moved with their functions, and relocations turned into symbolic references.
 */
export function linkPrograms(obj: ObjectParts): Map<string, ObjectProgram> {
  const out = new Map<string, ObjectProgram>();
  const funcs = functions(obj.elf);
  const funcAt = (sec: number, slot: number) =>
    funcs.find((f) => f.section.index === sec && f.start === slot);
  for (const f of funcs) {
    if (f.section.name === '.text') continue;
    // A section naming no program type fails only its program, and only when it is loaded (as
    // with libbpf, that is by default: leave it out, or give it a type, to load the others).
    const kind = programForSection(f.section.name) ?? {
      type: undefined,
      attachType: undefined,
      attachTo: undefined,
      flags: 0,
      autoload: !f.section.name.startsWith('?'),
    };
    out.set(f.name, { name: f.name, section: f.section.name, ...kind, ...linkProgram(obj, f, funcAt) });
  }
  return out;
}

/** Decode a function's instructions with their relocations turned into references. */
function decodeFunc(
  obj: ObjectParts,
  f: Func,
): {
  insns: Insn[];
  slotOf: number[];
  calls: Map<number, { sec: number; slot: number }>;
} {
  const sec = f.section;
  const all = decodeAt(sec, f.start * 8, f.end * 8);
  const relocs = new Map<number, ElfReloc>();
  for (const r of obj.elf.relocs.get(sec.index) ?? []) relocs.set(r.offset, r);
  const insns: Insn[] = [];
  const slotOf: number[] = [];
  const calls = new Map<number, { sec: number; slot: number }>();
  let slot = f.start;
  for (const insn of all) {
    const here = slot;
    slot += slots(insn);
    const r = relocs.get(here * 8);
    const copy: Insn = { ...insn };
    const isCall = insn.code === CALL;
    if (r) applyReloc(obj, copy, r, here, sec, calls, insns.length);
    else if (isCall && insn.src === Pseudo.CALL)
      calls.set(insns.length, { sec: sec.index, slot: here + insn.imm + 1 });
    insns.push(copy);
    slotOf.push(here);
  }
  return { insns, slotOf, calls };
}

function applyReloc(
  obj: ObjectParts,
  insn: Insn,
  r: ElfReloc,
  slot: number,
  sec: ElfSection,
  calls: Map<number, { sec: number; slot: number }>,
  idx: number,
): void {
  const sym = r.symbol;
  const where = () => `relocation at instruction ${slot} against '${sym.name}'`;
  if (r.type !== R_BPF['64_64'] && r.type !== R_BPF['64_32'])
    throw new ElfError(`${where()}: unsupported relocation type ${r.type}`, sec.name, r.offset);
  const target = sym.shndx === SHN_UNDEF ? undefined : obj.elf.sections[sym.shndx];
  if (sym.shndx === SHN_UNDEF) {
    const ext = obj.externs.get(sym.name);
    if (!ext) throw new ElfError(`${where()}: unknown extern`, sec.name, r.offset);
    if (ext.kind === 'kconfig') insn.ref = { kind: 'mapValue', name: '.kconfig', offset: ext.offset };
    else if (insn.code === CALL) {
      insn.src = Pseudo.KFUNC_CALL;
      insn.ref = { kind: 'kfunc', name: sym.name };
    } else insn.ref = { kind: 'ksym', name: sym.name };
    return;
  }
  if (!target) throw new ElfError(`${where()}: symbol in unknown section ${sym.shndx}`, sec.name, r.offset);
  if (target.flags & SHF.EXECINSTR) {
    // bpf-to-bpf call or a function pointer (ld_imm64 src=BPF_PSEUDO_FUNC)
    const base = sym.type === STT.SECTION ? 0 : sym.value / 8;
    const imm = insn.code === LD_IMM64 ? insn.imm / 8 : insn.imm;
    calls.set(idx, { sec: target.index, slot: base + imm + 1 - (insn.code === LD_IMM64 ? 1 : 0) });
    if (insn.code === LD_IMM64) insn.src = Pseudo.FUNC;
    return;
  }
  if (insn.code !== 0x18)
    throw new ElfError(`${where()}: data relocation on a non-ld_imm64 instruction`, sec.name, r.offset);
  if (target.name === 'maps' || target.name === '.maps') {
    insn.ref = { kind: 'map', name: sym.name };
    return;
  }
  if (obj.maps.has(target.name) && DATA_SECTION.test(target.name)) {
    const offset = (sym.type === STT.SECTION ? 0 : sym.value) + insn.imm;
    insn.imm = 0;
    insn.ref = { kind: 'mapValue', name: target.name, offset };
    return;
  }
  throw new ElfError(
    `${where()}: section '${target.name}' is neither maps nor global data`,
    sec.name,
    r.offset,
  );
}

/** Link a program: its function, then every subprogram reachable by calls, calls patched. */
function linkProgram(obj: ObjectParts, main: Func, funcAt: (sec: number, slot: number) => Func | undefined) {
  const insns: Insn[] = [];
  const funcInfo: FuncInfo[] = [];
  const lineInfo: LineInfo[] = [];
  const coreRelos: { slot: number; relo: CoreRelo }[] = [];
  const placed = new Map<string, number>(); // "sec:slot" → new start slot
  const pending: {
    f: Func;
    calls: Map<number, { sec: number; slot: number }>;
    base: number;
    newSlots: number[];
  }[] = [];
  let total = 0;
  const place = (f: Func): number => {
    const key = `${f.section.index}:${f.start}`;
    const have = placed.get(key);
    if (have !== undefined) return have;
    const start = total;
    placed.set(key, start);
    const d = decodeFunc(obj, f);
    const newSlots: number[] = [];
    for (const insn of d.insns) {
      newSlots.push(total);
      total += slots(insn);
    }
    const base = insns.length;
    insns.push(...d.insns);
    // func/line info and CO-RE relocations move with the function.
    const sec = f.section.name;
    // Only this function's instructions are in `relocated`, so records of others drop out.
    const relocated = new Map(d.slotOf.map((slot, i) => [slot * 8, newSlots[i]!]));
    for (const fi of obj.btfExt?.funcInfo.get(sec) ?? [])
      if (fi.insnOff / 8 === f.start) funcInfo.push({ insnOff: start, typeId: fi.typeId });
    for (const li of obj.btfExt?.lineInfo.get(sec) ?? []) {
      const at = relocated.get(li.insnOff);
      if (at !== undefined) lineInfo.push({ ...li, insnOff: at });
    }
    for (const cr of obj.btfExt?.coreRelos.get(sec) ?? []) {
      const at = relocated.get(cr.insnOff);
      if (at !== undefined) coreRelos.push({ slot: at, relo: cr });
    }
    pending.push({ f, calls: d.calls, base, newSlots });
    return start;
  };
  place(main);
  for (let p = 0; p < pending.length; p++) {
    const { f, calls, base, newSlots } = pending[p]!;
    for (const [idx, target] of calls) {
      const callee = funcAt(target.sec, target.slot);
      if (!callee)
        throw new ElfError(
          `call at instruction ${newSlots[idx]} targets slot ${target.slot}, which starts no function`,
          f.section.name,
          f.section.offset,
        );
      const to = place(callee);
      const insn = insns[base + idx]!;
      insn.imm = to - (newSlots[idx]! + 1);
      if (insn.code === CALL) insn.src = Pseudo.CALL;
    }
  }
  funcInfo.sort((a, b) => a.insnOff - b.insnOff);
  lineInfo.sort((a, b) => a.insnOff - b.insnOff);
  return { insns, funcInfo, lineInfo, coreRelos };
}

function decodeAt(sec: ElfSection, from: number, to: number): Insn[] {
  try {
    return decode(sec.data.subarray(from, to));
  } catch (e) {
    throw new ElfError(`cannot decode instructions: ${(e as Error).message}`, sec.name, sec.offset + from);
  }
}
