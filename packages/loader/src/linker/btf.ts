// The object's BTF fixed up for the kernel (libbpf's bpf_object__sanitize_and_load_btf part
// that every kernel needs).
import { Btf, BtfLookupError, type BtfType, encodeBtf } from '@bpfkit/btf';
import type { ObjectFile } from '../object/object.js';

/**
 * The object's BTF made acceptable to the kernel, as libbpf does before loading it: datasec sizes
 * and variable offsets from the ELF, extern functions and variables made global, `.ksyms` slots
 * pointed at a dummy variable. Type ids stay as they are (types are only appended). Returns the
 * blob and a lazy index of it (types are decoded only when a map codec reaches them).
 */
export function fixObjectBtf(obj: ObjectFile): { blob: Uint8Array; btf: Btf } {
  const btf = obj.btf!;
  const types = structuredClone([...btf.types()]) as BtfType[];
  let intId = types.find((t) => t.kind === 'int' && t.name === 'int' && t.size === 4)?.id;
  if (intId === undefined) {
    intId = types.length + 1;
    types.push({
      kind: 'int',
      id: intId,
      name: 'int',
      size: 4,
      signed: true,
      char: false,
      bool: false,
      bits: 32,
      offset: 0,
    });
  }
  const byId = (id: number, what: () => string): BtfType => {
    const t = types[id - 1];
    if (!t || id === 0) throw new BtfLookupError(`${what()} refers to BTF type ${id}, which does not exist`);
    return t;
  };
  // Kernel-function externs become global functions with named parameters; their .ksyms slots
  // point at a dummy variable (as libbpf does).
  const dummyId = types.length + 1;
  types.push({ kind: 'var', id: dummyId, name: '__bpfkit_ksym', type: intId, linkage: 1 });
  for (const t of types) {
    if (t.kind !== 'func' || t.linkage !== 2) continue;
    t.linkage = 1;
    const proto = byId(t.type, () => `extern function '${t.name}' (BTF type ${t.id})`);
    if (proto.kind === 'func_proto')
      for (const p of proto.params) if (p.type && !p.name) p.name = '__bpfkit_arg';
  }
  for (const t of types) {
    if (t.kind !== 'datasec') continue;
    if (t.name === '.ksyms') {
      t.vars.forEach((v, i) => {
        const vt = byId(v.type, () => `.ksyms variable #${i}`);
        if (vt.kind === 'func') v.type = dummyId;
        else if (vt.kind === 'var') {
          vt.linkage = 1;
          vt.type = intId!;
        }
        v.offset = i * 4;
        v.size = 4;
      });
      t.size = t.vars.length * 4;
      continue;
    }
    if (t.name === '.kconfig') {
      for (const v of t.vars) {
        const vt = byId(v.type, () => 'a .kconfig variable');
        if (vt.kind !== 'var') continue;
        vt.linkage = 1;
        v.offset = obj.externs.get(vt.name)?.offset ?? v.offset;
      }
      t.vars.sort((a, b) => a.offset - b.offset);
      t.size = obj.maps.get('.kconfig')?.valueSize ?? t.size;
      continue;
    }
    const sec = obj.elf.section(t.name);
    if (!sec) continue;
    t.size = sec.size;
    for (const v of t.vars) {
      const vt = byId(v.type, () => `a variable of datasec '${t.name}'`);
      if (vt.kind !== 'var') continue;
      const sym = obj.elf.symbols.find((s) => s.name === vt.name && s.shndx === sec.index);
      if (sym) v.offset = sym.value;
      if (vt.linkage === 2) vt.linkage = 1;
    }
    t.vars.sort((a, b) => a.offset - b.offset);
  }
  const blob = encodeBtf(types, btf.raw.strings);
  return { blob, btf: Btf.parse(blob, undefined, { lazy: true }) };
}
