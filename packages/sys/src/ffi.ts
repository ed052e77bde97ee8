// The one koffi binding of libc used by the whole stack. Everything that calls into the kernel
// goes through the functions declared here; nothing else in bpfkit loads native code.
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');

/** Syscall numbers for the calls that have no libc wrapper, per architecture. */
const NR: Record<string, { bpf: number; perf_event_open: number }> = {
  x64: { bpf: 321, perf_event_open: 298 },
  arm64: { bpf: 280, perf_event_open: 241 },
};
const nr = NR[process.arch];
if (!nr)
  throw new Error(
    `bpfkit: unsupported architecture ${process.arch} (supported: ${Object.keys(NR).join(', ')})`,
  );
export const SYS_bpf = nr.bpf;
export const SYS_perf_event_open = nr.perf_event_open;

/** A native address as koffi passes it. */
export type Ptr = bigint;

// A fixed, non-variadic prototype: the variadic form costs ~130 ns per call.
export const sysBpf = libc.func('long syscall(long nr, int cmd, void *attr, unsigned int size)') as (
  nr: number,
  cmd: number,
  attr: Ptr,
  size: number,
) => number;
export const sysPerfEventOpen = libc.func(
  'long syscall(long nr, void *attr, int pid, int cpu, int group_fd, unsigned long flags)',
) as (nr: number, attr: Ptr, pid: number, cpu: number, groupFd: number, flags: number) => number;

export const cClose = libc.func('int close(int fd)') as (fd: number) => number;
export const cDupCloexec = libc.func('int fcntl(int fd, int cmd, int arg)') as (
  fd: number,
  cmd: number,
  arg: number,
) => number;
export const cIoctlInt = libc.func('int ioctl(int fd, unsigned long req, unsigned long arg)') as (
  fd: number,
  req: number,
  arg: number | bigint,
) => number;
export const cMmap = libc.func(
  'void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)',
) as (addr: Ptr | null, len: number, prot: number, flags: number, fd: number, off: number) => Ptr;
export const cMunmap = libc.func('int munmap(void *addr, size_t len)') as (addr: Ptr, len: number) => number;
export const cMadvise = libc.func('int madvise(void *addr, size_t len, int advice)') as (
  addr: Ptr,
  len: number,
  advice: number,
) => number;
export const cEpollCreate1 = libc.func('int epoll_create1(int flags)') as (flags: number) => number;
export const cEpollCtl = libc.func('int epoll_ctl(int epfd, int op, int fd, void *event)') as (
  epfd: number,
  op: number,
  fd: number,
  event: Ptr | null,
) => number;
export const cEpollWait = libc.func('int epoll_wait(int epfd, void *events, int max, int timeout)') as ((
  epfd: number,
  events: Ptr,
  max: number,
  timeout: number,
) => number) & { async: Function };
export const cPoll = libc.func('int poll(void *fds, unsigned long nfds, int timeout)') as ((
  fds: Ptr,
  nfds: number,
  timeout: number,
) => number) & { async: Function };
export const cEventfd = libc.func('int eventfd(unsigned int initval, int flags)') as (
  init: number,
  flags: number,
) => number;
export const cRead = libc.func('long read(int fd, void *buf, size_t n)') as (
  fd: number,
  buf: Ptr,
  n: number,
) => number;
export const cWrite = libc.func('long write(int fd, void *buf, size_t n)') as (
  fd: number,
  buf: Ptr,
  n: number,
) => number;
export const cStatfs = libc.func('int statfs(const char *path, void *buf)') as (
  path: string,
  buf: Ptr,
) => number;
export const cMount = libc.func(
  'int mount(const char *src, const char *target, const char *fstype, unsigned long flags, const char *data)',
) as (src: string, target: string, fstype: string, flags: number, data: string | null) => number;
export const cUmount2 = libc.func('int umount2(const char *target, int flags)') as (
  target: string,
  flags: number,
) => number;
export const cGetrlimit = libc.func('int getrlimit(int resource, void *rlim)') as (
  res: number,
  rlim: Ptr,
) => number;
export const cSetrlimit = libc.func('int setrlimit(int resource, void *rlim)') as (
  res: number,
  rlim: Ptr,
) => number;
export const cSetsockoptInt = libc.func(
  'int setsockopt(int fd, int level, int name, void *val, unsigned int len)',
) as (fd: number, level: number, name: number, val: Ptr, len: number) => number;
export const cStrerror = libc.func('const char *strerror(int errnum)') as (errnum: number) => string;
export const cGetpagesize = libc.func('int getpagesize()') as () => number;

/** errno of the last failed call on this thread; read it right after the call, and only on failure. */
export const errno = (): number => koffi.errno();

/** Native memory: stable address, never moved by V8. */
export const alloc = (size: number): Ptr => koffi.alloc('uint8_t', Math.max(size, 1)) as Ptr;
export const free = (ptr: Ptr): void => koffi.free(ptr);
export const view = (ptr: Ptr, size: number): ArrayBuffer => koffi.view(ptr, size) as ArrayBuffer;

export { koffi };
