// The one koffi binding of libc used by the whole stack. Everything that calls into the kernel
// goes through the functions declared here; nothing else in bpfkit loads native code.
//
// Nothing native happens at import: koffi itself, libc and each function are loaded and declared
// on the first call that needs them (importing a package costs only its JavaScript).
import { createRequire } from 'node:module';
import type Koffi from 'koffi';

type KoffiModule = typeof Koffi;
let koffiModule: KoffiModule | undefined;
let libcHandle: ReturnType<KoffiModule['load']> | undefined;
/** The C prototypes declared so far, in order (what {@link nativeState} reports). */
const declared: string[] = [];

/** koffi, loaded on first use. */
export const koffi = (): KoffiModule => {
  koffiModule ??= createRequire(import.meta.url)('koffi') as KoffiModule;
  return koffiModule;
};

/**
 * A libc function declared on its first call. `bound` receives the koffi function, so the
 * module's live export is replaced by it and later calls go straight to koffi (no wrapper on hot
 * paths); the stub itself, if someone kept it, keeps forwarding. `.async` declares on use too.
 */
function lazy<F extends Function>(proto: string, bound: (f: F) => void): F {
  let f: F | undefined;
  const get = (): F => {
    if (f === undefined) {
      libcHandle ??= koffi().load('libc.so.6');
      f = libcHandle.func(proto) as unknown as F;
      declared.push(proto);
      bound(f);
    }
    return f;
  };
  const stub = (...args: unknown[]): unknown => (get() as unknown as (...a: unknown[]) => unknown)(...args);
  Object.defineProperty(stub, 'async', { get: () => (get() as unknown as { async: Function }).async });
  return stub as unknown as F;
}

/**
 * What native state exists in this process: whether koffi is loaded, and which C functions were
 * declared. For tests that check that importing does no native work; not part of the public API.
 */
export const nativeState = (): { koffi: boolean; declared: readonly string[] } => ({
  koffi: koffiModule !== undefined,
  declared: [...declared],
});

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
export let sysBpf = lazy<(nr: number, cmd: number, attr: Ptr, size: number) => number>(
  'long syscall(long nr, int cmd, void *attr, unsigned int size)',
  (f) => (sysBpf = f),
);
export let sysPerfEventOpen = lazy<
  (nr: number, attr: Ptr, pid: number, cpu: number, groupFd: number, flags: number) => number
>(
  'long syscall(long nr, void *attr, int pid, int cpu, int group_fd, unsigned long flags)',
  (f) => (sysPerfEventOpen = f),
);

export let cClose = lazy<(fd: number) => number>('int close(int fd)', (f) => (cClose = f));
/** Returns 0 or an errno (not -1 and errno). */
export let cPthreadSigmask = lazy<(how: number, set: Ptr | null, old: Ptr | null) => number>(
  'int pthread_sigmask(int how, void *set, void *oldset)',
  (f) => (cPthreadSigmask = f),
);
export let cDupCloexec = lazy<(fd: number, cmd: number, arg: number) => number>(
  'int fcntl(int fd, int cmd, int arg)',
  (f) => (cDupCloexec = f),
);
export let cIoctlInt = lazy<(fd: number, req: number, arg: number | bigint) => number>(
  'int ioctl(int fd, unsigned long req, unsigned long arg)',
  (f) => (cIoctlInt = f),
);
export let cMmap = lazy<
  (addr: Ptr | null, len: number, prot: number, flags: number, fd: number, off: number) => Ptr
>('void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)', (f) => (cMmap = f));
export let cMunmap = lazy<(addr: Ptr, len: number) => number>(
  'int munmap(void *addr, size_t len)',
  (f) => (cMunmap = f),
);
export let cMadvise = lazy<(addr: Ptr, len: number, advice: number) => number>(
  'int madvise(void *addr, size_t len, int advice)',
  (f) => (cMadvise = f),
);
export let cEpollCreate1 = lazy<(flags: number) => number>(
  'int epoll_create1(int flags)',
  (f) => (cEpollCreate1 = f),
);
export let cEpollCtl = lazy<(epfd: number, op: number, fd: number, event: Ptr | null) => number>(
  'int epoll_ctl(int epfd, int op, int fd, void *event)',
  (f) => (cEpollCtl = f),
);
export let cEpollWait = lazy<
  ((epfd: number, events: Ptr, max: number, timeout: number) => number) & { async: Function }
>('int epoll_wait(int epfd, void *events, int max, int timeout)', (f) => (cEpollWait = f));
export let cPoll = lazy<((fds: Ptr, nfds: number, timeout: number) => number) & { async: Function }>(
  'int poll(void *fds, unsigned long nfds, int timeout)',
  (f) => (cPoll = f),
);
export let cEventfd = lazy<(init: number, flags: number) => number>(
  'int eventfd(unsigned int initval, int flags)',
  (f) => (cEventfd = f),
);
export let cRead = lazy<(fd: number, buf: Ptr, n: number) => number>(
  'long read(int fd, void *buf, size_t n)',
  (f) => (cRead = f),
);
export let cWrite = lazy<(fd: number, buf: Ptr, n: number) => number>(
  'long write(int fd, void *buf, size_t n)',
  (f) => (cWrite = f),
);
export let cStatfs = lazy<(path: string, buf: Ptr) => number>(
  'int statfs(const char *path, void *buf)',
  (f) => (cStatfs = f),
);
export let cMount = lazy<
  (src: string, target: string, fstype: string, flags: number, data: string | null) => number
>(
  'int mount(const char *src, const char *target, const char *fstype, unsigned long flags, const char *data)',
  (f) => (cMount = f),
);
export let cUmount2 = lazy<(target: string, flags: number) => number>(
  'int umount2(const char *target, int flags)',
  (f) => (cUmount2 = f),
);
export let cGetrlimit = lazy<(res: number, rlim: Ptr) => number>(
  'int getrlimit(int resource, void *rlim)',
  (f) => (cGetrlimit = f),
);
export let cSetrlimit = lazy<(res: number, rlim: Ptr) => number>(
  'int setrlimit(int resource, void *rlim)',
  (f) => (cSetrlimit = f),
);
export let cSetsockoptInt = lazy<(fd: number, level: number, name: number, val: Ptr, len: number) => number>(
  'int setsockopt(int fd, int level, int name, void *val, unsigned int len)',
  (f) => (cSetsockoptInt = f),
);
export let cSocket = lazy<(domain: number, type: number, protocol: number) => number>(
  'int socket(int domain, int type, int protocol)',
  (f) => (cSocket = f),
);
export let cBind = lazy<(fd: number, addr: Ptr, len: number) => number>(
  'int bind(int fd, void *addr, unsigned int len)',
  (f) => (cBind = f),
);
export let cSend = lazy<(fd: number, buf: Ptr, n: number, flags: number) => number>(
  'long send(int fd, void *buf, size_t n, int flags)',
  (f) => (cSend = f),
);
export let cRecv = lazy<(fd: number, buf: Ptr, n: number, flags: number) => number>(
  'long recv(int fd, void *buf, size_t n, int flags)',
  (f) => (cRecv = f),
);
/** 0 when there is no such interface. */
export let cIfNametoindex = lazy<(name: string) => number>(
  'unsigned int if_nametoindex(const char *name)',
  (f) => (cIfNametoindex = f),
);
export let cIfIndextoname = lazy<(index: number, buf: Ptr) => Ptr | null>(
  'void *if_indextoname(unsigned int index, void *buf)',
  (f) => (cIfIndextoname = f),
);
export let cSetns = lazy<(fd: number, nstype: number) => number>(
  'int setns(int fd, int nstype)',
  (f) => (cSetns = f),
);
export let cStrerror = lazy<(errnum: number) => string>(
  'const char *strerror(int errnum)',
  (f) => (cStrerror = f),
);
export let cGetpagesize = lazy<() => number>('int getpagesize()', (f) => (cGetpagesize = f));

/** errno of the last failed call on this thread; read it right after the call, and only on failure. */
export const errno = (): number => koffi().errno();

/** Native memory: stable address, never moved by V8. */
export const alloc = (size: number): Ptr => koffi().alloc('uint8_t', Math.max(size, 1)) as Ptr;
export const free = (ptr: Ptr): void => koffi().free(ptr);
export const view = (ptr: Ptr, size: number): ArrayBuffer => koffi().view(ptr, size) as ArrayBuffer;
