import { AsmError } from './errors.js';
import { type Insn, slotIndex } from './insn.js';
import { Class, cls, JmpOp, LD_IMM64, op, Pseudo } from './opcodes.js';

/**
 * Check instructions before they reach the kernel: registers within r0..r10, jumps and
 * bpf-to-bpf calls landing inside the program and on an instruction boundary (not in the
 * second half of an ld_imm64). Throws {@link AsmError} naming the instruction.
 */
export function validate(insns: readonly Insn[]): void {
  const { at, total } = slotIndex(insns);
  const starts = new Set(at);
  insns.forEach((insn, i) => {
    const slot = at[i]!;
    if (insn.dst > 10)
      throw new AsmError(`destination register r${insn.dst} is out of range (r0..r10)`, slot);
    const k = cls(insn.code);
    const usesSrcReg = insn.code !== LD_IMM64 && !(k === Class.JMP && op(insn.code) === JmpOp.call);
    if (usesSrcReg && insn.src > 10)
      throw new AsmError(`source register r${insn.src} is out of range (r0..r10)`, slot);
    if (k !== Class.JMP && k !== Class.JMP32) return;
    const o = op(insn.code);
    if (o === JmpOp.exit) return;
    let target: number | undefined;
    if (o === JmpOp.call) {
      if (insn.src === Pseudo.CALL) target = slot + 1 + insn.imm;
    } else if (o === JmpOp.ja && k === Class.JMP32) target = slot + 1 + insn.imm;
    else target = slot + 1 + insn.off;
    if (target === undefined) return;
    if (target < 0 || target >= total)
      throw new AsmError(
        `${o === JmpOp.call ? 'call' : 'jump'} target ${target} is outside the program (0..${total - 1})`,
        slot,
      );
    if (!starts.has(target))
      throw new AsmError(`jump target ${target} is the second half of an ld_imm64`, slot);
  });
}
