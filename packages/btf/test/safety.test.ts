// Walks over hostile BTF the kernel accepts (or that is simply malformed) end with a typed
// error or a result, never a hang, a stack overflow or a read outside the data.
import {
  Btf,
  BtfLookupError,
  decodeValue,
  encodeValue,
  formatValue,
  BtfKind as K,
  resolveCoreRelo,
} from '@bpfkit/btf';
import { describe, expect, it } from 'vitest';
import { BlobWriter } from '../../../tools/testing/btf.js';

const INT = (w: BlobWriter, name = 'int') => w.type(name, K.INT, 0, 4, [(1 << 24) | 32]);

/** `depth` unions, each with two members of the next, over an int; type 1 is the root. */
function unionDag(depth: number, named: boolean): Btf {
  const w = new BlobWriter();
  for (let k = 0; k < depth; k++) {
    const next = k + 2;
    const a = named ? w.str('a') : 0;
    const b = named ? w.str('b') : 0;
    w.type(`u${k}`, K.UNION, 2, 4, [a, next, 0, b, next, 0]);
  }
  INT(w);
  return Btf.parse(w.build());
}

describe('a union DAG of depth 30 (2^30 paths, which the kernel accepts)', () => {
  for (const named of [true, false])
    it(`${named ? 'named' : 'anonymous'} members: every walk completes`, () => {
      const btf = unionDag(30, named);
      expect(btf.sizeof(1)).toBe(4);
      expect(btf.alignof(1)).toBe(4);
      expect(() => btf.flatten(1)).toThrow(/expands to more than \d+ members/);
      expect(() => btf.member(1, 'absent')).toThrow(BtfLookupError);
      expect(() => formatValue(btf, 1, new Uint8Array(4))).toThrow(/expands to more values/);
      // CO-RE: a field access through the DAG, matched against the same BTF
      expect(resolveCoreRelo(btf, btf, { insnOff: 0, typeId: 1, access: '0:0', kind: 0 }).poison).toBe(false);
      expect(resolveCoreRelo(btf, btf, { insnOff: 0, typeId: 1, access: '0', kind: 12 }).poison).toBe(false);
    });
});

describe('nesting, loops and sizes the kernel refuses are BtfLookupErrors', () => {
  it('nesting deeper than the kernel’s 32 levels', () => {
    const w = new BlobWriter();
    for (let k = 0; k < 40; k++) w.type('', K.ARRAY, 0, 0, [k + 2, 41, 1]);
    INT(w);
    const btf = Btf.parse(w.build());
    expect(() => btf.sizeof(1)).toThrow(/nesting deeper than 32/);
    expect(() => btf.alignof(1)).toThrow(/nesting deeper than 32/);
    expect(btf.sizeof(20)).toBe(4); // 21 levels: fine, and the memo does not change the answer
    expect(() => btf.sizeof(1)).toThrow(/nesting deeper than 32/);
  });

  it('a struct that contains itself, and an array of itself', () => {
    const w = new BlobWriter();
    w.type('s', K.STRUCT, 1, 8, [w.str('self'), 1, 0]); // 1
    w.type('', K.ARRAY, 0, 0, [2, 3, 4]); // 2: array of itself
    INT(w); // 3
    w.type('t', K.TYPEDEF, 0, 5); // 4 → 5
    w.type('', K.CONST, 0, 4); // 5 → 4
    const btf = Btf.parse(w.build());
    expect(() => btf.alignof(1)).toThrow(/contains itself/);
    expect(() => btf.flatten(1)).toThrow(/contains itself/);
    expect(() => btf.sizeof(2)).toThrow(/contains itself/);
    expect(() => btf.resolve(4)).toThrow(/reference chain is longer/);
    expect(() => decodeValue(btf, 1, new DataView(new ArrayBuffer(8)))).toThrow(BtfLookupError);
  });

  it('an array larger than 4 GiB', () => {
    const w = new BlobWriter();
    w.type('', K.ARRAY, 0, 0, [2, 2, 0xffffffff]);
    INT(w);
    expect(() => Btf.parse(w.build()).sizeof(1)).toThrow(/larger than 4 GiB/);
  });
});

describe('decodeValue and encodeValue stay inside the bytes they are given', () => {
  const w = new BlobWriter();
  INT(w); // 1
  w.type('far', K.STRUCT, 1, 8, [w.str('x'), 1, 64 * 8]); // 2: member at byte 64 of an 8-byte struct
  w.type('char', K.INT, 0, 1, [(2 << 24) | 8]); // 3
  w.type('', K.ARRAY, 0, 0, [3, 1, 16]); // 4: char[16]
  w.type('odd', K.STRUCT, 1, 4, [w.str('y'), 1, 3]); // 5: not byte aligned
  const btf = Btf.parse(w.build());
  const buffer = new Uint8Array(64).fill(0x41);

  it('a member offset beyond the data is a RangeError naming the type and offset', () => {
    const view = new DataView(buffer.buffer, 0, 8);
    expect(() => decodeValue(btf, 2, view)).toThrow(RangeError);
    expect(() => decodeValue(btf, 2, view)).toThrow(
      /type 1 \(int 'int'\) at byte 64 needs 4 bytes, beyond the 8-byte value/,
    );
  });

  it('a char array is not read past the view, even where the buffer goes on', () => {
    expect(() => decodeValue(btf, 4, new DataView(buffer.buffer, 0, 8))).toThrow(
      /needs 16 bytes, beyond the 8-byte/,
    );
    expect(decodeValue(btf, 4, new DataView(buffer.buffer, 0, 16))).toBe('A'.repeat(16));
  });

  it('a member that does not start on a byte is malformed BTF', () => {
    expect(() => decodeValue(btf, 5, new DataView(new ArrayBuffer(8)))).toThrow(
      /starts at bit 3, not on a byte/,
    );
  });

  it('an int wider than BTF allows is refused, not decoded byte by byte', () => {
    const b = new BlobWriter();
    b.type('huge', K.INT, 0, 65535, [8]);
    const big = Btf.parse(b.build());
    expect(() => formatValue(big, 1, new Uint8Array(65535))).toThrow(/65535 bytes, which BTF does not allow/);
    expect(() => encodeValue(big, 1, new DataView(new ArrayBuffer(65535)), 0, 1)).toThrow(BtfLookupError);
  });

  it('encodeValue does not write past the view', () => {
    const bytes = new Uint8Array(32);
    expect(() => encodeValue(btf, 4, new DataView(bytes.buffer, 0, 8), 0, 'hi')).toThrow(RangeError);
    expect(() => encodeValue(btf, 2, new DataView(bytes.buffer, 0, 8), 0, { x: 1 })).toThrow(RangeError);
    expect(bytes).toEqual(new Uint8Array(32));
  });
});
