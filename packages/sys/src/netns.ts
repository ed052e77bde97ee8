// Network namespaces: run synchronous work in another one (setns(2) on the calling thread).
import { closeSync, openSync } from 'node:fs';
import { BpfError } from './errors.js';
import { cSetns, errno } from './ffi.js';

const CLONE_NEWNET = 0x40000000;

function enter(fd: number, what: string): void {
  if (cSetns(fd, CLONE_NEWNET) < 0) throw new BpfError('setns', errno(), what);
}

/**
 * Run `fn` in the network namespace at `path` (`/run/netns/<name>` as `ip netns add` makes it,
 * or `/proc/<pid>/ns/net`), then return to the calling thread's own. Only the calling thread
 * moves, so `fn` must be synchronous: sockets, interface lookups and attachments made in it
 * belong to that namespace and stay there.
 */
export function withNetns<T>(path: string, fn: () => T): T {
  const home = openSync('/proc/thread-self/ns/net', 'r');
  try {
    const target = openSync(path, 'r');
    try {
      enter(target, path);
    } finally {
      closeSync(target);
    }
    try {
      return fn();
    } finally {
      enter(home, 'the original network namespace');
    }
  } finally {
    closeSync(home);
  }
}
