// Extern references in instructions: kernel variables (`__ksym`) and kernel functions (kfuncs)
// resolved to the kernel's BTF ids. Map references stay symbolic until the maps exist
// (Program.load fills them).
import { type Insn, Pseudo } from '@bpfkit/asm';
import type { Btf } from '@bpfkit/btf';
import { NotSupportedError } from '@bpfkit/sys';
import type { ObjectFile } from '../object/object.js';

/** Resolve ksym and kfunc references against the kernel's BTF; map references stay symbolic (checked by `known`). */
export function resolveExterns(
  insns: readonly Insn[],
  kernel: Btf,
  obj: ObjectFile,
  known: (map: string) => boolean,
): Insn[] {
  return insns.map((insn, i) => {
    const ref = insn.ref;
    if (!ref) return insn;
    switch (ref.kind) {
      case 'map':
      case 'mapValue':
        if (!known(ref.name)) throw new TypeError(`instruction ${i}: map '${ref.name}' is not in the object`);
        return insn;
      case 'ksym': {
        const v = kernel.findAll(ref.name, 'var')[0];
        if (!v) {
          if (obj.externs.get(ref.name)?.weak) return { ...insn, src: 0, imm: 0, imm64Hi: 0, ref: undefined };
          throw new TypeError(`__ksym '${ref.name}' is not a variable in the kernel's BTF`);
        }
        return { ...insn, src: Pseudo.BTF_ID, imm: v.id, imm64Hi: 0, ref: undefined };
      }
      case 'kfunc': {
        const f = kernel.findAll(ref.name, 'func')[0];
        if (!f) throw new NotSupportedError(`kfunc ${ref.name} (not in this kernel's BTF)`);
        return { ...insn, src: Pseudo.KFUNC_CALL, imm: f.id, off: 0, ref: undefined };
      }
      default:
        return insn;
    }
  });
}
