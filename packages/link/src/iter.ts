// BPF iterators: an `iter/<target>` program attached with BPF_LINK_CREATE (BPF_TRACE_ITER, with
// the target's parameters in `union bpf_iter_link_info`: a map, a cgroup and walk order, a task),
// then BPF_ITER_CREATE makes a file whose read(2) runs the program over every object and returns
// what it wrote with bpf_seq_write/bpf_seq_printf. Each create starts a new walk.
import { readSync } from 'node:fs';
import type { Program } from '@bpfkit/loader';
import {
  AttachType,
  CgroupIterOrder,
  ClosedError,
  type Fd,
  fdNumber,
  type HasFd,
  iterCreate,
  linkCreate,
  NativeBuffer,
  oneOf,
  structLayout,
  writeField,
} from '@bpfkit/sys';
import { type CgroupTarget, openCgroup } from './cgroup.js';
import { Link } from './link.js';

/** How a cgroup iterator walks from its cgroup (`enum bpf_cgroup_iter_order`). */
export type CgroupIterOrderName = 'self_only' | 'descendants_pre' | 'descendants_post' | 'ancestors_up';
const ORDERS: Record<CgroupIterOrderName, number> = {
  self_only: CgroupIterOrder.SELF_ONLY,
  descendants_pre: CgroupIterOrder.DESCENDANTS_PRE,
  descendants_post: CgroupIterOrder.DESCENDANTS_POST,
  ancestors_up: CgroupIterOrder.ANCESTORS_UP,
};

export interface IterOptions {
  /** `iter/bpf_map_elem`, `iter/bpf_sk_storage_map`, `iter/sockmap`: the map to walk. */
  map?: HasFd | Fd;
  /** `iter/cgroup`: the cgroup to start from (a path or anything with one) and the order (default `descendants_pre`). */
  cgroup?: { target: CgroupTarget; order?: CgroupIterOrderName };
  /** `iter/task`, `iter/task_file`, `iter/task_vma`: only this thread (`tid`) or process (`pid`). */
  task?: { tid?: number; pid?: number };
}

const layout = structLayout.iterLinkInfo as unknown as Record<string, readonly number[]>;

/** An iterator's link: {@link IterLink.open} starts a walk. Closing it detaches the program. */
export class IterLink extends Link {
  /** Start a walk (BPF_ITER_CREATE): read its output from the returned {@link BpfIterator}. */
  open(): BpfIterator {
    if (this.fd.closed) throw new ClosedError('iterator link');
    return new BpfIterator(iterCreate({ linkFd: this.fd.value }, 'iterator'));
  }

  /** Run one walk and return all it wrote as text (UTF-8). */
  readAllText(): Promise<string> {
    using it = this.open();
    return Promise.resolve(it.readAllTextSync());
  }
}

/**
 * Attach an `iter/<target>` program (loaded with attach type `trace_iter` and its target, e.g.
 * `attachTo: 'task'`). `map`, `cgroup` or `task` narrow what it walks.
 */
export function attachIter(program: Program, opts: IterOptions = {}): IterLink {
  const given = [opts.map, opts.cgroup, opts.task].filter((x) => x !== undefined).length;
  if (given > 1) throw new TypeError('an iterator takes at most one of map, cgroup or task');
  using info = new NativeBuffer(layout.$size![1]!);
  let cgroupFd: Fd | undefined;
  try {
    if (opts.map) writeField(info.view, layout['map.map_fd']!, fdNumber(opts.map), 'iter map fd');
    if (opts.cgroup) {
      const order = opts.cgroup.order ?? 'descendants_pre';
      oneOf(order, Object.keys(ORDERS) as CgroupIterOrderName[], 'cgroup iterator order');
      cgroupFd = openCgroup(opts.cgroup.target);
      writeField(info.view, layout['cgroup.order']!, ORDERS[order], 'iter cgroup order');
      writeField(info.view, layout['cgroup.cgroup_fd']!, cgroupFd.value, 'iter cgroup fd');
    }
    if (opts.task?.tid !== undefined)
      writeField(info.view, layout['task.tid']!, opts.task.tid, 'iter task tid');
    if (opts.task?.pid !== undefined)
      writeField(info.view, layout['task.pid']!, opts.task.pid, 'iter task pid');
    const withInfo = given > 0;
    return new IterLink(
      linkCreate(
        {
          progFd: program.fd.value,
          attachType: AttachType.TRACE_ITER,
          iterInfo: withInfo ? info.ptr : 0n,
          iterInfoLen: withInfo ? info.size : 0,
        } as Parameters<typeof linkCreate>[0],
        'iterator',
      ),
    );
  } finally {
    cgroupFd?.close();
  }
}

const CHUNK = 64 * 1024;

/**
 * One walk of an iterator: its output, read in chunks (an async iterable of `Uint8Array`s), or
 * whole with {@link BpfIterator.readAll}/{@link BpfIterator.readAllText}. Owns the iterator fd.
 */
export class BpfIterator implements AsyncIterable<Uint8Array> {
  readonly fd: Fd;
  #done = false;

  constructor(fd: Fd) {
    this.fd = fd;
  }

  /** The next chunk of output, or undefined at the end of the walk. */
  readChunk(size = CHUNK): Uint8Array | undefined {
    if (this.fd.closed) throw new ClosedError('iterator');
    if (this.#done) return undefined;
    const buf = new Uint8Array(size);
    // read(2) of an iterator runs the program in the kernel; it never waits for anything else
    const n = readSync(this.fd.value, buf);
    if (n === 0) {
      this.#done = true;
      return undefined;
    }
    return buf.subarray(0, n);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (let c = this.readChunk(); c; c = this.readChunk()) yield c;
  }

  /** Everything left of the walk. */
  readAll(): Uint8Array {
    const parts: Uint8Array[] = [];
    for (let c = this.readChunk(); c; c = this.readChunk()) parts.push(c);
    return new Uint8Array(Buffer.concat(parts));
  }

  readAllTextSync(): string {
    return Buffer.from(this.readAll()).toString('utf8');
  }

  /** Everything left of the walk, as UTF-8 text. */
  async readAllText(): Promise<string> {
    const parts: Uint8Array[] = [];
    for await (const c of this) parts.push(c);
    return Buffer.concat(parts).toString('utf8');
  }

  close(): void {
    this.fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
