// Extern references in instructions, resolved as libbpf resolves them: typed `__ksym` variables
// and kernel functions to their BTF ids (in vmlinux, else in a module's BTF, which the program
// then names in its fd_array), typeless `__ksym` variables to their /proc/kallsyms address, and
// weak externs the kernel does not have to zero (a weak kfunc call to an invalid helper call the
// verifier accepts only as dead code, so `bpf_ksym_exists()` guards it). Map references stay
// symbolic until the maps exist (Program.load fills them).
import { Class, type Insn, JmpOp, Pseudo } from '@bpfkit/asm';
import { type Btf, coreTypesCompat, type ModuleBtf } from '@bpfkit/btf';
import { NotSupportedError } from '@bpfkit/sys';
import type { ObjectExtern, ObjectFile } from '../object/object.js';

/** A missing or unusable extern: names the symbol and, where one reads it, the program and section. */
export class ExternError extends TypeError {
  override name = 'ExternError';
  readonly program: string | undefined;
  readonly section: string | undefined;
  constructor(
    message: string,
    readonly symbol: string,
    section: string,
    user?: { program: string; section: string },
  ) {
    super(user ? `program '${user.program}' (section '${user.section}'): ${message}` : message);
    this.program = user?.program;
    this.section = user?.section ?? section;
  }
}

/**
 * A kfunc (not `__weak`) that neither vmlinux nor a module's BTF has: a kernel feature this
 * kernel lacks, so a `NotSupportedError` (feature `kfunc <name>`), naming program, section and symbol.
 */
export class KfuncNotSupportedError extends NotSupportedError {
  override name = 'KfuncNotSupportedError';
  constructor(
    readonly symbol: string,
    readonly program: string,
    readonly section: string,
  ) {
    super(`kfunc ${symbol} (called by program '${program}' in section '${section}')`);
  }
}

/** The imm of the call a weak kfunc the kernel lacks becomes (libbpf's poison): 2002000000 + extern index. */
export const KFUNC_POISON_BASE = 2002000000;

/** What resolving a program's externs needs. */
export interface ExternContext {
  obj: ObjectFile;
  program: { name: string; section: string };
  /** The kernel's BTF, read only when a typed extern needs it. */
  kernel: () => Btf;
  /** Module BTFs, read only when vmlinux lacks a name. */
  modules: () => readonly ModuleBtf[];
  /** Addresses of typeless ksyms, by name (from /proc/kallsyms). */
  addresses: () => ReadonlyMap<string, bigint>;
  known: (map: string) => boolean;
}

/** A program's instructions with externs resolved, and the module BTFs they refer to. */
export interface ResolvedExterns {
  insns: Insn[];
  /** Module BTF objects in fd_array order: entry i is fd_array[i + 1] (0 stands for vmlinux). */
  btfObjects: ModuleBtf[];
  /** ld_imm64 instructions (by index) whose high word is the fd of btfObjects[object]. */
  btfObjectFds: { insn: number; object: number }[];
  /** Weak kfuncs absent from this kernel whose calls were poisoned, by name. */
  missingKfuncs: string[];
}

/** libbpf's essential name: `name___flavor` looks up `name`. */
const essential = (name: string) => {
  const m = /^(.+?[^_])___[^_].*$/.exec(name);
  return m ? m[1]! : name;
};

/** Whether an extern is a function (a kfunc): BTF says so, or its symbol does. */
const isFunc = (obj: ObjectFile, ext: ObjectExtern | undefined, name: string) =>
  ext?.kind === 'kfunc' || (obj.btf?.findAll(name, 'func').length ?? 0) > 0;

/** Resolve ksym and kfunc references; map references stay symbolic (checked by `known`). */
export function resolveExterns(insns: readonly Insn[], ctx: ExternContext): ResolvedExterns {
  const { obj } = ctx;
  const btfObjects: ModuleBtf[] = [];
  const btfObjectFds: { insn: number; object: number }[] = [];
  const missingKfuncs: string[] = [];
  const fail = (why: string, symbol: string) =>
    new ExternError(why, symbol, '.ksyms', { program: ctx.program.name, section: ctx.program.section });
  const missingKfunc = (name: string) =>
    new KfuncNotSupportedError(name, ctx.program.name, ctx.program.section);
  /** vmlinux first, then each module: the BTF that has `name` as `kind`. */
  const lookup = (name: string, kind: 'var' | 'func') => {
    const v = ctx.kernel().findAll(name, kind)[0];
    if (v) return { id: v.id, type: v.type, btf: ctx.kernel(), module: undefined };
    for (const m of ctx.modules()) {
      // a module's own types, not the vmlinux base it is split on
      const own = m.btf.findAll(name, kind).find((t) => !m.btf.base || t.id >= m.btf.raw.firstId);
      if (own) return { id: own.id, type: own.type, btf: m.btf, module: m };
    }
    return undefined;
  };
  /** A kernel function whose prototype is compatible with the extern's; weak and incompatible is absent. */
  const kfunc = (name: string) => {
    const f = lookup(essential(name), 'func');
    const ext = obj.externs.get(name);
    if (!f || !obj.btf || !ext?.typeId) return f;
    if (coreTypesCompat(obj.btf, ext.typeId, f.btf, f.type)) return f;
    if (ext.weak) return undefined;
    throw fail(
      `kfunc '${name}': its prototype does not match the kernel's (${f.module?.name ?? 'vmlinux'} BTF type ${f.id})`,
      name,
    );
  };
  const objectIndex = (m: ModuleBtf) => {
    let i = btfObjects.findIndex((x) => x.id === m.id);
    if (i < 0) i = btfObjects.push(m) - 1;
    return i;
  };
  const externIndex = (name: string) => [...obj.externs.keys()].indexOf(name);
  const out = insns.map((insn, i) => {
    const ref = insn.ref;
    if (!ref) return insn;
    switch (ref.kind) {
      case 'map':
      case 'mapValue':
        if (!ctx.known(ref.name))
          throw new TypeError(`instruction ${i}: map '${ref.name}' is not in the object`);
        return insn;
      case 'ksym': {
        const ext = obj.externs.get(ref.name);
        const weak = ext?.weak ?? false;
        const zero = { ...insn, src: 0, imm: 0, imm64Hi: 0, ref: undefined };
        if (isFunc(obj, ext, ref.name)) {
          // the address of a kfunc (bpf_ksym_exists): its BTF id
          const f = kfunc(ref.name);
          if (!f) {
            if (weak) return zero;
            throw missingKfunc(ref.name);
          }
          if (f.module) btfObjectFds.push({ insn: i, object: objectIndex(f.module) });
          return { ...insn, src: Pseudo.BTF_ID, imm: f.id, imm64Hi: 0, ref: undefined };
        }
        const typeless = !ext?.typeId || obj.btf?.resolve(ext.typeId).kind === 'unkn';
        if (typeless) {
          const addr = ctx.addresses().get(ref.name);
          if (addr === undefined) {
            if (weak) return zero;
            throw fail(`typeless __ksym '${ref.name}' is not in /proc/kallsyms`, ref.name);
          }
          return {
            ...insn,
            src: 0,
            imm: Number(BigInt.asIntN(32, addr)),
            imm64Hi: Number(BigInt.asIntN(32, addr >> 32n)),
            ref: undefined,
          };
        }
        const v = lookup(ref.name, 'var');
        if (!v) {
          if (weak) return zero;
          throw fail(`__ksym '${ref.name}' is not a variable in the kernel's or a module's BTF`, ref.name);
        }
        if (obj.btf && ext && !coreTypesCompat(obj.btf, ext.typeId, v.btf, v.type))
          throw fail(
            `__ksym '${ref.name}': its type does not match the kernel's (BTF type ${v.id})`,
            ref.name,
          );
        if (v.module) btfObjectFds.push({ insn: i, object: objectIndex(v.module) });
        return { ...insn, src: Pseudo.BTF_ID, imm: v.id, imm64Hi: 0, ref: undefined };
      }
      case 'kfunc': {
        const f = kfunc(ref.name);
        if (!f) {
          if (obj.externs.get(ref.name)?.weak) {
            // An invalid helper call: loadable while dead code (behind bpf_ksym_exists), and
            // named in the verifier's complaint otherwise.
            missingKfuncs.push(ref.name);
            const idx = externIndex(ref.name);
            return { code: Class.JMP | JmpOp.call, dst: 0, src: 0, off: 0, imm: KFUNC_POISON_BASE + idx };
          }
          throw missingKfunc(ref.name);
        }
        const off = f.module ? objectIndex(f.module) + 1 : 0;
        return { ...insn, src: Pseudo.KFUNC_CALL, imm: f.id, off, ref: undefined };
      }
      default:
        return insn;
    }
  });
  return { insns: out, btfObjects, btfObjectFds, missingKfuncs };
}

/** Names of the object's typeless `__ksym` variables (their addresses come from /proc/kallsyms). */
export function typelessKsyms(obj: ObjectFile): Set<string> {
  const out = new Set<string>();
  for (const ext of obj.externs.values())
    if (
      ext.kind === 'ksym' &&
      !isFunc(obj, ext, ext.name) &&
      (!ext.typeId || obj.btf?.resolve(ext.typeId).kind === 'unkn')
    )
      out.add(ext.name);
  return out;
}

/** The imm of the calls a reference to a map not created becomes (libbpf's poison): 2001000000 + the map's index. */
export const MAP_POISON_BASE = 2001000000;

/**
 * `insns` with every ld_imm64 of a map in `notCreated` turned into two calls of the invalid
 * helper `MAP_POISON_BASE + index` (the map's index in the object), as libbpf poisons references
 * to maps it did not create: the verifier accepts them only as dead code, and a reachable one
 * fails with `unknown#2001000<index>`. Slots stay where they were (func/line info still fits).
 * Returns the poisoned maps too, by name.
 */
export function poisonMapRefs(
  insns: readonly Insn[],
  notCreated: ReadonlySet<string>,
  mapIndex: (name: string) => number,
): { insns: Insn[]; maps: string[] } {
  const maps: string[] = [];
  if (notCreated.size === 0) return { insns: [...insns], maps };
  const out = insns.flatMap((insn): Insn[] => {
    const ref = insn.ref;
    if (!ref || (ref.kind !== 'map' && ref.kind !== 'mapValue') || !notCreated.has(ref.name)) return [insn];
    if (!maps.includes(ref.name)) maps.push(ref.name);
    const call: Insn = {
      code: Class.JMP | JmpOp.call,
      dst: 0,
      src: 0,
      off: 0,
      imm: MAP_POISON_BASE + mapIndex(ref.name),
    };
    return [call, { ...call }];
  });
  return { insns: out, maps };
}
