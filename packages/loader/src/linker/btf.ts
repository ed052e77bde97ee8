// The object's BTF fixed up for the kernel (the part of libbpf's bpf_object__sanitize_and_load_btf
// that every kernel needs), patched into a copy of the blob: no type is re-encoded.
import {
  BTF_MAGIC,
  Btf,
  type BtfFeatures,
  BtfKind,
  BtfLookupError,
  type BtfType,
  IntEncoding,
} from '@bpfkit/btf';
import { STB, STT } from '../object/elf.js';
import type { ObjectFile } from '../object/object.js';

/** BTF linkage of functions and variables (`enum btf_func_linkage`; variables use 0-2 alike). */
const GLOBAL = 1;
const EXTERN = 2;
const HEADER = 24;
const utf8 = new TextEncoder();

/**
 * The object's BTF made acceptable to the kernel, as libbpf does before loading it: datasec sizes
 * and variable offsets from the ELF, extern functions and variables made global (extern
 * functions' parameters named), hidden global functions made static, `.ksyms` slots pointed at a dummy variable. Type ids stay as they
 * are (an `int` and the dummy are appended). Returns the blob and a lazy index of it (types are
 * decoded only when a map codec reaches them).
 */
export function fixObjectBtf(obj: ObjectFile): { blob: Uint8Array; btf: Btf } {
  const btf = obj.btf!;
  const raw = btf.raw;
  const src = obj.elf.section('.BTF')!.data;
  const le = new DataView(src.buffer, src.byteOffset, 2).getUint16(0, true) === BTF_MAGIC;
  const typeStart = raw.header.hdrLen + raw.header.typeOff;
  const types = src.slice(typeStart, typeStart + raw.header.typeLen);
  const dv = new DataView(types.buffer);
  const get = (at: number) => dv.getUint32(at, le);
  const set = (at: number, v: number) => dv.setUint32(at, v, le);
  /** Where type `id`'s record starts in `types`. */
  const rec = (id: number) => raw.offsets[id]! - typeStart;
  const count = btf.typeCount;
  const byId = (id: number, what: () => string): BtfType => {
    if (!(id > 0 && id < count))
      throw new BtfLookupError(`${what()} refers to BTF type ${id}, which does not exist`);
    return btf.typeById(id);
  };

  // Appended strings and types.
  const strings: Uint8Array[] = [raw.strings];
  let strLen = raw.strings.length;
  const addString = (s: string): number => {
    const off = strLen;
    const b = utf8.encode(`${s}\0`);
    strings.push(b);
    strLen += b.length;
    return off;
  };
  const extra: number[] = [];
  let nextId = count;
  let intId = btf.findAll('int', 'int').find((t) => t.size === 4)?.id;
  if (intId === undefined) {
    extra.push(addString('int'), BtfKind.INT << 24, 4, (IntEncoding.SIGNED << 24) | 32);
    intId = nextId++;
  }
  const dummyId = nextId++;
  extra.push(addString('__bpfkit_ksym'), BtfKind.VAR << 24, intId, GLOBAL);
  let argName: number | undefined;

  const makeGlobal = (t: BtfType & { kind: 'var' }) => set(rec(t.id) + 12, GLOBAL);
  const symbols = new Map(obj.elf.symbols.map((s) => [`${s.shndx}:${s.name}`, s]));
  const hiddenFuncs = new Set(
    obj.elf.symbols
      .filter(
        (s) => s.type === STT.FUNC && s.bind !== STB.LOCAL && (s.visibility === 1 || s.visibility === 2),
      )
      .map((s) => s.name),
  );
  for (let id = 1; id < count; id++) {
    const kind = raw.kinds[id];
    if (kind === BtfKind.FUNC) {
      // Kernel-function externs become global functions with named parameters.
      const t = btf.typeById(id) as BtfType & { kind: 'func' };
      // A global subprogram of hidden or internal visibility (usdt.bpf.h's `__weak __hidden`
      // helpers) becomes static, as libbpf marks it: the verifier then checks it with its
      // caller's context instead of on its own (where pointer arguments may be NULL).
      if (t.linkage === GLOBAL && hiddenFuncs.has(t.name)) {
        set(rec(id) + 4, get(rec(id) + 4) & ~0xffff);
        continue;
      }
      if (t.linkage !== EXTERN) continue;
      set(rec(id) + 4, (get(rec(id) + 4) & ~0xffff) | GLOBAL);
      const proto = byId(t.type, () => `extern function '${t.name}' (BTF type ${t.id})`);
      if (proto.kind === 'func_proto')
        proto.params.forEach((p, i) => {
          if (!p.type || p.name) return;
          argName ??= addString('__bpfkit_arg');
          set(rec(proto.id) + 12 + i * 8, argName);
        });
      continue;
    }
    if (kind !== BtfKind.DATASEC) continue;
    const t = btf.typeById(id) as BtfType & { kind: 'datasec' };
    let vars = t.vars.map((v) => ({ ...v }));
    let size = t.size;
    if (t.name === '.ksyms') {
      // Each slot points at the dummy variable (functions) or becomes a global int (variables).
      vars.forEach((v, i) => {
        const vt = byId(v.type, () => `.ksyms variable #${i}`);
        if (vt.kind === 'func') v.type = dummyId;
        else if (vt.kind === 'var') {
          makeGlobal(vt);
          set(rec(vt.id) + 8, intId!);
        }
        v.offset = i * 4;
        v.size = 4;
      });
      size = vars.length * 4;
    } else if (t.name === '.kconfig') {
      for (const v of vars) {
        const vt = byId(v.type, () => 'a .kconfig variable');
        if (vt.kind !== 'var') continue;
        makeGlobal(vt);
        v.offset = obj.externs.get(vt.name)?.offset ?? v.offset;
      }
      size = obj.maps.get('.kconfig')?.valueSize ?? size;
    } else {
      const sec = obj.elf.section(t.name);
      if (!sec) continue;
      size = sec.size;
      for (const v of vars) {
        const vt = byId(v.type, () => `a variable of datasec '${t.name}'`);
        if (vt.kind !== 'var') continue;
        const sym = symbols.get(`${sec.index}:${vt.name}`);
        if (sym) v.offset = sym.value;
        if (vt.linkage === EXTERN) makeGlobal(vt);
      }
    }
    if (t.name !== '.ksyms') vars = vars.sort((a, b) => a.offset - b.offset);
    const at = rec(id);
    set(at + 8, size);
    vars.forEach((v, i) => {
      set(at + 12 + i * 12, v.type);
      set(at + 16 + i * 12, v.offset);
      set(at + 20 + i * 12, v.size);
    });
  }

  return assemble(types, extra, strings, le);
}

/**
 * The object's BTF rewritten for a kernel that lacks some of it, as libbpf's
 * bpf_object__sanitize_btf does (type ids stay; one `int` may be appended): VAR and DECL_TAG
 * become a 1-byte INT, DATASEC a STRUCT of its variables (its name's dots made underscores),
 * FUNC_PROTO an ENUM and FUNC a TYPEDEF without BTF functions, global FUNCs static without global
 * linkage, FLOAT an anonymous empty STRUCT of its size, TYPE_TAG a CONST, ENUM64 a UNION of
 * 1-byte members and signed ENUMs unsigned without ENUM64. With every feature present the blob is
 * returned as it is.
 */
export function sanitizeBtf(
  fixed: { blob: Uint8Array; btf: Btf },
  have: BtfFeatures,
): { blob: Uint8Array; btf: Btf } {
  const need =
    !have.func ||
    !have.globalFunc ||
    !have.datasec ||
    !have.float ||
    !have.declTag ||
    !have.typeTag ||
    !have.enum64;
  if (!need) return fixed;
  const raw = fixed.btf.raw;
  const src = fixed.blob;
  const le = new DataView(src.buffer, src.byteOffset, 2).getUint16(0, true) === BTF_MAGIC;
  const typeStart = raw.header.hdrLen + raw.header.typeOff;
  const types = src.slice(typeStart, typeStart + raw.header.typeLen);
  const strings = src.slice(
    raw.header.hdrLen + raw.header.strOff,
    raw.header.hdrLen + raw.header.strOff + raw.header.strLen,
  );
  const dv = new DataView(types.buffer);
  const get = (at: number) => dv.getUint32(at, le);
  const set = (at: number, v: number) => dv.setUint32(at, v >>> 0, le);
  const info = (kind: number, vlen: number, kflag = false) =>
    ((kflag ? 1 : 0) << 31) | (kind << 24) | (vlen & 0xffff);
  const count = fixed.btf.typeCount;
  const extra: number[] = [];
  const extraStrings: number[] = [];
  let placeholder = 0;
  for (let id = 1; id < count; id++) {
    const at = raw.offsets[id]! - typeStart;
    const kind = raw.kinds[id];
    const vlen = get(at + 4) & 0xffff;
    if ((!have.datasec && kind === BtfKind.VAR) || (!have.declTag && kind === BtfKind.DECL_TAG)) {
      set(at + 4, info(BtfKind.INT, 0));
      set(at + 8, 1); // 1 byte: never larger than what it replaces
      set(at + 12, 8); // unsigned, 8 bits
    } else if (!have.datasec && kind === BtfKind.DATASEC) {
      for (let p = get(at); p < strings.length && strings[p] !== 0; p++)
        if (strings[p] === 0x2e) strings[p] = 0x5f;
      set(at + 4, info(BtfKind.STRUCT, vlen));
      for (let i = 0; i < vlen; i++) {
        const m = at + 12 + i * 12;
        const type = get(m);
        const offset = get(m + 4);
        const varAt = type > 0 && type < count ? raw.offsets[type]! - typeStart : -1;
        set(m, varAt >= 0 ? get(varAt) : 0); // the variable's name as the member's
        set(m + 4, type);
        set(m + 8, offset * 8);
      }
    } else if (!have.func && kind === BtfKind.FUNC_PROTO) {
      set(at + 4, info(BtfKind.ENUM, vlen));
      set(at + 8, 4);
    } else if (!have.func && kind === BtfKind.FUNC) {
      set(at + 4, info(BtfKind.TYPEDEF, 0));
    } else if (!have.globalFunc && kind === BtfKind.FUNC) {
      set(at + 4, info(BtfKind.FUNC, 0));
    } else if (!have.float && kind === BtfKind.FLOAT) {
      set(at, 0);
      set(at + 4, info(BtfKind.STRUCT, 0));
    } else if (!have.typeTag && kind === BtfKind.TYPE_TAG) {
      set(at, 0);
      set(at + 4, info(BtfKind.CONST, 0));
    } else if (!have.enum64 && kind === BtfKind.ENUM) {
      set(at + 4, info(BtfKind.ENUM, vlen));
    } else if (!have.enum64 && kind === BtfKind.ENUM64) {
      if (!placeholder) {
        placeholder = count;
        const name = utf8.encode('enum64_placeholder\0');
        extra.push(strings.length + extraStrings.length, info(BtfKind.INT, 0), 1, 8);
        extraStrings.push(...name);
      }
      set(at + 4, info(BtfKind.UNION, vlen));
      for (let i = 0; i < vlen; i++) {
        set(at + 12 + i * 12 + 4, placeholder);
        set(at + 12 + i * 12 + 8, 0);
      }
    }
  }
  return assemble(types, extra, [strings, new Uint8Array(extraStrings)], le);
}

/**
 * A BTF blob from a (patched) type section, words of types to append after it and the string
 * section's parts, with a fresh header; and a lazy index of it.
 */
function assemble(
  types: Uint8Array,
  extra: readonly number[],
  strings: readonly Uint8Array[],
  le: boolean,
): { blob: Uint8Array; btf: Btf } {
  const typeLen = types.length + extra.length * 4;
  const strLen = strings.reduce((n, s) => n + s.length, 0);
  const blob = new Uint8Array(HEADER + typeLen + strLen);
  const out = new DataView(blob.buffer);
  out.setUint16(0, BTF_MAGIC, le);
  out.setUint8(2, 1); // version
  out.setUint32(4, HEADER, le);
  out.setUint32(8, 0, le);
  out.setUint32(12, typeLen, le);
  out.setUint32(16, typeLen, le);
  out.setUint32(20, strLen, le);
  blob.set(types, HEADER);
  extra.forEach((w, i) => {
    out.setUint32(HEADER + types.length + i * 4, w >>> 0, le);
  });
  let at = HEADER + typeLen;
  for (const s of strings) {
    blob.set(s, at);
    at += s.length;
  }
  return { blob, btf: Btf.parse(blob, undefined, { lazy: true }) };
}
