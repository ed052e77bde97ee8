import { Defines, type Fd, NativeBuffer, progLoad } from '@bpfkit/sys';

/** One raw instruction: opcode, registers byte (src << 4 | dst), offset, immediate. The sys layer's
 * tests cannot use @bpfkit/asm (a layer above), so they spell the two instructions they need. */
export type RawInsn = [code: number, regs: number, off: number, imm: number];

/** Encode raw instructions into native memory (8 bytes each). */
export const insns = (...list: RawInsn[]): NativeBuffer => {
  const buf = new NativeBuffer(list.length * 8);
  list.forEach(([code, regs, off, imm], i) => {
    buf.view.setUint8(i * 8, code);
    buf.view.setUint8(i * 8 + 1, regs);
    buf.view.setInt16(i * 8 + 2, off, true);
    buf.view.setInt32(i * 8 + 4, imm, true);
  });
  return buf;
};

export const D = Defines;
export const mov64Imm = (dst: number, imm: number): RawInsn => [
  D.BPF_ALU64 | D.BPF_MOV | D.BPF_K,
  dst,
  0,
  imm,
];
export const exit = (): RawInsn => [D.BPF_JMP | D.BPF_EXIT, 0, 0, 0];

/** Load `r0 = ret; exit` as a program of `progType`. */
export function loadReturn(progType: number, ret: number, extra: Record<string, number> = {}): Fd {
  using code = insns(mov64Imm(0, ret), exit());
  using license = NativeBuffer.from('GPL');
  return progLoad({ progType, insns: code.ptr, insnCnt: 2, license: license.ptr, ...extra });
}

export { cgroup2Root, tempBpffs, tempCgroup } from '../../../tools/testing/kernel.js';
