/**
 * @bpfkit/asm — the eBPF instruction set in TypeScript: a builder with labels and symbolic map
 * and subprogram references, an encoder and decoder, and a disassembler that reads like bpftool.
 *
 * ```ts
 * import { Builder, R0, R1, reg } from '@bpfkit/asm';
 * const prog = new Builder().mov64(R0, 0).jeq(R1, 0, 'out').mov64(R0, reg(R1)).label('out').exit().assemble();
 * ```
 * @packageDocumentation
 */
export {
  type Assembled,
  assemble,
  Builder,
  type MapRef,
  type Operand,
  R0,
  R1,
  R2,
  R3,
  R4,
  R5,
  R6,
  R7,
  R8,
  R9,
  R10,
  type Reg,
  type RegOperand,
  reg,
  type SizeArg,
} from './builder.js';
export { type DisasmOptions, disassemble, formatInsn } from './disasm.js';
export { AsmError } from './errors.js';
export { helperId, helperName } from './helpers.js';
export { decode, encode, type Insn, imm64, isWide, type Ref, slotIndex, slots } from './insn.js';
export * from './opcodes.js';
export { validate } from './validate.js';
