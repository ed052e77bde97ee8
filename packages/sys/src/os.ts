// Wrappers for the non-bpf syscalls the stack needs. Each failure is a BpfError naming the call.
import { structKinds, structLayout } from './abi.generated.js';
import { type AttrValue, type CamelCase, writeField } from './attr.js';
import { BpfError } from './errors.js';
import { Fd } from './fd.js';
import {
  cEpollCreate1,
  cEpollCtl,
  cEpollWait,
  cEventfd,
  cGetpagesize,
  cGetrlimit,
  cIoctlInt,
  cMmap,
  cMount,
  cMunmap,
  cRead,
  cSetrlimit,
  cSetsockoptInt,
  cStatfs,
  cUmount2,
  cWrite,
  errno,
  view as koffiView,
  type Ptr,
  SYS_perf_event_open,
  sysPerfEventOpen,
} from './ffi.js';
import { NativeBuffer } from './native.js';
import { intOption } from './options.js';

const check = (what: string, r: number | bigint, detail?: string): number => {
  if (r < 0) throw new BpfError(what, errno(), detail);
  return Number(r);
};

export const pageSize: number = cGetpagesize();

// ---- perf_event_open ------------------------------------------------------------------------

type PerfAttrLayout = typeof structLayout.perfEventAttr;
/** `struct perf_event_attr` fields in camelCase (`type`, `config`, `samplePeriod`, `wakeupEvents`, `disabled`, ...). */
export type PerfEventAttrArgs = {
  -readonly [K in Exclude<keyof PerfAttrLayout, '$size'> as CamelCase<K & string>]?: AttrValue;
};

/** Encode a `struct perf_event_attr` (size field set automatically). */
export function encodePerfEventAttr(args: PerfEventAttrArgs): NativeBuffer {
  const layout = structLayout.perfEventAttr as Record<string, readonly number[]>;
  const size = structLayout.perfEventAttr.$size[1];
  const kinds = structKinds.perfEventAttr;
  const buf = new NativeBuffer(size);
  try {
    writeField(buf.view, layout.size!, size, 'size');
    for (const [k, v] of Object.entries(args)) {
      if (v === undefined) continue;
      const name = k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
      const field = layout[name];
      if (!field) throw new TypeError(`perf_event_attr has no field '${k}'`);
      writeField(buf.view, field, v, `perf_event_attr.${k}`, kinds?.[name]);
    }
  } catch (e) {
    buf[Symbol.dispose]();
    throw e;
  }
  return buf;
}

export const PERF_FLAG_FD_CLOEXEC = 8;

/** perf_event_open(2). `pid` -1 and a `cpu` for a per-CPU event; `pid` ≥ 0 and `cpu` -1 for a task. */
export function perfEventOpen(
  attr: PerfEventAttrArgs,
  pid: number,
  cpu: number,
  groupFd = -1,
  flags = PERF_FLAG_FD_CLOEXEC,
): Fd {
  const INT_MAX = 0x7fffffff;
  intOption(pid, 'perf_event_open pid', -1, INT_MAX);
  intOption(cpu, 'perf_event_open cpu', -1, INT_MAX);
  intOption(groupFd, 'perf_event_open group fd', -1, INT_MAX);
  intOption(flags, 'perf_event_open flags', 0, 0xffffffff);
  using buf = encodePerfEventAttr(attr);
  const r = sysPerfEventOpen(SYS_perf_event_open, buf.ptr, pid, cpu, groupFd, flags);
  return new Fd(check('perf_event_open', r, `pid ${pid}, cpu ${cpu}`), 'perf-event');
}

// ---- ioctl ----------------------------------------------------------------------------------

/** ioctl(2) with an integer (or address) argument. */
export function ioctl(fd: Fd | number, request: number, arg: number | bigint = 0): number {
  return check(
    'ioctl',
    cIoctlInt(typeof fd === 'number' ? fd : fd.value, request, arg),
    `request 0x${request.toString(16)}`,
  );
}

// ---- mmap -----------------------------------------------------------------------------------

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const MAP_PRIVATE = 2;
export const MAP_ANONYMOUS = 0x20;
export const MAP_FIXED = 0x10;
const MAP_FAILED = (1n << 64n) - 1n;

/** A memory mapping; `buffer` views it directly. Unmapped by `unmap()` or `Symbol.dispose`. */
export class Mapping {
  readonly buffer: ArrayBuffer;
  #addr: Ptr;
  constructor(
    addr: Ptr,
    readonly size: number,
  ) {
    this.#addr = addr;
    this.buffer = koffiView(addr, size);
  }
  get address(): Ptr {
    return this.#addr;
  }
  get unmapped(): boolean {
    return this.#addr === 0n;
  }
  unmap(): void {
    if (this.#addr === 0n) return;
    cMunmap(this.#addr, this.size);
    this.#addr = 0n;
  }
  [Symbol.dispose](): void {
    this.unmap();
  }
}

/** mmap(2) of `length` bytes of `fd` at `offset` (both page-aligned), or anonymous memory with fd -1. */
export function mmap(
  fd: Fd | number,
  length: number,
  prot: number,
  flags: number,
  offset = 0,
  addr: Ptr | null = null,
): Mapping {
  const raw = typeof fd === 'number' ? fd : fd.value;
  const p = cMmap(addr, length, prot, flags, raw, offset);
  if (BigInt.asUintN(64, BigInt(p)) === MAP_FAILED || p === null)
    throw new BpfError('mmap', errno(), `${length} bytes at offset ${offset}`);
  return new Mapping(BigInt(p), length);
}

const collected = new FinalizationRegistry<[Ptr, number]>(([addr, size]) => cMunmap(addr, size));

/**
 * mmap(2) owned by the garbage collector: the mapping lives exactly as long as the returned
 * ArrayBuffer, so no view into it can outlive it (an explicit munmap could leave views pointing
 * at unmapped memory). For memory handed to user code, such as an mmap-able map's values.
 */
export function mmapCollected(
  fd: Fd | number,
  length: number,
  prot: number,
  flags: number,
  offset = 0,
): ArrayBuffer {
  const m = mmap(fd, length, prot, flags, offset);
  collected.register(m.buffer, [m.address, length]);
  return m.buffer;
}

// ---- epoll and eventfd ------------------------------------------------------------------------

export const EPOLLIN = 0x001;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;
const EPOLL_CLOEXEC = 0o2000000;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EVENT_SIZE = 12; // packed struct epoll_event on x86-64: u32 events, u64 data

/** An epoll instance. `wait()` fills {@link events}; read each with {@link eventData}. */
export class Epoll {
  readonly fd: Fd;
  readonly #events: NativeBuffer;
  readonly #ctl = new NativeBuffer(16);
  readonly max: number;

  constructor(max = 64) {
    this.fd = new Fd(check('epoll_create1', cEpollCreate1(EPOLL_CLOEXEC)), 'epoll');
    this.max = max;
    this.#events = new NativeBuffer(EVENT_SIZE * max);
  }
  /** Watch `fd` for `events` (EPOLLIN by default), reporting `data` back. */
  add(fd: Fd | number, data: number, events = EPOLLIN): void {
    this.#ctl.view.setUint32(0, events, true);
    this.#ctl.view.setBigUint64(4, BigInt(data), true);
    check(
      'epoll_ctl',
      cEpollCtl(this.fd.value, EPOLL_CTL_ADD, typeof fd === 'number' ? fd : fd.value, this.#ctl.ptr),
    );
  }
  delete(fd: Fd | number): void {
    check('epoll_ctl', cEpollCtl(this.fd.value, EPOLL_CTL_DEL, typeof fd === 'number' ? fd : fd.value, null));
  }
  /** Block up to `timeoutMs` (-1: forever, 0: poll). Returns how many events are ready (EINTR → 0). */
  wait(timeoutMs: number): number {
    const r = cEpollWait(this.fd.value, this.#events.ptr, this.max, timeoutMs);
    if (r < 0) {
      const e = errno();
      if (e === 4) return 0;
      throw new BpfError('epoll_wait', e);
    }
    return r;
  }
  /**
   * Wait on a libuv pool thread (koffi async call): each readiness is consumed exactly once by
   * the kernel's epoll_wait, which fds with destructive poll (perf events) need. Resolves the
   * number of ready events (0 on timeout or EINTR). Uses its own event buffer.
   */
  waitAsync(timeoutMs: number): Promise<number> {
    this.#asyncEvents ??= new NativeBuffer(EVENT_SIZE * this.max);
    const events = this.#asyncEvents;
    return new Promise((resolve, reject) => {
      cEpollWait.async(this.fd.value, events.ptr, this.max, timeoutMs, (err: unknown, n: number) => {
        if (err) reject(err);
        else resolve(Math.max(n, 0));
      });
    });
  }
  #asyncEvents: NativeBuffer | undefined;

  /** The `data` of ready event `i`. */
  eventData(i: number): number {
    return Number(this.#events.view.getBigUint64(i * EVENT_SIZE + 4, true));
  }
  /** The `data` of ready event `i` of the last {@link waitAsync}. */
  asyncEventData(i: number): number {
    return Number(this.#asyncEvents!.view.getBigUint64(i * EVENT_SIZE + 4, true) & 0xffffffffn);
  }
  eventFlags(i: number): number {
    return this.#events.view.getUint32(i * EVENT_SIZE, true);
  }
  close(): void {
    this.fd.close();
    this.#events.free();
    this.#ctl.free();
    this.#asyncEvents?.free();
  }
  [Symbol.dispose](): void {
    this.close();
  }
}

const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;

/** An eventfd: `signal()` wakes whoever polls it, `drain()` resets it. */
export class EventFd {
  readonly fd: Fd;
  readonly #buf = new NativeBuffer(8);
  constructor() {
    this.fd = new Fd(check('eventfd', cEventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)), 'eventfd');
  }
  signal(): void {
    this.#buf.view.setBigUint64(0, 1n, true);
    check('write', cWrite(this.fd.value, this.#buf.ptr, 8));
  }
  drain(): bigint {
    const r = cRead(this.fd.value, this.#buf.ptr, 8);
    if (r < 0) return 0n;
    return this.#buf.view.getBigUint64(0, true);
  }
  close(): void {
    this.fd.close();
    this.#buf.free();
  }
  [Symbol.dispose](): void {
    this.close();
  }
}

// ---- filesystems ------------------------------------------------------------------------------

export const BPF_FS_MAGIC = 0xcafe4a11;
export const TRACEFS_MAGIC = 0x74726163;
export const CGROUP2_SUPER_MAGIC = 0x63677270;

/** statfs(2): the filesystem's magic number (`f_type`). */
export function statfsType(path: string): number {
  using buf = new NativeBuffer(120);
  check('statfs', cStatfs(path, buf.ptr), path);
  return Number(buf.view.getBigUint64(0, true));
}

export function mount(
  source: string,
  target: string,
  fstype: string,
  flags = 0,
  data: string | null = null,
): void {
  check('mount', cMount(source, target, fstype, flags, data), `${fstype} on ${target}`);
}

export function umount(target: string, flags = 0): void {
  check('umount2', cUmount2(target, flags), target);
}

// ---- sockets ----------------------------------------------------------------------------------

/** setsockopt(2) with a 32-bit integer value (e.g. SO_ATTACH_BPF with a program fd). */
export function setsockoptInt(sockFd: number, level: number, name: number, value: number): void {
  using buf = new NativeBuffer(4);
  buf.view.setInt32(0, value, true);
  check('setsockopt', cSetsockoptInt(sockFd, level, name, buf.ptr, 4), `level ${level}, option ${name}`);
}

// ---- rlimit ----------------------------------------------------------------------------------

export const RLIMIT_MEMLOCK = 8;
export const RLIM_INFINITY = (1n << 64n) - 1n;

export function getrlimit(resource: number): { cur: bigint; max: bigint } {
  using buf = new NativeBuffer(16);
  check('getrlimit', cGetrlimit(resource, buf.ptr));
  return { cur: buf.view.getBigUint64(0, true), max: buf.view.getBigUint64(8, true) };
}

export function setrlimit(resource: number, cur: bigint, max: bigint): void {
  using buf = new NativeBuffer(16);
  buf.view.setBigUint64(0, cur, true);
  buf.view.setBigUint64(8, max, true);
  check('setrlimit', cSetrlimit(resource, buf.ptr), `resource ${resource}`);
}
