import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { BPF_FS_MAGIC, mount, statfsType } from '@bpfkit/sys';

export const DEFAULT_BPFFS = '/sys/fs/bpf';

/** True when `path` (or, if it does not exist yet, its nearest existing parent) is on bpffs. */
export function isBpffs(path: string): boolean {
  let p = path;
  while (!existsSync(p)) {
    const up = dirname(p);
    if (up === p) return false;
    p = up;
  }
  try {
    return statfsType(p) === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Make sure bpffs is mounted at `path` (default /sys/fs/bpf): mounts it when it is not, and
 * says so in the result.
 */
export function ensureBpffs(path = DEFAULT_BPFFS): { path: string; mounted: boolean } {
  if (existsSync(path) && isBpffs(path) && statfsType(path) === BPF_FS_MAGIC) return { path, mounted: false };
  mkdirSync(path, { recursive: true });
  mount('bpf', path, 'bpf', 0, 'mode=0700');
  return { path, mounted: true };
}
