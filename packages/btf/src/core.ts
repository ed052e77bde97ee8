// CO-RE (compile once, run everywhere): resolve `.BTF.ext` relocations recorded by clang
// against the running kernel's BTF and patch the instructions, following libbpf's rules
// (relo_core.c): candidates by essential name, accessor-by-accessor field matching through
// anonymous members, all candidates must agree, and an unsatisfiable relocation poisons the
// instruction so the verifier reports it.
import { Class, cls, type Insn, isAlu, isWide, JmpOp, Size, Source, size, slotIndex, src } from '@bpfkit/asm';
import { type CoreRelo, CoreReloKind } from './ext.js';
import type { Btf } from './spec.js';
import type { BtfMember, BtfType } from './types.js';

/** The helper id libbpf puts into a poisoned instruction (`call 0xbad2310`); the verifier says "invalid func unknown#195896080". */
export const CORE_POISON_IMM = 0xbad2310;
const MAX_SPEC = 64;
/** Nesting the type comparisons follow (libbpf and the kernel stop at 32 as well). */
const MAX_COMPAT_DEPTH = 32;
/** Pairs already compared in one comparison: a DAG is walked once, a loop is assumed to match. */
type Seen = Map<string, boolean>;

/** Memoize a pairwise comparison per (local, target) id pair for one top-level call. */
function memo(seen: Seen, lid: number, tid: number, f: () => boolean): boolean {
  const key = `${lid}:${tid}`;
  const have = seen.get(key);
  if (have !== undefined) return have;
  seen.set(key, true); // a loop back to this pair: assume it matches (co-inductively)
  const r = f();
  seen.set(key, r);
  return r;
}

export class CoreError extends Error {
  override name = 'CoreError';
}

interface Accessor {
  typeId: number;
  idx: number;
  name: string | undefined;
}
interface Spec {
  btf: Btf;
  rootId: number;
  /** Named members and array indices, as libbpf's `spec->spec`. */
  acc: Accessor[];
  raw: number[];
  bitOffset: number;
}

const essential = (name: string) => {
  const i = name.indexOf('___');
  return i > 0 ? name.slice(0, i) : name;
};
const isComposite = (t: BtfType) => t.kind === 'struct' || t.kind === 'union';
const isEnum = (t: BtfType) => t.kind === 'enum' || t.kind === 'enum64';
const isFieldKind = (k: number) => k <= CoreReloKind.FIELD_RSHIFT_U64;
const isTypeKind = (k: number) =>
  k === CoreReloKind.TYPE_ID_LOCAL ||
  k === CoreReloKind.TYPE_ID_TARGET ||
  k === CoreReloKind.TYPE_EXISTS ||
  k === CoreReloKind.TYPE_SIZE ||
  k === CoreReloKind.TYPE_MATCHES;
const isEnumKind = (k: number) => k === CoreReloKind.ENUMVAL_EXISTS || k === CoreReloKind.ENUMVAL_VALUE;

const KIND_NAMES = Object.fromEntries(Object.entries(CoreReloKind).map(([k, v]) => [v, k.toLowerCase()]));
export const coreReloKindName = (k: number): string => KIND_NAMES[k] ?? `kind ${k}`;

function isFlexArray(btf: Btf, parent: Accessor | undefined, nelems: number): boolean {
  if (nelems !== 0 || !parent?.name) return false;
  const t = btf.resolve(parent.typeId);
  return isComposite(t) && (t as { members: BtfMember[] }).members.length - 1 === parent.idx;
}

/** Parse an access string against the local type (libbpf bpf_core_parse_spec). */
function parseSpec(btf: Btf, rootId: number, access: string, kind: number): Spec {
  const raw = access.split(':').map((s) => {
    if (!/^\d{1,10}$/.test(s) || Number(s) > 0xffffffff)
      throw new CoreError(`malformed CO-RE access string '${access}'`);
    return Number(s);
  });
  if (raw.length === 0 || raw.length > MAX_SPEC)
    throw new CoreError(`CO-RE access string '${access}' has ${raw.length} parts`);
  const spec: Spec = { btf, rootId, acc: [], raw, bitOffset: 0 };
  if (isTypeKind(kind)) {
    if (raw[0] !== 0) throw new CoreError(`type relocation with access '${access}'`);
    return spec;
  }
  const root = btf.resolve(rootId);
  if (isEnumKind(kind)) {
    if (!isEnum(root) || raw.length > 1)
      throw new CoreError(`enum relocation on ${root.kind} '${root.name}'`);
    const v = (root as { values: { name: string }[] }).values[raw[0]!];
    if (!v) throw new CoreError(`enumerator #${raw[0]} of '${root.name}' does not exist`);
    spec.acc.push({ typeId: root.id, idx: raw[0]!, name: v.name });
    return spec;
  }
  if (!isFieldKind(kind)) throw new CoreError(`unknown CO-RE relocation kind ${kind}`);
  spec.acc.push({ typeId: root.id, idx: raw[0]!, name: undefined });
  spec.bitOffset = raw[0]! * btf.sizeof(root.id) * 8;
  let id = root.id;
  for (let i = 1; i < raw.length; i++) {
    const t = btf.resolve(id);
    id = t.id;
    const idx = raw[i]!;
    if (isComposite(t)) {
      const m = (t as { members: BtfMember[] }).members[idx];
      if (!m) throw new CoreError(`'${t.name || '(anon)'}' has no member #${idx}`);
      spec.bitOffset += m.bitOffset;
      if (m.name) spec.acc.push({ typeId: t.id, idx, name: m.name });
      id = m.type;
    } else if (t.kind === 'array') {
      const el = btf.resolve(t.type);
      if (!isFlexArray(btf, spec.acc.at(-1), t.nelems) && idx >= t.nelems)
        throw new CoreError(`array index ${idx} is beyond ${t.nelems} elements`);
      spec.acc.push({ typeId: el.id, idx, name: undefined });
      spec.bitOffset += idx * btf.sizeof(el.id) * 8;
      id = el.id;
    } else throw new CoreError(`cannot access into ${t.kind} '${t.name}' (access '${access}')`);
  }
  return spec;
}

/** Local and target field types compatible? (libbpf bpf_core_fields_are_compat) */
function fieldsCompat(lb: Btf, lid: number, tb: Btf, tid: number, depth = 0): boolean {
  if (depth > MAX_COMPAT_DEPTH) return false;
  const l = lb.resolve(lid);
  const t = tb.resolve(tid);
  if (isComposite(l) && isComposite(t)) return true;
  if (l.kind !== t.kind) return isEnum(l) && isEnum(t);
  switch (l.kind) {
    case 'ptr':
    case 'float':
      return true;
    case 'fwd':
    case 'enum':
    case 'enum64':
      return essential(l.name) === essential(t.name);
    case 'int':
      return l.offset === 0 && (t as typeof l).offset === 0;
    case 'array':
      return fieldsCompat(lb, l.type, tb, (t as typeof l).type, depth + 1);
    default:
      return false;
  }
}

/**
 * Whether a local type is compatible with a target one as libbpf's bpf_core_types_are_compat
 * judges it (kinds match; ints, structs, enums by kind alone; pointers, arrays and function
 * prototypes by what they hold): how typed ksyms and kfuncs are checked against the kernel's.
 */
export function coreTypesCompat(local: Btf, localId: number, target: Btf, targetId: number): boolean {
  return typesCompat(local, localId, target, targetId);
}

/** (libbpf bpf_core_types_are_compat) */
function typesCompat(lb: Btf, lid: number, tb: Btf, tid: number, depth = 0, seen: Seen = new Map()): boolean {
  if (depth > MAX_COMPAT_DEPTH) return false;
  return memo(seen, lid, tid, () => typesCompatOnce(lb, lid, tb, tid, depth, seen));
}

function typesCompatOnce(lb: Btf, lid: number, tb: Btf, tid: number, depth: number, seen: Seen): boolean {
  const l = lb.resolve(lid);
  const t = tb.resolve(tid);
  if (l.kind !== t.kind && !(isEnum(l) && isEnum(t))) return false;
  switch (l.kind) {
    case 'unkn':
    case 'struct':
    case 'union':
    case 'enum':
    case 'enum64':
    case 'fwd':
      return true;
    case 'int':
      return l.offset === 0 && (t as typeof l).offset === 0;
    case 'ptr':
      return typesCompat(lb, l.type, tb, (t as typeof l).type, depth + 1, seen);
    case 'array':
      return typesCompat(lb, l.type, tb, (t as typeof l).type, depth + 1, seen);
    case 'func_proto': {
      const tp = t as typeof l;
      if (l.params.length !== tp.params.length) return false;
      for (let i = 0; i < l.params.length; i++)
        if (!typesCompat(lb, l.params[i]!.type, tb, tp.params[i]!.type, depth + 1, seen)) return false;
      return typesCompat(lb, l.returnType, tb, tp.returnType, depth + 1, seen);
    }
    default:
      return false;
  }
}

/** Stricter shape match for `bpf_core_type_matches` (libbpf bpf_core_types_match). */
function typesMatch(lb: Btf, lid: number, tb: Btf, tid: number, depth = 0, seen: Seen = new Map()): boolean {
  if (depth > MAX_COMPAT_DEPTH) return false;
  return memo(seen, lid, tid, () => typesMatchOnce(lb, lid, tb, tid, depth, seen));
}

function typesMatchOnce(lb: Btf, lid: number, tb: Btf, tid: number, depth: number, seen: Seen): boolean {
  const l = lb.resolve(lid);
  const t = tb.resolve(tid);
  if (l.name && t.name && essential(l.name) !== essential(t.name)) return false;
  if (l.kind !== t.kind && !(isEnum(l) && isEnum(t))) return l.kind === 'fwd' && isComposite(t);
  switch (l.kind) {
    case 'int':
      return l.size === (t as typeof l).size && l.signed === (t as typeof l).signed;
    case 'float':
      return l.size === (t as typeof l).size;
    case 'enum':
    case 'enum64': {
      const tv = new Set((t as typeof l).values.map((v) => essential(v.name)));
      return l.values.every((v) => tv.has(essential(v.name)));
    }
    case 'struct':
    case 'union': {
      const tm = new Map((t as typeof l).members.map((m) => [m.name, m]));
      return l.members.every((m) => {
        const x = tm.get(m.name);
        return x !== undefined && typesMatch(lb, m.type, tb, x.type, depth + 1, seen);
      });
    }
    case 'ptr':
      return typesMatch(lb, l.type, tb, (t as typeof l).type, depth + 1, seen);
    case 'array':
      return (
        l.nelems === (t as typeof l).nelems &&
        typesMatch(lb, l.type, tb, (t as typeof l).type, depth + 1, seen)
      );
    case 'func_proto':
      return typesCompat(lb, l.id, tb, t.id, depth + 1);
    default:
      return true;
  }
}

function matchMember(
  local: Spec,
  lacc: Accessor,
  tb: Btf,
  tid: number,
  spec: Spec,
  depth = 0,
  failed: Set<number> = new Set(),
): { next: number } | undefined {
  if (depth > MAX_COMPAT_DEPTH) throw new CoreError('struct nesting is too deep');
  const lt = local.btf.typeById(lacc.typeId) as { members: BtfMember[] };
  const lm = lt.members[lacc.idx]!;
  const t = tb.resolve(tid);
  if (!isComposite(t)) return undefined;
  // An anonymous aggregate searched before (a DAG) or being searched (a loop) has no match.
  if (failed.has(t.id)) return undefined;
  failed.add(t.id);
  const members = (t as { members: BtfMember[] }).members;
  for (let i = 0; i < members.length; i++) {
    const m = members[i]!;
    spec.bitOffset += m.bitOffset;
    spec.raw.push(i);
    if (!m.name) {
      const found = matchMember(local, lacc, tb, m.type, spec, depth + 1, failed);
      if (found) return found;
    } else if (m.name === lacc.name) {
      spec.acc.push({ typeId: t.id, idx: i, name: m.name });
      if (fieldsCompat(local.btf, lm.type, tb, m.type)) return { next: m.type };
      spec.acc.pop();
      spec.bitOffset -= m.bitOffset;
      spec.raw.pop();
      return undefined;
    }
    spec.bitOffset -= m.bitOffset;
    spec.raw.pop();
  }
  return undefined;
}

/** Match the local spec against one candidate target type (libbpf bpf_core_spec_match). */
function matchSpec(local: Spec, tb: Btf, targetId: number, kind: number): Spec | undefined {
  const spec: Spec = { btf: tb, rootId: targetId, acc: [], raw: [], bitOffset: 0 };
  if (isTypeKind(kind)) {
    const ok =
      kind === CoreReloKind.TYPE_MATCHES
        ? typesMatch(local.btf, local.rootId, tb, targetId)
        : typesCompat(local.btf, local.rootId, tb, targetId);
    return ok ? spec : undefined;
  }
  if (isEnumKind(kind)) {
    const lacc = local.acc[0]!;
    const t = tb.resolve(targetId);
    if (!isEnum(t)) return undefined;
    const values = (t as { values: { name: string }[] }).values;
    const idx = values.findIndex((v) => essential(v.name) === essential(lacc.name!));
    if (idx < 0) return undefined;
    spec.acc.push({ typeId: t.id, idx, name: values[idx]!.name });
    spec.raw.push(idx);
    return spec;
  }
  let tid = targetId;
  for (let i = 0; i < local.acc.length; i++) {
    const lacc = local.acc[i]!;
    if (lacc.name) {
      const found = matchMember(local, lacc, tb, tid, spec);
      if (!found) return undefined;
      tid = found.next;
    } else {
      if (i > 0) {
        const t = tb.resolve(tid);
        if (t.kind !== 'array') return undefined;
        if (!isFlexArray(tb, spec.acc.at(-1), t.nelems) && lacc.idx >= t.nelems) return undefined;
        tid = tb.resolve(t.type).id;
      } else tid = tb.resolve(tid).id;
      spec.acc.push({ typeId: tid, idx: lacc.idx, name: undefined });
      spec.raw.push(lacc.idx);
      spec.bitOffset += lacc.idx * tb.sizeof(tid) * 8;
    }
  }
  return spec;
}

interface Value {
  value: bigint;
  /** For FIELD_BYTE_OFFSET on a memory access: the field's byte size. */
  size?: number;
  /** False for bitfields, whose compiled-in values clang computes its own way (as in libbpf). */
  validate?: boolean;
}

/** The relocated value for a matched spec (libbpf bpf_core_calc_relo). */
function calc(spec: Spec, kind: number, localRootId: number): Value {
  const btf = spec.btf;
  if (isTypeKind(kind)) {
    switch (kind) {
      case CoreReloKind.TYPE_ID_LOCAL:
        return { value: BigInt(localRootId) };
      case CoreReloKind.TYPE_ID_TARGET:
        return { value: BigInt(spec.rootId) };
      case CoreReloKind.TYPE_SIZE:
        return { value: BigInt(btf.sizeof(spec.rootId)) };
      default:
        return { value: 1n };
    }
  }
  if (isEnumKind(kind)) {
    if (kind === CoreReloKind.ENUMVAL_EXISTS) return { value: 1n };
    const t = btf.resolve(spec.acc[0]!.typeId) as { values: { value: bigint }[] };
    return { value: t.values[spec.acc[0]!.idx]!.value };
  }
  if (kind === CoreReloKind.FIELD_EXISTS) return { value: 1n };
  const last = spec.acc.at(-1)!;
  let fieldType: number;
  let bitSize = 0;
  if (last.name === undefined) {
    fieldType = last.typeId; // array element (or the root itself)
  } else {
    const parent = btf.resolve(last.typeId) as { members: BtfMember[] };
    const m = parent.members[last.idx]!;
    fieldType = m.type;
    bitSize = m.bitSize;
  }
  const ft = btf.resolve(fieldType);
  const bitOff = spec.bitOffset;
  const isBitfield = bitSize !== 0;
  let byteOff: number;
  let byteSz: number;
  if (bitSize === 0) {
    byteSz = btf.sizeof(fieldType);
    if (bitOff % 8 !== 0) throw new CoreError(`field at bit ${bitOff} does not start on a byte`);
    byteOff = bitOff / 8;
    bitSize = byteSz * 8;
  } else {
    byteSz = btf.sizeof(fieldType);
    if (byteSz < 1 || byteSz > 8) throw new CoreError(`bitfield of a ${byteSz}-byte type`);
    byteOff = Math.floor(bitOff / 8 / byteSz) * byteSz;
    while (bitOff + bitSize - byteOff * 8 > byteSz * 8) {
      if (byteSz >= 8) throw new CoreError('bitfield does not fit in 8 bytes');
      byteSz *= 2;
      byteOff = Math.floor(bitOff / 8 / byteSz) * byteSz;
    }
  }
  const validate = !isBitfield;
  switch (kind) {
    case CoreReloKind.FIELD_BYTE_OFFSET:
      return isBitfield
        ? { value: BigInt(byteOff), validate }
        : { value: BigInt(byteOff), size: byteSz, validate };
    case CoreReloKind.FIELD_BYTE_SIZE:
      return { value: BigInt(byteSz), validate };
    case CoreReloKind.FIELD_SIGNED:
      return {
        value:
          (isEnum(ft) && (ft as { signed: boolean }).signed) || (ft.kind === 'int' && ft.signed) ? 1n : 0n,
        validate,
      };
    case CoreReloKind.FIELD_LSHIFT_U64:
      return { value: BigInt(64 - (bitOff + bitSize - byteOff * 8)), validate };
    case CoreReloKind.FIELD_RSHIFT_U64:
      return { value: BigInt(64 - bitSize), validate };
    default:
      throw new CoreError(`unknown CO-RE relocation kind ${kind}`);
  }
}

export interface CoreResolution {
  /** True when nothing in the target satisfies a relocation that needs it: poison the instruction. */
  poison: boolean;
  /** The value before relocation (what clang compiled in). */
  local: Value;
  /** The value for this kernel. */
  target: Value;
  /** The matched target type id, if any. */
  targetTypeId: number | undefined;
  /** Why it was poisoned. */
  reason?: string;
}

/** Candidate cache: local type name → target types with that essential name and a compatible kind. */
function candidates(local: BtfType, target: Btf): BtfType[] {
  const name = essential(local.name);
  if (!name) return [];
  // enum and enum64 are interchangeable; every other kind must match exactly
  const kinds = isEnum(local) ? ['enum', 'enum64'] : [local.kind];
  return kinds.flatMap((k) => target.findAll(name, k as 'struct'));
}

/**
 * Resolve one CO-RE relocation of `local` BTF against `target` (the kernel's). Where `target` has
 * no candidate of the local type's name and kind, the candidates come from `modules` (the kernel
 * modules' BTF, split on `target`), all of them, as libbpf gathers them (`bpf_core_find_cands`).
 */
export function resolveCoreRelo(
  local: Btf,
  target: Btf,
  relo: CoreRelo,
  modules?: () => readonly Btf[],
): CoreResolution {
  const rootT = local.typeById(relo.typeId);
  const localSpec = parseSpec(local, relo.typeId, relo.access, relo.kind);
  const localValue = calc(localSpec, relo.kind, relo.typeId);
  const describe = () =>
    `${coreReloKindName(relo.kind)} of ${rootT.kind} '${rootT.name}' (access ${relo.access})`;
  if (relo.kind === CoreReloKind.TYPE_ID_LOCAL)
    return { poison: false, local: localValue, target: localValue, targetTypeId: relo.typeId };

  let found: { spec: Spec; value: Value } | undefined;
  let cands = candidates(rootT, target).map((t) => ({ btf: target, id: t.id }));
  if (cands.length === 0 && modules)
    cands = modules().flatMap((m) => candidates(rootT, m).map((t) => ({ btf: m, id: t.id })));
  for (const cand of cands) {
    const spec = matchSpec(localSpec, cand.btf, cand.id, relo.kind);
    if (!spec) continue;
    const value = calc(spec, relo.kind, relo.typeId);
    if (found && (found.value.value !== value.value || found.value.size !== value.size))
      throw new CoreError(
        `${describe()}: candidates '${found.spec.rootId}' and '${cand.id}' disagree (${found.value.value} vs ${value.value})`,
      );
    found ??= { spec, value };
  }
  if (found)
    return { poison: false, local: localValue, target: found.value, targetTypeId: found.spec.rootId };
  const existence =
    relo.kind === CoreReloKind.FIELD_EXISTS ||
    relo.kind === CoreReloKind.TYPE_EXISTS ||
    relo.kind === CoreReloKind.ENUMVAL_EXISTS ||
    relo.kind === CoreReloKind.TYPE_MATCHES;
  if (existence) return { poison: false, local: localValue, target: { value: 0n }, targetTypeId: undefined };
  const what = localSpec.acc
    .filter((a) => a.name)
    .map((a) => a.name)
    .join('.');
  return {
    poison: true,
    local: localValue,
    target: { value: 0n },
    targetTypeId: undefined,
    reason: `${describe()}: ${what ? `'${what}' of ` : ''}${rootT.kind} '${essential(rootT.name)}' not found in the kernel's BTF`,
  };
}

/** The helper call a poisoned instruction becomes. */
const poisonCall = (): Insn => ({
  code: Class.JMP | JmpOp.call,
  dst: 0,
  src: 0,
  off: 0,
  imm: CORE_POISON_IMM,
});
const SIZE_BY_BYTES: Record<number, number> = { 1: Size.b, 2: Size.h, 4: Size.w, 8: Size.dw };

/**
 * Apply one resolution to the instruction it was recorded on: ALU immediates, load/store
 * offsets (and the access size when the field's size changed), ld_imm64 immediates; or poison
 * it. Returns the replacement — two calls for a poisoned ld_imm64, so the slot count stays.
 * Throws {@link CoreError} when the instruction does not carry the value clang recorded.
 */
export function patchCoreRelo(insn: Insn, relo: CoreRelo, res: CoreResolution, slot = 0): Insn[] {
  if (res.poison) return isWide(insn) ? [poisonCall(), poisonCall()] : [poisonCall()];
  const v = res.target.value;
  const c = insn.code;
  const at = `instruction ${slot}`;
  if (isAlu(c)) {
    if (src(c) !== Source.K) throw new CoreError(`CO-RE relocation on a register ALU ${at}`);
    const orig = BigInt(insn.imm);
    if (res.local.validate !== false && BigInt.asUintN(32, orig) !== BigInt.asUintN(32, res.local.value))
      throw new CoreError(
        `${at} holds ${orig}, expected ${res.local.value} for ${coreReloKindName(relo.kind)}`,
      );
    if (v > 0xffffffffn || v < -(2n ** 31n))
      throw new CoreError(`relocated value ${v} does not fit a 32-bit immediate`);
    return [{ ...insn, imm: Number(BigInt.asIntN(32, v)) }];
  }
  if (cls(c) === Class.LDX || cls(c) === Class.ST || cls(c) === Class.STX) {
    if (res.local.validate !== false && BigInt(insn.off) !== res.local.value)
      throw new CoreError(`${at} has offset ${insn.off}, expected ${res.local.value}`);
    if (v > 32767n) throw new CoreError(`relocated offset ${v} does not fit a 16-bit offset`);
    const out: Insn = { ...insn, off: Number(v) };
    const oldSz = res.local.size;
    const newSz = res.target.size;
    if (
      relo.kind === CoreReloKind.FIELD_BYTE_OFFSET &&
      oldSz !== undefined &&
      newSz !== undefined &&
      oldSz !== newSz
    ) {
      if (SIZE_BY_BYTES[oldSz] !== size(c))
        throw new CoreError(`${at} accesses ${accessBytes(c)} bytes, field was ${oldSz}`);
      const code = SIZE_BY_BYTES[newSz];
      if (code === undefined) throw new CoreError(`field became ${newSz} bytes`);
      out.code = c - size(c) + code;
    }
    return [out];
  }
  if (isWide(insn)) {
    const u = BigInt.asUintN(64, v);
    return [
      {
        ...insn,
        imm: Number(BigInt.asIntN(32, u & 0xffffffffn)),
        imm64Hi: Number(BigInt.asIntN(32, u >> 32n)),
      },
    ];
  }
  throw new CoreError(`CO-RE relocation on unsupported instruction 0x${c.toString(16)} at ${at}`);
}

const accessBytes = (code: number): number =>
  Number(Object.entries(SIZE_BY_BYTES).find(([, s]) => s === size(code))?.[0]);

/** A CO-RE relocation recorded at an instruction slot of a program. */
export interface SlotRelo {
  slot: number;
  relo: CoreRelo;
}

/** What {@link applyCoreRelos} did to a program. */
export interface AppliedCore {
  /** The relocated instructions (same slot layout as the input). */
  insns: Insn[];
  /** Every resolution, by slot. */
  resolutions: { slot: number; relo: CoreRelo; res: CoreResolution }[];
  /** Why some instructions were poisoned (unsatisfiable relocations), one line each. */
  poisoned: string[];
}

/**
 * Resolve every CO-RE relocation of a program (recorded against `local` BTF) against `target`
 * BTF (then `modules`' BTF, for types `target` lacks) and apply it to the program's
 * instructions. Pure: returns new instructions.
 */
export function applyCoreRelos(
  insns: readonly Insn[],
  relos: readonly SlotRelo[],
  local: Btf,
  target: Btf,
  modules?: () => readonly Btf[],
): AppliedCore {
  const out: Insn[] = [...insns];
  const resolutions: AppliedCore['resolutions'] = [];
  const poisoned: string[] = [];
  if (relos.length === 0) return { insns: out, resolutions, poisoned };
  const { at, total } = slotIndex(insns);
  const bySlot = new Map(at.map((s, i) => [s, i]));
  const replaced = new Map<number, Insn[]>();
  for (const { slot, relo } of relos) {
    const i = bySlot.get(slot);
    if (i === undefined)
      throw new CoreError(
        `CO-RE relocation at instruction ${slot} is ${slot < total ? 'inside an ld_imm64' : 'outside the program'}`,
      );
    const res = resolveCoreRelo(local, target, relo, modules);
    const patched = patchCoreRelo(out[i]!, relo, res, slot);
    if (patched.length === 1) out[i] = patched[0]!;
    else replaced.set(i, patched);
    resolutions.push({ slot, relo, res });
    if (res.poison) poisoned.push(`instruction ${slot}: ${res.reason}`);
  }
  if (replaced.size === 0) return { insns: out, resolutions, poisoned };
  return { insns: out.flatMap((insn, i) => replaced.get(i) ?? [insn]), resolutions, poisoned };
}
