import { constants, release } from 'node:os';
import { BpfCmd } from './abi.generated.js';
import { cStrerror } from './ffi.js';

const errnoNames = new Map<number, string>();
for (const [name, num] of Object.entries(constants.errno))
  if (!errnoNames.has(num)) errnoNames.set(num, name);
/** A kernel-internal code that leaks to user space from bpf(2); not in libc's errno.h. */
const ENOTSUPP = 524;
errnoNames.set(ENOTSUPP, 'ENOTSUPP');

const cmdNames = new Map<number, string>(Object.entries(BpfCmd).map(([k, v]) => [v, `BPF_${k}`]));

/** `EPERM` for 1, and so on. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/** What a failing call usually means, by errno (and command where it matters). */
function hintFor(cmd: string, errno: number): string | undefined {
  switch (errnoName(errno)) {
    case 'EPERM':
    case 'EACCES':
      return cmd === 'BPF_PROG_LOAD' && errno === constants.errno.EACCES
        ? 'the verifier rejected the program; load it with a log to see why'
        : 'bpf(2) needs CAP_BPF (plus CAP_PERFMON or CAP_NET_ADMIN for some types) or CAP_SYS_ADMIN; run as root';
    case 'E2BIG':
      return 'a size is larger than the kernel allows (key/value size, max entries, or an attr the kernel does not know)';
    case 'EBADF':
      return 'the fd is not open, or is not the kind of BPF object this command takes';
    case 'ENOENT':
      if (cmd === 'perf_event_open')
        return 'no such event here (no hardware PMU in this machine, or an unknown event id)';
      if (cmd === 'BPF_OBJ_GET') return 'nothing is pinned at that path';
      if (cmd.endsWith('_GET_NEXT_ID') || cmd.endsWith('_GET_FD_BY_ID')) return 'no object has that id';
      return 'no such element';
    case 'EEXIST':
      return cmd === 'BPF_OBJ_PIN' ? 'something already exists at that path' : 'the element already exists';
    case 'ENOSPC':
      return cmd === 'BPF_PROG_LOAD' || cmd === 'BPF_BTF_LOAD'
        ? 'the log buffer is too small'
        : 'the map is full';
    case 'ENOTSUPP':
    case 'EOPNOTSUPP':
      return `this kernel (Linux ${release()}) does not support the operation for this object`;
    case 'EINVAL':
      return 'the kernel rejected an argument: check sizes, flags and types for this object kind';
    default:
      return undefined;
  }
}

/** A failed bpf(2) (or related) syscall: names the command and errno, with a hint where one is known. */
export class BpfError extends Error {
  override name = 'BpfError';
  /** The numeric errno, e.g. 1. */
  readonly errno: number;
  /** The errno's name, e.g. `'EPERM'`. */
  readonly code: string;
  /** The command, e.g. `'BPF_MAP_CREATE'`, or the syscall name for non-bpf calls. */
  readonly cmd: string;
  readonly hint: string | undefined;

  constructor(cmd: number | string, errno: number, detail?: string, hint?: string) {
    const cmdName = typeof cmd === 'number' ? (cmdNames.get(cmd) ?? `bpf cmd ${cmd}`) : cmd;
    const code = errnoName(errno);
    const h = hint ?? hintFor(cmdName, errno);
    const strerr = errno === ENOTSUPP ? 'Operation not supported' : cStrerror(errno);
    super(`${cmdName}${detail ? ` (${detail})` : ''} failed: ${code} (${strerr})${h ? ` — ${h}` : ''}`);
    this.errno = errno;
    this.code = code;
    this.cmd = cmdName;
    this.hint = h;
  }
}

/** A feature this kernel lacks. Names the feature, the running kernel and, where known, the first kernel that has it. */
export class NotSupportedError extends Error {
  override name = 'NotSupportedError';
  constructor(
    readonly feature: string,
    readonly since?: string,
    options?: ErrorOptions,
  ) {
    super(
      `${feature} is not supported by this kernel (Linux ${release()})${since ? `; it first appeared in Linux ${since}` : ''}`,
      options,
    );
  }
}

/** Use of an object after `close()`. */
export class ClosedError extends Error {
  override name = 'ClosedError';
  constructor(what: string) {
    super(`${what} is closed`);
  }
}

/** The running kernel's `[major, minor]`, from uname's release (`6.1.0-56-amd64` → [6, 1]). */
export function kernelVersion(text = release()): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

/** Whether the running kernel is older than `since` ('5.6'). */
export function kernelOlderThan(since: string): boolean {
  const [a, b] = kernelVersion();
  const [c, d] = kernelVersion(since);
  return a < c || (a === c && b < d);
}

/** The first Linux release with each bpf(2) command; older kernels answer EINVAL. */
const CMD_SINCE: Partial<Record<string, string>> = {
  BPF_OBJ_PIN: '4.4',
  BPF_OBJ_GET: '4.4',
  BPF_PROG_ATTACH: '4.10',
  BPF_PROG_DETACH: '4.10',
  BPF_PROG_TEST_RUN: '4.12',
  BPF_PROG_GET_NEXT_ID: '4.13',
  BPF_MAP_GET_NEXT_ID: '4.13',
  BPF_PROG_GET_FD_BY_ID: '4.13',
  BPF_MAP_GET_FD_BY_ID: '4.13',
  BPF_OBJ_GET_INFO_BY_FD: '4.13',
  BPF_PROG_QUERY: '4.15',
  BPF_RAW_TRACEPOINT_OPEN: '4.17',
  BPF_BTF_LOAD: '4.18',
  BPF_BTF_GET_FD_BY_ID: '4.18',
  BPF_TASK_FD_QUERY: '4.18',
  BPF_MAP_LOOKUP_AND_DELETE_ELEM: '4.20',
  BPF_MAP_FREEZE: '5.2',
  BPF_BTF_GET_NEXT_ID: '5.4',
  BPF_MAP_LOOKUP_BATCH: '5.6',
  BPF_MAP_LOOKUP_AND_DELETE_BATCH: '5.6',
  BPF_MAP_UPDATE_BATCH: '5.6',
  BPF_MAP_DELETE_BATCH: '5.6',
  BPF_LINK_CREATE: '5.7',
  BPF_LINK_UPDATE: '5.7',
  BPF_LINK_GET_FD_BY_ID: '5.8',
  BPF_LINK_GET_NEXT_ID: '5.8',
  BPF_ENABLE_STATS: '5.8',
  BPF_ITER_CREATE: '5.8',
  BPF_LINK_DETACH: '5.9',
  BPF_PROG_BIND_MAP: '5.10',
  BPF_TOKEN_CREATE: '6.9',
  BPF_PROG_STREAM_READ_BY_FD: '6.17',
};

/**
 * The error for a failed bpf(2) command: a {@link NotSupportedError} when the kernel is older
 * than the command (it answers EINVAL to commands it does not know), a {@link BpfError} otherwise.
 */
export function commandError(cmd: number, errno: number, detail?: string): BpfError | NotSupportedError {
  const name = cmdNames.get(cmd) ?? `bpf cmd ${cmd}`;
  const since = CMD_SINCE[name];
  if (errno === constants.errno.EINVAL && since && kernelOlderThan(since))
    return new NotSupportedError(`the ${name} command`, since, { cause: new BpfError(cmd, errno, detail) });
  return new BpfError(cmd, errno, detail);
}
