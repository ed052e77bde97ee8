// Kernel fixtures shared by the packages' tests: cgroups, bpffs mounts. Each cleans up on dispose.
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BPF_FS_MAGIC, mount, statfsType, umount } from '@bpfkit/sys';

/** The cgroup v2 mount point, from /proc/self/mountinfo. */
export function cgroup2Root() {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (post?.startsWith('cgroup2 ')) return pre.split(' ')[4];
  }
  throw new Error('no cgroup2 mount in /proc/self/mountinfo');
}

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
