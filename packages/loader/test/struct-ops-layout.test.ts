// struct_ops layout against a kernel struct that differs from the object's (a kernel BTF made
// here): members are matched by name and index, a set member the kernel lacks is an error naming
// it, and sizes must agree. Pure: no kernel objects.
import { Btf, type BtfType, encodeBtf, intType } from '@bpfkit/btf';
import { ObjectFile, prepareStructOps, StructOpsLayoutError } from '@bpfkit/loader';
import { describe, expect, it } from 'vitest';

const object = ObjectFile.read(new URL('./fixtures/struct_ops.bpf.o', import.meta.url).pathname);

/** A kernel BTF whose tcp_congestion_ops has these function members and a `name` of `nameSize` bytes. */
function kernel(funcs: string[], nameSize = 16): Btf {
  const types: BtfType[] = [
    intType(1),
    { kind: 'int', id: 2, name: 'char', size: 1, signed: true, char: true, bool: false, bits: 8, offset: 0 },
    { kind: 'func_proto', id: 3, name: '', returnType: 0, params: [] },
    { kind: 'ptr', id: 4, name: '', type: 3 },
    { kind: 'array', id: 5, name: '', type: 2, indexType: 1, nelems: nameSize },
    {
      kind: 'struct',
      id: 6,
      name: 'tcp_congestion_ops',
      size: funcs.length * 8 + nameSize,
      members: [
        ...funcs.map((name, i) => ({ name, type: 4, bitOffset: i * 64, bitSize: 0 })),
        { name: 'name', type: 5, bitOffset: funcs.length * 64, bitSize: 0 },
      ],
    },
    {
      kind: 'struct',
      id: 7,
      name: 'bpf_struct_ops_tcp_congestion_ops',
      size: 8 + funcs.length * 8 + nameSize,
      members: [
        { name: 'refcnt', type: 1, bitOffset: 0, bitSize: 0 },
        { name: 'state', type: 1, bitOffset: 32, bitSize: 0 },
        { name: 'data', type: 6, bitOffset: 64, bitSize: 0 },
      ],
    },
  ];
  return Btf.parse(encodeBtf(types));
}

const prepare = (k: Btf) => {
  const targets = new Map();
  const value = prepareStructOps('bpfkit_cc', object.maps.get('bpfkit_cc')!, object.btf!, k, targets);
  return { value, targets };
};

describe('struct_ops layout', () => {
  it('lays the table out in the kernel struct: programs by member index, the name copied, slots after `data`', () => {
    const { value, targets } = prepare(kernel(['init', 'undo_cwnd', 'x', 'ssthresh', 'cong_avoid']));
    expect(value).toMatchObject({ typeName: 'tcp_congestion_ops', valueTypeId: 7, valueSize: 8 + 40 + 16 });
    expect(value.slots).toEqual([
      { offset: 8 + 24, program: 'cc_ssthresh' },
      { offset: 8 + 32, program: 'cc_cong_avoid' },
      { offset: 8 + 8, program: 'cc_undo_cwnd' },
      { offset: 8, program: 'cc_init' },
    ]);
    expect(targets.get('cc_ssthresh')).toMatchObject({ attachBtfId: 6, attachType: 3 });
    expect(targets.get('cc_init')).toMatchObject({ attachBtfId: 6, attachType: 0 });
    expect(Buffer.from(value.value.subarray(48, 57)).toString()).toBe('bpfkit_cc');
  });

  it('a set member the kernel lacks is an error naming it; a size that differs too', () => {
    expect(() => prepare(kernel(['ssthresh', 'cong_avoid', 'undo_cwnd']))).toThrow(StructOpsLayoutError);
    expect(() => prepare(kernel(['ssthresh', 'cong_avoid', 'undo_cwnd']))).toThrow(
      /map 'bpfkit_cc', member 'init': struct tcp_congestion_ops of this kernel has no such member/,
    );
    expect(() => prepare(kernel(['ssthresh', 'cong_avoid', 'undo_cwnd', 'init'], 8))).toThrow(
      /member 'name': is 16 bytes here and 8 in the kernel/,
    );
  });
});
