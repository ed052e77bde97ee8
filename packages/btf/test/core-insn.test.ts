// CO-RE applied to instructions: each relocation kind patches the `Insn` clang emitted it on,
// a changed field size rewrites the access size, unsatisfiable relocations poison without
// moving any instruction, and instructions that do not carry the recorded value are refused.
import { encode, type Insn, LD_IMM64 } from '@bpfkit/asm';
import {
  applyCoreRelos,
  Btf,
  CoreError,
  type CoreRelo,
  CoreReloKind,
  patchCoreRelo,
  resolveCoreRelo,
} from '@bpfkit/btf';
import { describe, expect, it } from 'vitest';
import { BlobWriter } from '../../../tools/testing/btf.js';

const INT = 1;
const STRUCT = 4;
const intType = (w: BlobWriter, name: string, bytes: number) =>
  w.type(name, INT, 0, bytes, [(1 << 24) | (bytes * 8)]);

// local: struct s { int a; int b; }   target: struct s { int a; long pad; long b; }
const local = (() => {
  const w = new BlobWriter();
  intType(w, 'int', 4);
  w.type('s', STRUCT, 2, 8, [w.str('a'), 1, 0, w.str('b'), 1, 32]);
  w.type('gone', STRUCT, 1, 4, [w.str('x'), 1, 0]);
  return Btf.parse(w.build());
})();
const target = (() => {
  const w = new BlobWriter();
  intType(w, 'int', 4);
  intType(w, 'long', 8);
  w.type('s', STRUCT, 3, 24, [w.str('a'), 1, 0, w.str('pad'), 2, 64, w.str('b'), 2, 128]);
  return Btf.parse(w.build());
})();

const relo = (kind: CoreReloKind, access: string, typeId = 2): CoreRelo => ({
  insnOff: 0,
  typeId,
  access,
  kind,
});
const ldxw = (off: number): Insn => ({ code: 0x61, dst: 0, src: 1, off, imm: 0 }); // r0 = *(u32 *)(r1 + off)
const movImm = (imm: number): Insn => ({ code: 0xb7, dst: 0, src: 0, off: 0, imm }); // r0 = imm
const ldImm64 = (v: number): Insn => ({ code: LD_IMM64, dst: 2, src: 0, off: 0, imm: v, imm64Hi: 0 });
const exit: Insn = { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 };

describe('CO-RE on instructions', () => {
  it('patches offsets, access sizes, immediates and 64-bit immediates in place', () => {
    const insns = [ldImm64(8), ldxw(4), movImm(4), exit];
    // slots: ld_imm64 0-1, ldx 2, mov 3, exit 4
    const out = applyCoreRelos(
      insns,
      [
        { slot: 0, relo: relo(CoreReloKind.TYPE_SIZE, '0') },
        { slot: 2, relo: relo(CoreReloKind.FIELD_BYTE_OFFSET, '0:1') },
        { slot: 3, relo: relo(CoreReloKind.FIELD_BYTE_SIZE, '0:1') },
      ],
      local,
      target,
    );
    expect(out.poisoned).toEqual([]);
    expect(out.insns[0]).toMatchObject({ code: LD_IMM64, imm: 24, imm64Hi: 0 });
    expect(out.insns[1]).toEqual({ code: 0x79, dst: 0, src: 1, off: 16, imm: 0 }); // ldx dw, offset 16
    expect(out.insns[2]).toMatchObject({ code: 0xb7, imm: 8 });
    expect(out.insns[3]).toEqual(exit);
    expect(insns[1]).toEqual(ldxw(4)); // the input is not modified
    expect(out.resolutions.map((r) => r.slot)).toEqual([0, 2, 3]);
  });

  it('poisons an unsatisfiable relocation, an ld_imm64 as two calls so no slot moves', () => {
    const insns = [ldImm64(4), ldxw(0), exit];
    const out = applyCoreRelos(
      insns,
      [
        { slot: 0, relo: relo(CoreReloKind.TYPE_SIZE, '0', 3) },
        { slot: 2, relo: relo(CoreReloKind.FIELD_BYTE_OFFSET, '0:0', 3) },
      ],
      local,
      target,
    );
    const call = { code: 0x85, dst: 0, src: 0, off: 0, imm: 0xbad2310 };
    expect(out.insns).toEqual([call, call, call, exit]);
    expect(encode(out.insns).length).toBe(encode(insns).length);
    expect(out.poisoned).toEqual([
      expect.stringMatching(/^instruction 0: type_size of struct 'gone'/),
      expect.stringMatching(
        /^instruction 2: field_byte_offset of struct 'gone' .*'x' of struct 'gone' not found/,
      ),
    ]);
  });

  it('existence relocations of missing things become 0, not poison', () => {
    const out = applyCoreRelos(
      [movImm(1), exit],
      [{ slot: 0, relo: relo(CoreReloKind.TYPE_EXISTS, '0', 3) }],
      local,
      target,
    );
    expect(out.insns[0]).toMatchObject({ code: 0xb7, imm: 0 });
    expect(out.poisoned).toEqual([]);
  });

  it('refuses instructions that do not carry what clang recorded', () => {
    const res = resolveCoreRelo(local, target, relo(CoreReloKind.FIELD_BYTE_OFFSET, '0:1'));
    expect(() => patchCoreRelo(ldxw(5), relo(0, '0:1'), res, 7)).toThrow(
      new CoreError('instruction 7 has offset 5, expected 4'),
    );
    expect(() => patchCoreRelo({ ...ldxw(4), code: 0x71 }, relo(0, '0:1'), res, 7)).toThrow(
      /instruction 7 accesses 1 bytes, field was 4/,
    );
    expect(() => patchCoreRelo({ ...movImm(4), code: 0xbf }, relo(1, '0:1'), res, 3)).toThrow(
      /register ALU instruction 3/,
    );
    expect(() => patchCoreRelo(exit, relo(0, '0:1'), res, 9)).toThrow(
      /unsupported instruction 0x95 at instruction 9/,
    );
    expect(() =>
      applyCoreRelos(
        [ldImm64(8), exit],
        [{ slot: 1, relo: relo(CoreReloKind.TYPE_SIZE, '0') }],
        local,
        target,
      ),
    ).toThrow(/instruction 1 is inside an ld_imm64/);
    expect(() =>
      applyCoreRelos([exit], [{ slot: 4, relo: relo(CoreReloKind.TYPE_SIZE, '0') }], local, target),
    ).toThrow(/instruction 4 is outside the program/);
  });
});
