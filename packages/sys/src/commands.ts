// A typed function for every command of `enum bpf_cmd`. Arguments are the command's
// `union bpf_attr` fields in camelCase, typed from the generated layout; pointer fields take
// native addresses (see NativeBuffer). Commands that create an object return an owning Fd.
import { type AttachType, BpfCmd, type MapType, type ProgType } from './abi.generated.js';
import { type AttrArgs, type AttrFamily, bpfCommand } from './attr.js';
import { BpfError } from './errors.js';
import { Fd } from './fd.js';
import { autoMemlock } from './memlock.js';
import { EAGAIN, withSignalsBlocked } from './signals.js';

const ENOENT = 2;

function fdCommand<F extends AttrFamily>(cmd: BpfCmd, family: F, what: string) {
  return (args: AttrArgs<F>, detail?: string): Fd =>
    new Fd(bpfCommand(cmd, family, args, detail).result, what);
}
function plainCommand<F extends AttrFamily>(cmd: BpfCmd, family: F) {
  return (args: AttrArgs<F>, detail?: string): number => bpfCommand(cmd, family, args, detail).result;
}
/** Commands whose ENOENT means "absent / end", not failure: true when done, false on ENOENT. */
function probeCommand<F extends AttrFamily>(cmd: BpfCmd, family: F) {
  return (args: AttrArgs<F>): boolean => bpfCommand(cmd, family, args, undefined, ENOENT).result >= 0;
}
function nextIdCommand(cmd: BpfCmd) {
  return (startId: number): number | undefined => {
    const { result, out } = bpfCommand(cmd, 'getId', { startId }, undefined, ENOENT);
    return result < 0 ? undefined : Number(out('next_id'));
  };
}
function batchCommand(cmd: BpfCmd) {
  /** Returns how many elements were processed and whether the map has no more (ENOENT). */
  return (args: AttrArgs<'batch'>): { count: number; done: boolean } => {
    const { result, out } = bpfCommand(cmd, 'batch', args, undefined, ENOENT);
    return { count: Number(out('count')), done: result < 0 };
  };
}

// Maps
const mapCreateOnce = fdCommand(BpfCmd.MAP_CREATE, 'mapCreate', 'bpf-map');
export const mapCreate = ((args: AttrArgs<'mapCreate'>, detail?: string): Fd => {
  autoMemlock();
  return mapCreateOnce(args, detail);
}) as (args: AttrArgs<'mapCreate'> & { mapType: MapType | number }, detail?: string) => Fd;
export const mapLookupElem = probeCommand(BpfCmd.MAP_LOOKUP_ELEM, 'mapElem');
export const mapUpdateElem = plainCommand(BpfCmd.MAP_UPDATE_ELEM, 'mapElem');
export const mapDeleteElem = probeCommand(BpfCmd.MAP_DELETE_ELEM, 'mapElem');
export const mapGetNextKey = probeCommand(BpfCmd.MAP_GET_NEXT_KEY, 'mapElem');
export const mapLookupAndDeleteElem = probeCommand(BpfCmd.MAP_LOOKUP_AND_DELETE_ELEM, 'mapElem');
export const mapFreeze = plainCommand(BpfCmd.MAP_FREEZE, 'mapElem');
export const mapLookupBatch = batchCommand(BpfCmd.MAP_LOOKUP_BATCH);
export const mapLookupAndDeleteBatch = batchCommand(BpfCmd.MAP_LOOKUP_AND_DELETE_BATCH);
export const mapUpdateBatch = batchCommand(BpfCmd.MAP_UPDATE_BATCH);
export const mapDeleteBatch = batchCommand(BpfCmd.MAP_DELETE_BATCH);

// Programs
const progLoadOnce = fdCommand(BpfCmd.PROG_LOAD, 'progLoad', 'bpf-prog');
/** Attempts of BPF_PROG_LOAD while it answers EAGAIN (libbpf makes 5). */
const PROG_LOAD_ATTEMPTS = 5;
/**
 * BPF_PROG_LOAD with signals blocked on this thread, since the verifier stops with EAGAIN when
 * one is pending (see signals.ts); a load that still answers EAGAIN is tried again, as libbpf does.
 */
export const progLoad = ((args: AttrArgs<'progLoad'>, detail?: string): Fd => {
  autoMemlock();
  for (let attempt = 1; ; attempt++) {
    try {
      return withSignalsBlocked(() => progLoadOnce(args, detail));
    } catch (e) {
      if (!(e instanceof BpfError) || e.errno !== EAGAIN || attempt >= PROG_LOAD_ATTEMPTS) throw e;
    }
  }
}) as (args: AttrArgs<'progLoad'> & { progType: ProgType | number }, detail?: string) => Fd;
export const progAttach = plainCommand(BpfCmd.PROG_ATTACH, 'progAttach') as (
  args: AttrArgs<'progAttach'> & { attachType: AttachType | number },
  detail?: string,
) => number;
export const progDetach = plainCommand(BpfCmd.PROG_DETACH, 'progAttach');
export const progBindMap = plainCommand(BpfCmd.PROG_BIND_MAP, 'progBindMap');

export interface TestRunOut {
  retval: number;
  dataSizeOut: number;
  ctxSizeOut: number;
  /** Average ns per run as the kernel measured it. */
  duration: number;
}
export function progTestRun(args: AttrArgs<'test'>): TestRunOut {
  const { out } = bpfCommand(BpfCmd.PROG_TEST_RUN, 'test', args);
  return {
    retval: Number(out('retval')),
    dataSizeOut: Number(out('data_size_out')),
    ctxSizeOut: Number(out('ctx_size_out')),
    duration: Number(out('duration')),
  };
}

export interface QueryOut {
  attachFlags: number;
  progCnt: number;
  revision: bigint;
}
export function progQuery(args: AttrArgs<'query'>): QueryOut {
  const { out } = bpfCommand(BpfCmd.PROG_QUERY, 'query', args);
  return {
    attachFlags: Number(out('attach_flags')),
    progCnt: Number(out('prog_cnt')),
    revision: BigInt(out('revision')),
  };
}

export function progStreamReadByFd(args: AttrArgs<'progStreamRead'>): number {
  return bpfCommand(BpfCmd.PROG_STREAM_READ_BY_FD, 'progStreamRead', args).result;
}

// Objects on bpffs
export const objPin = plainCommand(BpfCmd.OBJ_PIN, 'obj');
export const objGet = fdCommand(BpfCmd.OBJ_GET, 'obj', 'bpf-pinned');

// Ids and fds by id
export const progGetNextId = nextIdCommand(BpfCmd.PROG_GET_NEXT_ID);
export const mapGetNextId = nextIdCommand(BpfCmd.MAP_GET_NEXT_ID);
export const btfGetNextId = nextIdCommand(BpfCmd.BTF_GET_NEXT_ID);
export const linkGetNextId = nextIdCommand(BpfCmd.LINK_GET_NEXT_ID);
export const progGetFdById = fdCommand(BpfCmd.PROG_GET_FD_BY_ID, 'getId', 'bpf-prog');
export const mapGetFdById = fdCommand(BpfCmd.MAP_GET_FD_BY_ID, 'getId', 'bpf-map');
export const btfGetFdById = fdCommand(BpfCmd.BTF_GET_FD_BY_ID, 'getId', 'btf');
export const linkGetFdById = fdCommand(BpfCmd.LINK_GET_FD_BY_ID, 'getId', 'bpf-link');

/** OBJ_GET_INFO_BY_FD: returns the info length the kernel filled in. */
export function objGetInfoByFd(args: AttrArgs<'info'>): number {
  const { out } = bpfCommand(BpfCmd.OBJ_GET_INFO_BY_FD, 'info', args);
  return Number(out('info_len'));
}

// BTF
const btfLoadOnce = fdCommand(BpfCmd.BTF_LOAD, 'btfLoad', 'btf');
export const btfLoad = ((args: Parameters<typeof btfLoadOnce>[0], detail?: string): Fd => {
  autoMemlock();
  return btfLoadOnce(args, detail);
}) as typeof btfLoadOnce;

// Links and attach
export const rawTracepointOpen = fdCommand(BpfCmd.RAW_TRACEPOINT_OPEN, 'rawTracepoint', 'bpf-link');
export const linkCreate = fdCommand(BpfCmd.LINK_CREATE, 'linkCreate', 'bpf-link') as (
  args: AttrArgs<'linkCreate'> & { attachType: AttachType | number },
  detail?: string,
) => Fd;
export const linkUpdate = plainCommand(BpfCmd.LINK_UPDATE, 'linkUpdate');
export const linkDetach = plainCommand(BpfCmd.LINK_DETACH, 'linkDetach');
export const iterCreate = fdCommand(BpfCmd.ITER_CREATE, 'iterCreate', 'bpf-iter');

export interface TaskFdQueryOut {
  progId: number;
  fdType: number;
  probeOffset: bigint;
  probeAddr: bigint;
  bufLen: number;
}
export function taskFdQuery(args: AttrArgs<'taskFdQuery'>): TaskFdQueryOut {
  const { out } = bpfCommand(BpfCmd.TASK_FD_QUERY, 'taskFdQuery', args);
  return {
    progId: Number(out('prog_id')),
    fdType: Number(out('fd_type')),
    probeOffset: BigInt(out('probe_offset')),
    probeAddr: BigInt(out('probe_addr')),
    bufLen: Number(out('buf_len')),
  };
}

// Misc
/** ENABLE_STATS: run-time statistics stay on while the returned fd is open. */
export const enableStats = fdCommand(BpfCmd.ENABLE_STATS, 'enableStats', 'bpf-stats');
export const tokenCreate = fdCommand(BpfCmd.TOKEN_CREATE, 'tokenCreate', 'bpf-token');
