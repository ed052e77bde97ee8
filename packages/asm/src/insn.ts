import { AsmError } from './errors.js';
import { LD_IMM64 } from './opcodes.js';

/** A symbolic operand, resolved when the program is assembled (labels) or loaded (maps). */
export type Ref =
  | { kind: 'label'; name: string }
  | { kind: 'subprog'; name: string }
  | { kind: 'func'; name: string }
  | { kind: 'map'; name: string }
  | { kind: 'mapValue'; name: string; offset: number }
  /** A kernel variable (typed `__ksym`), resolved to its BTF id at load. */
  | { kind: 'ksym'; name: string }
  /** A kernel function (kfunc), resolved to its BTF id at load. */
  | { kind: 'kfunc'; name: string };

/** One instruction. A 16-byte ld_imm64 is one `Insn` with `imm64Hi` set and spans two slots. */
export interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
  /** High 32 bits of a 64-bit immediate (ld_imm64 only). */
  imm64Hi?: number;
  ref?: Ref;
}

export const isWide = (i: Insn) => i.code === LD_IMM64;
export const slots = (i: Insn) => (isWide(i) ? 2 : 1);

/** Encode instructions to bytes, 8 per slot, little-endian. */
export function encode(insns: readonly Insn[]): Uint8Array {
  let n = 0;
  for (const i of insns) n += slots(i);
  const out = new Uint8Array(n * 8);
  const dv = new DataView(out.buffer);
  let at = 0;
  for (const i of insns) {
    dv.setUint8(at, i.code);
    dv.setUint8(at + 1, ((i.src & 0xf) << 4) | (i.dst & 0xf));
    dv.setInt16(at + 2, i.off, true);
    dv.setInt32(at + 4, i.imm | 0, true);
    at += 8;
    if (isWide(i)) {
      dv.setInt32(at + 4, (i.imm64Hi ?? 0) | 0, true);
      at += 8;
    }
  }
  return out;
}

/** Decode bytes (8 per slot) into instructions. Throws {@link AsmError} on a torn ld_imm64 or odd length. */
export function decode(bytes: Uint8Array): Insn[] {
  if (bytes.length % 8 !== 0)
    throw new AsmError(`instruction bytes must be a multiple of 8, got ${bytes.length}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Insn[] = [];
  for (let at = 0; at < bytes.length; at += 8) {
    const regs = dv.getUint8(at + 1);
    const insn: Insn = {
      code: dv.getUint8(at),
      dst: regs & 0xf,
      src: regs >> 4,
      off: dv.getInt16(at + 2, true),
      imm: dv.getInt32(at + 4, true),
    };
    if (insn.code === LD_IMM64) {
      if (at + 16 > bytes.length) throw new AsmError('ld_imm64 is missing its second half', at / 8);
      if (dv.getUint32(at + 8, true) !== 0)
        throw new AsmError('the second half of ld_imm64 must be zero but for its immediate', at / 8 + 1);
      insn.imm64Hi = dv.getInt32(at + 12, true);
      at += 8;
    }
    out.push(insn);
  }
  return out;
}

/** Slot index of every instruction, and the total slot count. */
export function slotIndex(insns: readonly Insn[]): { at: number[]; total: number } {
  const at: number[] = [];
  let n = 0;
  for (const i of insns) {
    at.push(n);
    n += slots(i);
  }
  return { at, total: n };
}

/** The 64-bit immediate of an ld_imm64. */
export const imm64 = (i: Insn): bigint => (BigInt(i.imm64Hi ?? 0) << 32n) | BigInt.asUintN(32, BigInt(i.imm));
