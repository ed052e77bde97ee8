// Network namespaces: run synchronous work in another one (setns(2) on the calling thread).
import { openSync } from 'node:fs';
import { BpfError } from './errors.js';
import { Fd } from './fd.js';
import { cSetns, errno } from './ffi.js';

const CLONE_NEWNET = 0x40000000;

function enter(fd: number, what: string): void {
  if (cSetns(fd, CLONE_NEWNET) < 0) throw new BpfError('setns', errno(), what);
}

const open = (path: string): Fd => new Fd(openSync(path, 'r'), 'netns');

/**
 * A network namespace held open by an fd: `run(fn)` runs `fn` in it on the calling thread and
 * returns the thread to where it was. Only the calling thread moves, so `fn` must be
 * synchronous: sockets, interface lookups and attachments made in it belong to the namespace.
 */
export class Netns {
  readonly fd: Fd;
  readonly #what: string;
  private constructor(fd: Fd, what: string) {
    this.fd = fd;
    this.#what = what;
  }
  /** The namespace the calling thread is in now. */
  static current(): Netns {
    return new Netns(open('/proc/thread-self/ns/net'), 'the network namespace it was made in');
  }
  /** The namespace at `path`: `/run/netns/<name>` as `ip netns add` makes it, or `/proc/<pid>/ns/net`. */
  static open(path: string): Netns {
    return new Netns(open(path), path);
  }
  run<T>(fn: () => T): T {
    using home = open('/proc/thread-self/ns/net');
    enter(this.fd.value, this.#what);
    try {
      return fn();
    } finally {
      enter(home.value, 'the original network namespace');
    }
  }
  close(): void {
    this.fd.close();
  }
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Run `fn` in the network namespace at `path`, then return to the calling thread's own (see {@link Netns}). */
export function withNetns<T>(path: string, fn: () => T): T {
  using ns = Netns.open(path);
  return ns.run(fn);
}
