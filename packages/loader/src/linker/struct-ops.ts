// struct_ops tables laid out for the kernel: a `.struct_ops` variable of the object (its struct,
// matched to the kernel's struct of the same name member by member, as libbpf's
// bpf_map__init_kern_struct_ops matches them) becomes the value of a struct_ops map — the kernel's
// `bpf_struct_ops_<type>` with the ops table at its `data` member — and tells each program in it
// the BTF id and member index it is loaded with. Pure: the kernel's BTF is given. The same layout
// serves @bpfkit/link's StructOps, which builds tables from programs loaded one by one.
import type { Btf, BtfStruct } from '@bpfkit/btf';
import { NotSupportedError } from '@bpfkit/sys';
import type { ObjectMap } from '../object/object.js';

/** The kernel's view of ops type `type`: the map value struct, the ops struct and where it sits. */
export interface StructOpsLayout {
  /** `struct bpf_struct_ops_<type>`: the map's value (its size, its id as btf_vmlinux_value_type_id). */
  value: BtfStruct;
  /** `struct <type>` in the kernel: programs attach to its id, at a member's index. */
  ops: BtfStruct;
  /** Byte offset of the ops struct in the value. */
  dataOffset: number;
}

/** The kernel's layout for ops type `type`; NotSupportedError when the kernel has no struct_ops of it. */
export function structOpsLayout(kernel: Btf, type: string): StructOpsLayout {
  const ops = kernel.findAll(type, 'struct')[0];
  const value = kernel.findAll(`bpf_struct_ops_${type}`, 'struct')[0];
  if (ops?.kind !== 'struct' || !value || value.kind !== 'struct')
    throw new NotSupportedError(`struct_ops for ${type}`);
  // the member of the ops type (libbpf finds it by type; it is named `data`)
  const data = value.members.find((m) => m.type === ops.id) ?? value.members.find((m) => m.name === 'data');
  if (!data || kernel.resolve(data.type).id !== ops.id)
    throw new NotSupportedError(`struct_ops for ${type} (bpf_struct_ops_${type} holds no struct ${type})`);
  return { value, ops, dataOffset: data.bitOffset / 8 };
}

/** The BTF id and expected attach type a `struct_ops` program for member `member` of `type` is loaded with. */
export function structOpsMemberTarget(
  kernel: Btf,
  type: string,
  member: string,
): { attachBtfId: number; attachType: number } {
  const { ops } = structOpsLayout(kernel, type);
  const index = ops.members.findIndex((m) => m.name === member);
  if (index < 0) throw new TypeError(`struct ${type} has no member '${member}'`);
  return { attachBtfId: ops.id, attachType: index };
}

/** A struct_ops map of the object, laid out for this kernel. */
export interface PreparedStructOps {
  /** The ops type (`tcp_congestion_ops`). */
  typeName: string;
  /** `bpf_struct_ops_<type>`'s id in the kernel's BTF and its size: the map's value. */
  valueTypeId: number;
  valueSize: number;
  /** The value with every non-function member copied in; the function slots are filled with program fds after load. */
  value: Uint8Array;
  /** Function slots: byte offset in the value → program name. */
  slots: { offset: number; program: string }[];
}

/** Why a struct_ops variable does not fit the kernel's struct: names the map and member. */
export class StructOpsLayoutError extends TypeError {
  override name = 'StructOpsLayoutError';
  constructor(
    readonly map: string,
    readonly member: string,
    reason: string,
  ) {
    super(`struct_ops map '${map}'${member ? `, member '${member}'` : ''}: ${reason}`);
  }
}

/**
 * Lay out struct_ops map `def` (its BTF `btf`, the object's) for the kernel: members matched by
 * name; a member the kernel lacks is skipped when zero and an error otherwise; function pointers
 * must be function pointers on both sides; other members are copied when their sizes agree
 * (bitfields are refused). `programs` gets each program's attach BTF id and member index.
 */
export function prepareStructOps(
  name: string,
  def: ObjectMap,
  btf: Btf,
  kernel: Btf,
  programs: Map<string, { attachBtfId: number; attachType: number; map: string }>,
): PreparedStructOps {
  const so = def.structOps!;
  const layout = structOpsLayout(kernel, so.typeName);
  const type = btf.resolve(so.typeId) as BtfStruct;
  const value = new Uint8Array(layout.value.size);
  const slots: { offset: number; program: string }[] = [];
  for (const m of type.members) {
    const prog = so.programs[m.name];
    const moff = m.bitOffset / 8;
    const mt = btf.resolve(m.type);
    const size = mt.kind === 'ptr' ? 8 : btf.sizeof(m.type);
    const bytes = so.data.subarray(moff, moff + size);
    const index = layout.ops.members.findIndex((k) => k.name === m.name);
    if (index < 0) {
      if (prog !== undefined || bytes.some((b) => b !== 0))
        throw new StructOpsLayoutError(
          name,
          m.name,
          `struct ${so.typeName} of this kernel has no such member`,
        );
      continue; // zero, and the kernel lacks it: left out (as libbpf does)
    }
    const km = layout.ops.members[index]!;
    if (m.bitSize || km.bitSize) throw new StructOpsLayoutError(name, m.name, 'bitfields are not supported');
    const kt = kernel.resolve(km.type);
    if (mt.kind !== kt.kind)
      throw new StructOpsLayoutError(name, m.name, `is a ${mt.kind} here and a ${kt.kind} in the kernel`);
    const at = layout.dataOffset + km.bitOffset / 8;
    if (mt.kind === 'ptr') {
      if (prog === undefined) continue;
      if (kt.kind !== 'ptr' || kernel.resolve(kt.type).kind !== 'func_proto')
        throw new StructOpsLayoutError(name, m.name, 'is not a function pointer in the kernel');
      const target = { attachBtfId: layout.ops.id, attachType: index, map: name };
      const seen = programs.get(prog);
      if (seen && (seen.attachBtfId !== target.attachBtfId || seen.attachType !== target.attachType))
        throw new StructOpsLayoutError(
          name,
          m.name,
          `program '${prog}' is also in map '${seen.map}' at another member or type: a struct_ops program serves one member of one type`,
        );
      programs.set(prog, seen ?? target);
      slots.push({ offset: at, program: prog });
      continue;
    }
    const ksize = kernel.sizeof(km.type);
    if (ksize !== size)
      throw new StructOpsLayoutError(name, m.name, `is ${size} bytes here and ${ksize} in the kernel`);
    value.set(bytes, at);
  }
  return { typeName: so.typeName, valueTypeId: layout.value.id, valueSize: layout.value.size, value, slots };
}
