// Kernel fixtures shared by the packages' tests: cgroups, bpffs mounts. Each cleans up on dispose.
import { mkdirSync, mkdtempSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BPF_FS_MAGIC, cgroup2Mount, mount, statfsType, umount } from '@bpfkit/sys';

/** The cgroup v2 mount point (`@bpfkit/sys`'s finder, which `@bpfkit/cgroup` exports too). */
export const cgroup2Root = cgroup2Mount;

/** A fresh child cgroup; removed by dispose. */
export function tempCgroup() {
  const path = join(cgroup2Root(), `bpfkit-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(path);
  return { path, [Symbol.dispose]: () => rmdirSync(path) };
}

/** A private bpffs mount on a temp dir; unmounted and removed by dispose. */
export function tempBpffs() {
  const path = mkdtempSync(join(tmpdir(), `bpfkit-fs-${process.pid}-`));
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
