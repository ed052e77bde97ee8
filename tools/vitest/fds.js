import { readdirSync, readlinkSync } from 'node:fs';

/** The process's open fds, number → what they point to (`anon_inode:bpf-map`, a path, ...). */
export function openFds() {
  const out = new Map();
  for (const name of readdirSync('/proc/self/fd')) {
    try {
      out.set(Number(name), readlinkSync(`/proc/self/fd/${name}`));
    } catch {
      // the fd readdir itself used, already closed
    }
  }
  return out;
}

/** Fds open in `after` that were not open (to the same object) in `before`. */
export function leakedFds(before, after) {
  const leaked = [];
  for (const [fd, target] of after) {
    if (before.get(fd) === target) continue;
    if (target.startsWith('/proc/')) continue;
    leaked.push({ fd, target });
  }
  return leaked;
}
