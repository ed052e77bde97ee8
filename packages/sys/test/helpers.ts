import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BPF_FS_MAGIC,
  Defines,
  encodeRawInsns,
  type Fd,
  mount,
  NativeBuffer,
  progLoad,
  type RawInsn,
  statfsType,
  umount,
} from '@bpfkit/sys';

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

/** The cgroup v2 mount point, from /proc/self/mountinfo. */
export function cgroup2Root(): string {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (post?.startsWith('cgroup2 ')) return pre!.split(' ')[4]!;
  }
  throw new Error('no cgroup2 mount in /proc/self/mountinfo');
}

/** A fresh child cgroup; removed by dispose. */
export function tempCgroup(): { path: string } & Disposable {
  const path = join(cgroup2Root(), `bpfkit-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(path);
  return { path, [Symbol.dispose]: () => rmdirSync(path) };
}

/** A private bpffs mount on a temp dir; unmounted and removed by dispose. */
export function tempBpffs(): { path: string } & Disposable {
  const path = mkdtempSync(join(tmpdir(), 'bpfkit-fs-'));
  mount('bpf', path, 'bpf');
  if (statfsType(path) !== BPF_FS_MAGIC) throw new Error('bpffs mount did not take');
  return {
    path,
    [Symbol.dispose]: () => {
      umount(path);
      rmSync(path, { recursive: true });
    },
  };
}
