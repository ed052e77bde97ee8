// Wrappers for the non-bpf syscalls the stack needs. Each failure is a BpfError naming the call.
import { constants } from 'node:os';
import { Defines, structKinds, structLayout } from './abi.generated.js';
import { type AttrValue, type CamelCase, writeField } from './attr.js';
import { BpfError, ClosedError } from './errors.js';
import { Fd, fdNumber } from './fd.js';
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

/**
 * The system's page size. x86-64 has one base page size, 4 KiB, so it costs nothing at import;
 * elsewhere (arm64: 4, 16 or 64 KiB) it is asked of libc.
 */
export const pageSize: number = process.arch === 'x64' ? 4096 : cGetpagesize();

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

export const PERF_FLAG_FD_CLOEXEC = Defines.PERF_FLAG_FD_CLOEXEC;

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
  return check('ioctl', cIoctlInt(fdNumber(fd), request, arg), `request 0x${request.toString(16)}`);
}

// ---- mmap -----------------------------------------------------------------------------------

export { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from './mman.js';

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
  const p = cMmap(addr, length, prot, flags, fdNumber(fd), offset);
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
const { EINTR } = constants.errno;
const EVENT_SIZE = 12; // packed struct epoll_event on x86-64: u32 events, u64 data

/**
 * How long one `epoll_wait` on a libuv pool thread may block before it returns and is issued
 * again. It bounds how long a pending {@link Epoll.waitAsync} can hold up the end of a thread:
 * `worker.terminate()` (which runs no more JavaScript in the worker) waits for the pool thread
 * to come back, and so does the process's exit. `close()`, `cancelWait()` and `process.exit()`
 * do not wait for it: they wake the pool thread through an eventfd in the same set.
 */
export const WAIT_SLICE_MS = 200;
/** `data` of the wake eventfd's event: above 2^53, so no `add(fd, data)` with a number can collide. */
const WAKE_DATA = 0x7fff_ffff_ffff_fff0n;

/** The epoll sets with a `waitAsync` in flight on this thread, woken when the thread exits. */
const waiting = new Set<Epoll>();
process.once('exit', () => {
  for (const ep of waiting) ep.cancelWait();
});

/**
 * An epoll instance. `wait()` fills {@link events}; read each with {@link eventData}.
 *
 * `close()` is safe while a {@link waitAsync} is in flight: it wakes the wait (which resolves
 * 0) and frees the fd and event buffers only once the pool thread has returned.
 */
export class Epoll {
  readonly fd: Fd;
  readonly #events: NativeBuffer;
  readonly #ctl = new NativeBuffer(16);
  readonly max: number;
  #asyncEvents: NativeBuffer | undefined;
  #wake: EventFd | undefined;
  #inFlight = false;
  #cancelled = false;
  #closed = false;

  constructor(max = 64) {
    if (!Number.isInteger(max) || max < 1 || max > 0x7fffffff / EVENT_SIZE)
      throw new RangeError(`epoll max events must be a whole number ≥ 1, got ${max}`);
    this.fd = new Fd(check('epoll_create1', cEpollCreate1(EPOLL_CLOEXEC)), 'epoll');
    this.max = max;
    this.#events = new NativeBuffer(EVENT_SIZE * max);
  }
  /** True once `close()` was called (the fd itself may close a moment later, after a running wait). */
  get closed(): boolean {
    return this.#closed || this.fd.closed;
  }
  #live(): number {
    if (this.#closed) throw new ClosedError('epoll');
    return this.fd.value;
  }
  /** Watch `fd` for `events` (EPOLLIN by default), reporting `data` back. */
  add(fd: Fd | number, data: number, events = EPOLLIN): void {
    const ep = this.#live();
    this.#ctl.view.setUint32(0, events, true);
    this.#ctl.view.setBigUint64(4, BigInt(data), true);
    check('epoll_ctl', cEpollCtl(ep, EPOLL_CTL_ADD, fdNumber(fd), this.#ctl.ptr));
  }
  delete(fd: Fd | number): void {
    const ep = this.#live();
    check('epoll_ctl', cEpollCtl(ep, EPOLL_CTL_DEL, fdNumber(fd), null));
  }
  /** Block up to `timeoutMs` (-1: forever, 0: poll). Returns how many events are ready (EINTR → 0). */
  wait(timeoutMs: number): number {
    const r = cEpollWait(this.#live(), this.#events.ptr, this.max, timeoutMs);
    if (r < 0) {
      const e = errno();
      if (e === EINTR) return 0;
      throw new BpfError('epoll_wait', e);
    }
    return this.#wake && r > 0 ? this.#dropWake(this.#events, r) : r;
  }
  /**
   * Wait on a libuv pool thread (koffi async call): each readiness is consumed exactly once by
   * the kernel's epoll_wait, which fds with destructive poll (perf events) need. Resolves the
   * number of ready events (0 on timeout, EINTR, {@link cancelWait} or `close()`). Uses its own
   * event buffer; one wait at a time. The pool thread sleeps at most {@link WAIT_SLICE_MS} per
   * call (the wait is re-issued until `timeoutMs` has passed; -1 waits until an event), so a
   * pending wait never keeps a thread or the process from ending.
   */
  waitAsync(timeoutMs: number): Promise<number> {
    if (this.#closed) return Promise.reject(new ClosedError('epoll'));
    if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs))
      return Promise.reject(
        new RangeError(`timeoutMs must be a number of ms (-1: forever), got ${timeoutMs}`),
      );
    if (this.#inFlight) return Promise.reject(new Error('Epoll.waitAsync: a wait is already in flight'));
    let epfd: number;
    try {
      epfd = this.fd.value;
      if (!this.#wake) {
        const wake = new EventFd();
        try {
          this.#ctl.view.setUint32(0, EPOLLIN, true);
          this.#ctl.view.setBigUint64(4, WAKE_DATA, true);
          check('epoll_ctl', cEpollCtl(epfd, EPOLL_CTL_ADD, wake.fd.value, this.#ctl.ptr));
        } catch (e) {
          wake.close();
          throw e;
        }
        this.#wake = wake;
      }
    } catch (e) {
      return Promise.reject(e);
    }
    this.#asyncEvents ??= new NativeBuffer(EVENT_SIZE * this.max);
    // The closure holds the buffer: it stays allocated until the pool thread is done with it.
    const events = this.#asyncEvents;
    const forever = timeoutMs < 0;
    const deadline = forever ? 0 : performance.now() + timeoutMs;
    this.#inFlight = true;
    this.#cancelled = false;
    waiting.add(this);
    return new Promise((resolve, reject) => {
      const done = (err: unknown, ready: number) => {
        let n = ready;
        this.#inFlight = false;
        waiting.delete(this);
        if (this.#closed) {
          this.#release();
          n = 0; // closed: whatever arrived is not reported (the buffer is gone)
        } else if (this.#cancelled) this.#wake?.drain(); // a wake that raced the slice's return
        if (err) reject(err);
        else resolve(n);
      };
      const slice = () => {
        const left = forever ? WAIT_SLICE_MS : Math.max(0, Math.ceil(deadline - performance.now()));
        const ms = Math.min(left, WAIT_SLICE_MS);
        cEpollWait.async(epfd, events.ptr, this.max, ms, (err: unknown, r: number) => {
          if (err) return done(err, 0);
          const n = r > 0 ? this.#dropWake(events, r) : 0;
          if (n > 0 || this.#cancelled || this.#closed || this.fd.closed || (!forever && ms >= left))
            return done(undefined, n);
          slice();
        });
      };
      slice();
    });
  }
  /** Remove the wake eventfd's event from the `n` events in `events` (draining it); the rest. */
  #dropWake(events: NativeBuffer, n: number): number {
    const v = events.view;
    let out = 0;
    for (let i = 0; i < n; i++) {
      if (v.getBigUint64(i * EVENT_SIZE + 4, true) === WAKE_DATA) {
        this.#wake?.drain();
        continue;
      }
      if (out !== i) events.bytes.copyWithin(out * EVENT_SIZE, i * EVENT_SIZE, (i + 1) * EVENT_SIZE);
      out++;
    }
    return out;
  }
  /** End a pending {@link waitAsync} now: it resolves with 0 events. No-op when none is pending. */
  cancelWait(): void {
    if (!this.#inFlight) return;
    this.#cancelled = true;
    if (this.#wake && !this.#wake.fd.closed) this.#wake.signal();
  }

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
  /** Close the set. A wait in flight is woken and resolves 0; the fds and buffers go once it has returned. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#inFlight) this.cancelWait();
    else this.#release();
  }
  #release(): void {
    this.fd.close();
    this.#wake?.close();
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

/** setsockopt(2) with bytes, or a string (e.g. TCP_CONGESTION with a congestion control's name). */
export function setsockoptBytes(
  sockFd: number,
  level: number,
  name: number,
  value: Uint8Array | string,
): void {
  const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : value;
  using buf = NativeBuffer.from(bytes);
  check(
    'setsockopt',
    cSetsockoptInt(sockFd, level, name, buf.ptr, bytes.length),
    `level ${level}, option ${name}`,
  );
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
