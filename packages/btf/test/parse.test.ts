import { Btf, BtfLookupError, BtfParseError, BtfKind as K, parseBtf } from '@bpfkit/btf';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlobWriter } from '../../../tools/testing/btf.js';

/** One type of every kind. */
function everyKind(): Uint8Array {
  const w = new BlobWriter();
  w.type('int', K.INT, 0, 4, [(1 << 24) | 32]); // 1 signed int
  w.type('', K.PTR, 0, 1); // 2 int *
  w.type('', K.ARRAY, 0, 0, [1, 1, 4]); // 3 int[4]
  w.type(
    'pair',
    K.STRUCT,
    3,
    24,
    [w.str('a'), 1, 0, w.str('arr'), 3, 32, w.str('bits'), 1, (3 << 24) | 160],
    true,
  ); // 4
  w.type('u', K.UNION, 1, 4, [w.str('x'), 1, 0]); // 5
  w.type('color', K.ENUM, 2, 4, [w.str('RED'), 0, w.str('NEG'), -1 >>> 0], true); // 6 signed enum
  w.type('fwd_s', K.FWD, 0, 0); // 7
  w.type('int_t', K.TYPEDEF, 0, 1); // 8
  w.type('', K.VOLATILE, 0, 8); // 9
  w.type('', K.CONST, 0, 9); // 10
  w.type('', K.RESTRICT, 0, 2); // 11
  w.type('', K.FUNC_PROTO, 1, 1, [w.str('arg'), 1]); // 12
  w.type('f', K.FUNC, 1, 12); // 13 global
  w.type('g', K.VAR, 0, 1, [1]); // 14
  w.type('.data', K.DATASEC, 1, 4, [14, 0, 4]); // 15
  w.type('double', K.FLOAT, 0, 8); // 16
  w.type('tag', K.DECL_TAG, 0, 4, [1]); // 17 on member 1 of pair
  w.type('user', K.TYPE_TAG, 0, 1); // 18
  w.type('big', K.ENUM64, 1, 8, [w.str('HUGE'), 0, 0x10000]); // 19
  return w.build();
}

describe('parseBtf', () => {
  it('parses every BTF kind', () => {
    const btf = Btf.parse(everyKind());
    const kinds = [...btf.types()].map((t) => t.kind);
    expect(kinds).toEqual([
      'int',
      'ptr',
      'array',
      'struct',
      'union',
      'enum',
      'fwd',
      'typedef',
      'volatile',
      'const',
      'restrict',
      'func_proto',
      'func',
      'var',
      'datasec',
      'float',
      'decl_tag',
      'type_tag',
      'enum64',
    ]);
    expect(btf.find('int', 'int')).toMatchObject({ size: 4, signed: true, bits: 32 });
    const pair = btf.find('pair', 'struct');
    expect(pair.members.map((m) => [m.name, m.bitOffset, m.bitSize])).toEqual([
      ['a', 0, 0],
      ['arr', 32, 0],
      ['bits', 160, 3],
    ]);
    expect(btf.find('color', 'enum').values).toEqual([
      { name: 'RED', value: 0n },
      { name: 'NEG', value: -1n },
    ]);
    expect(btf.find('big', 'enum64').values[0]!.value).toBe(0x10000n << 32n);
    expect(btf.find('f', 'func')).toMatchObject({ type: 12, linkage: 1 });
    expect(btf.find('.data', 'datasec').vars).toEqual([{ type: 14, offset: 0, size: 4 }]);
    expect(btf.find('tag', 'decl_tag').componentIdx).toBe(1);
  });

  it('computes sizes, alignment, member offsets and flattened layouts', () => {
    const btf = Btf.parse(everyKind());
    expect(btf.sizeof(3)).toBe(16);
    expect(btf.sizeof(10)).toBe(4); // const volatile int_t → int
    expect(btf.sizeof(2)).toBe(8);
    expect(btf.alignof(4)).toBe(4);
    expect(btf.member(4, 'arr').bitOffset).toBe(32);
    expect(btf.flatten(4)).toEqual([
      { path: 'a', offset: 0, size: 4, bitOffset: 0, bitSize: 0, type: 1 },
      { path: 'arr', offset: 4, size: 16, bitOffset: 0, bitSize: 0, type: 3 },
      { path: 'bits', offset: 20, size: 4, bitOffset: 0, bitSize: 3, type: 1 },
    ]);
    expect(() => btf.member(4, 'nope')).toThrow(BtfLookupError);
    expect(() => btf.typeById(99)).toThrow(/does not exist/);
    expect(() => btf.sizeof(13)).toThrow(/has no size/);
  });

  it('reads the running kernel’s BTF', () => {
    const btf = Btf.kernel();
    expect(btf.typeCount).toBeGreaterThan(10_000);
    const task = btf.find('task_struct', 'struct');
    expect(btf.member(task.id, 'pid').member.name).toBe('pid');
    expect(btf.enumValues('bpf_map_type').get('BPF_MAP_TYPE_HASH')).toBe(1n);
    expect(btf.sizeof(btf.find('bpf_insn', 'struct').id)).toBe(8);
  });

  it('reads split BTF on top of a base, as kernel modules ship it', () => {
    const base = Btf.kernel();
    const task = base.find('task_struct', 'struct');
    // A module-style blob: ids continue after the base's, strings after the base's strings.
    const strings = new TextEncoder().encode('\0bpfkit_mod_t\0');
    const words = [0, 2 << 24, task.id, base.raw.strings.length + 1, 8 << 24, base.typeCount];
    const blob = new Uint8Array(24 + words.length * 4 + strings.length);
    const dv = new DataView(blob.buffer);
    dv.setUint16(0, 0xeb9f, true);
    dv.setUint8(2, 1);
    dv.setUint32(4, 24, true);
    dv.setUint32(12, words.length * 4, true);
    dv.setUint32(16, words.length * 4, true);
    dv.setUint32(20, strings.length, true);
    words.forEach((w, i) => {
      dv.setUint32(24 + i * 4, w, true);
    });
    blob.set(strings, 24 + words.length * 4);
    const mod = Btf.parse(blob, base);
    expect(mod.typeCount).toBe(base.typeCount + 2);
    const typedef = mod.find('bpfkit_mod_t', 'typedef');
    expect(typedef.id).toBe(base.typeCount + 1);
    expect(mod.resolve(typedef.id).kind).toBe('ptr');
    expect(mod.typeById(base.typeCount)).toMatchObject({ kind: 'ptr', type: task.id });
    expect(mod.find('task_struct', 'struct').id).toBe(task.id); // lookups fall through to the base
  });

  it('rejects malformed blobs with a typed error naming the offset', () => {
    const good = everyKind();
    expect(() => parseBtf(good.subarray(0, 10))).toThrow(/shorter than its header/);
    const badMagic = good.slice();
    badMagic[0] = 0;
    expect(() => parseBtf(badMagic)).toThrow(/bad BTF magic/);
    const truncated = good.slice();
    new DataView(truncated.buffer).setUint32(12, 10_000, true);
    expect(() => parseBtf(truncated)).toThrow(BtfParseError);
    const badName = good.slice();
    new DataView(badName.buffer).setUint32(24, 9999, true);
    expect(() => parseBtf(badName)).toThrow(
      /string offset 9999 is outside the string section \(at byte 24\)/,
    );
    const badKind = good.slice();
    new DataView(badKind.buffer).setUint32(28, 31 << 24, true);
    expect(() => parseBtf(badKind)).toThrow(/unknown kind 31/);
  });

  it('never crashes or hangs on corrupted input (seeded property test)', () => {
    const good = everyKind();
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.nat(good.length),
        (flips, cut) => {
          const b = good.slice(0, Math.max(cut, 1));
          for (const [at, v] of flips) if (at < b.length) b[at] = v;
          try {
            const btf = Btf.parse(b);
            for (const t of btf.types()) {
              try {
                btf.sizeof(t.id);
                if (t.kind === 'struct' || t.kind === 'union') btf.flatten(t.id);
              } catch (e) {
                if (!(e instanceof BtfLookupError)) throw e;
              }
            }
          } catch (e) {
            if (!(e instanceof BtfParseError)) throw e;
          }
        },
      ),
      { seed: 42, numRuns: 2000 },
    );
  });
});
