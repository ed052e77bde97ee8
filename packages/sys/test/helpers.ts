import { Defines, encodeRawInsns, type Fd, NativeBuffer, progLoad, type RawInsn } from '@bpfkit/sys';

export const D = Defines;
export const mov64Imm = (dst: number, imm: number): RawInsn => [
  D.BPF_ALU64 | D.BPF_MOV | D.BPF_K,
  dst,
  0,
  imm,
];
export const exit = (): RawInsn => [D.BPF_JMP | D.BPF_EXIT, 0, 0, 0];
export const insns = encodeRawInsns;

/** Load `r0 = ret; exit` as a program of `progType`. */
export function loadReturn(progType: number, ret: number, extra: Record<string, number> = {}): Fd {
  using code = insns(mov64Imm(0, ret), exit());
  using license = NativeBuffer.from('GPL');
  return progLoad({ progType, insns: code.ptr, insnCnt: 2, license: license.ptr, ...extra });
}

export { cgroup2Root, tempBpffs, tempCgroup } from '../../../tools/testing/kernel.js';
