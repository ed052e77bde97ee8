// The object's BTF fixed up for the kernel (the part of libbpf's bpf_object__sanitize_and_load_btf
// that every kernel needs), patched into a copy of the blob: no type is re-encoded.
import { BTF_MAGIC, Btf, BtfKind, BtfLookupError, type BtfType, IntEncoding } from '@bpfkit/btf';
import type { ObjectFile } from '../object/object.js';

/** BTF linkage of functions and variables (`enum btf_func_linkage`; variables use 0-2 alike). */
const GLOBAL = 1;
const EXTERN = 2;
const HEADER = 24;
const utf8 = new TextEncoder();

/**
 * The object's BTF made acceptable to the kernel, as libbpf does before loading it: datasec sizes
 * and variable offsets from the ELF, extern functions and variables made global (extern
 * functions' parameters named), `.ksyms` slots pointed at a dummy variable. Type ids stay as they
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
  for (let id = 1; id < count; id++) {
    const kind = raw.kinds[id];
    if (kind === BtfKind.FUNC) {
      // Kernel-function externs become global functions with named parameters.
      const t = btf.typeById(id) as BtfType & { kind: 'func' };
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

  const typeLen = types.length + extra.length * 4;
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
