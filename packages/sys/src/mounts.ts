// Mount points, from /proc/self/mountinfo.
import { readFileSync } from 'node:fs';

/** One line of /proc/self/mountinfo. */
export interface Mount {
  /** Where it is mounted. */
  point: string;
  /** The filesystem type, such as `cgroup2`, `tracefs` or `bpf`. */
  fstype: string;
  source: string;
}

/** mountinfo writes space, tab, newline and backslash in paths as a backslash and three octal digits. */
const unescapeOctal = (s: string) =>
  s.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));

/** This process's mounts, in /proc/self/mountinfo order. */
export function mounts(): Mount[] {
  const out: Mount[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    // mount id, parent id, major:minor, root, mount point, options, optional fields..., '-', fstype, source, ...
    const [pre, post] = line.split(' - ');
    const point = pre?.split(' ')[4];
    if (!point || post === undefined) continue;
    const [fstype = '', source = ''] = post.split(' ');
    out.push({ point: unescapeOctal(point), fstype, source: unescapeOctal(source) });
  }
  return out;
}

let cgroup2: string | undefined;

/** Where the cgroup v2 hierarchy is mounted (unified or hybrid layout), from /proc/self/mountinfo. */
export function cgroup2Mount(): string {
  cgroup2 ??= mounts().find((m) => m.fstype === 'cgroup2')?.point;
  if (cgroup2 === undefined)
    throw new Error('no cgroup v2 hierarchy is mounted (no cgroup2 entry in /proc/self/mountinfo)');
  return cgroup2;
}
