// kprobes and kretprobes: a perf event on a kernel function (or address), through the kprobe PMU
// (`/sys/bus/event_source/devices/kprobe`, 4.17+) or, where it is absent or for what only tracefs
// can express (a kretprobe's maxactive), a `kprobe_events` entry in tracefs that is removed when
// the attachment closes. ksyscall names a syscall the way libbpf does (`__x64_sys_<name>` on a
// kernel with syscall wrappers). The program then attaches to the perf event (perf-event.ts).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Program, syscallFunction } from '@bpfkit/loader';
import {
  BpfError,
  type Fd,
  intOption,
  NativeBuffer,
  NotSupportedError,
  oneOf,
  PerfType,
  perfEventOpen,
} from '@bpfkit/sys';
import { unknownFunction } from './ksyms.js';
import { type Attachment, type Link, PERF_HOOK_PROG_TYPES, requireProgramType } from './link.js';
import { attachPerfEvent, type PerfAttachMode, type PerfEventLink } from './perf-event.js';
import { type CapabilityName, explainRefusal } from './permissions.js';
import { addDynamicEvent, type DynamicEvent, tracefsRoot } from './tracefs.js';

const PMU = '/sys/bus/event_source/devices/kprobe';
/** perf_event_open of a kprobe needs CAP_PERFMON (or CAP_SYS_ADMIN); kprobe_events is root's. */
const PERF_NEEDS: readonly (readonly CapabilityName[])[] = [['CAP_PERFMON', 'CAP_SYS_ADMIN']];
const TRACEFS_NEEDS: readonly (readonly CapabilityName[])[] = [['CAP_SYS_ADMIN']];

/** How a kprobe is created: the kprobe PMU, a tracefs `kprobe_events` entry, or the PMU where there is one (`auto`). */
export type KprobeVia = 'auto' | 'pmu' | 'tracefs';
const VIAS: readonly KprobeVia[] = ['auto', 'pmu', 'tracefs'];

export interface KprobeOptions {
  /** Fire on return (a kretprobe). */
  retprobe?: boolean;
  /** Bytes into the function (symbol + offset). */
  offset?: number;
  /** Probe this kernel address instead of a symbol (give `undefined` as the symbol). */
  address?: bigint;
  /** kretprobe: how many calls may be in flight at once (tracefs only; the kernel's default otherwise). */
  maxactive?: number;
  /** Default `auto`: the PMU where the kernel has one, tracefs otherwise (and for `maxactive`). */
  via?: KprobeVia;
}

/** An open kprobe perf event: its fd, and the tracefs event behind it when it was made there. */
export interface KprobeEvent {
  fd: Fd;
  via: 'pmu' | 'tracefs';
  event: DynamicEvent | undefined;
}

let pmuInfo: { type: number; retprobeBit: number } | null | undefined;
function kprobePmu(): { type: number; retprobeBit: number } | undefined {
  if (pmuInfo === undefined) {
    try {
      const type = Number.parseInt(readFileSync(`${PMU}/type`, 'utf8'), 10);
      const m = /config:(\d+)/.exec(readFileSync(`${PMU}/format/retprobe`, 'utf8'));
      pmuInfo = { type, retprobeBit: Number(m?.[1] ?? 0) };
    } catch {
      pmuInfo = null;
    }
  }
  return pmuInfo ?? undefined;
}

function haveKprobeEvents(): boolean {
  try {
    return existsSync(join(tracefsRoot(), 'kprobe_events'));
  } catch {
    return false;
  }
}

/** The error for a kernel without kprobes (CONFIG_KPROBES, CONFIG_KPROBE_EVENTS). */
export function kprobesNotSupported(): NotSupportedError {
  return new NotSupportedError(
    'kprobes (CONFIG_KPROBES and CONFIG_KPROBE_EVENTS: no kprobe PMU in /sys/bus/event_source/devices and no kprobe_events in tracefs)',
  );
}

function describe(symbol: string | undefined, opts: KprobeOptions): string {
  const at = symbol ?? `0x${(opts.address ?? 0n).toString(16)}`;
  return `${opts.retprobe ? 'kretprobe' : 'kprobe'} ${at}${opts.offset ? `+${opts.offset}` : ''}`;
}

/** A kernel that refused an unknown symbol answers ENOENT or EINVAL: say which names exist instead. */
function unknownSymbol(e: unknown, symbol: string | undefined): unknown {
  const code = (e as { code?: string }).code;
  if (symbol === undefined || (code !== 'ENOENT' && code !== 'EINVAL')) return e;
  const unknown = unknownFunction(symbol);
  if (unknown) unknown.cause = e;
  return unknown ?? e;
}

function checkOptions(symbol: string | undefined, opts: KprobeOptions): void {
  oneOf(opts.via ?? 'auto', VIAS, 'kprobe via');
  if ((symbol === undefined) === (opts.address === undefined))
    throw new TypeError('a kprobe takes a function name or an address (opts.address), not both or neither');
  if (symbol !== undefined && !/^[\w.]+$/.test(symbol))
    throw new TypeError(`bad kernel function name '${symbol}' (letters, digits, _ and . only)`);
  if (opts.address !== undefined && (typeof opts.address !== 'bigint' || opts.address <= 0n))
    throw new TypeError('opts.address takes a positive bigint');
  intOption(opts.offset ?? 0, 'kprobe offset', 0);
  if (opts.maxactive !== undefined) {
    intOption(opts.maxactive, 'kretprobe maxactive', 1, 4096);
    if (!opts.retprobe) throw new TypeError('maxactive is for kretprobes (retprobe: true)');
    if (opts.via === 'pmu')
      throw new TypeError('maxactive needs the tracefs path (the kprobe PMU cannot set it)');
  }
}

/**
 * Open a kprobe (or kretprobe) perf event on kernel function `symbol` (+ `offset`), or on
 * `opts.address`. Throws {@link NotSupportedError} on a kernel without kprobes, an
 * {@link UnknownFunctionError} with close names for a function that does not exist.
 */
export function openKprobe(symbol: string | undefined, opts: KprobeOptions = {}): KprobeEvent {
  checkOptions(symbol, opts);
  const pmu = kprobePmu();
  const via = opts.via ?? 'auto';
  const tracefs = via === 'tracefs' || (via === 'auto' && (!pmu || opts.maxactive !== undefined));
  if (!tracefs && !pmu) {
    if (via === 'pmu' && haveKprobeEvents())
      throw new NotSupportedError('the kprobe PMU (kprobes through perf_event_open)', '4.17');
    throw kprobesNotSupported();
  }
  if (tracefs && !haveKprobeEvents()) throw kprobesNotSupported();
  const what = describe(symbol, opts);
  if (!tracefs && pmu) {
    using name = NativeBuffer.from(symbol ?? '');
    try {
      const fd = perfEventOpen(
        {
          type: pmu.type,
          config: opts.retprobe ? 1n << BigInt(pmu.retprobeBit) : 0n,
          config1: symbol === undefined ? 0n : name.ptr, // kprobe_func
          config2: symbol === undefined ? opts.address! : BigInt(opts.offset ?? 0), // kprobe_addr or probe_offset
          samplePeriod: 1n,
          wakeupEvents: 1,
        },
        -1,
        0,
      );
      return { fd, via: 'pmu', event: undefined };
    } catch (e) {
      throw explainRefusal(unknownSymbol(e, symbol), what, PERF_NEEDS);
    }
  }
  // tracefs: "p:group/event sym+off", "r<maxactive>:group/event sym", "p:group/event 0xaddr"
  const kind = opts.retprobe ? `r${opts.maxactive ?? ''}` : 'p';
  const at =
    symbol === undefined
      ? `0x${(opts.address! + BigInt(opts.offset ?? 0)).toString(16)}`
      : `${symbol}${opts.offset ? `+${opts.offset}` : ''}`;
  let event: DynamicEvent;
  try {
    event = addDynamicEvent('kprobe_events', 'kprobes', kind, symbol ?? 'addr', at);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const bpfErr = new BpfError('write kprobe_events', Math.abs(err.errno ?? 0), `${what}: ${kind} ${at}`);
    throw explainRefusal(unknownSymbol(bpfErr, symbol), what, TRACEFS_NEEDS);
  }
  try {
    const fd = perfEventOpen(
      { type: PerfType.TRACEPOINT, config: BigInt(event.id), samplePeriod: 1n, wakeupEvents: 1 },
      -1,
      0,
    );
    return { fd, via: 'tracefs', event };
  } catch (e) {
    event.remove();
    throw explainRefusal(e, what, PERF_NEEDS);
  }
}

/**
 * A kprobe program attached to a kprobe: the perf event (with its bpf_link in link mode) and,
 * when it was made through tracefs, the `kprobe_events` entry, removed on detach.
 */
export class KprobeLink implements Attachment {
  readonly perf: PerfEventLink;
  readonly via: 'pmu' | 'tracefs';
  /** The tracefs event (`kprobes/bpfkit_<pid>_…`) on the tracefs path. */
  readonly event: DynamicEvent | undefined;

  constructor(perf: PerfEventLink, via: 'pmu' | 'tracefs', event: DynamicEvent | undefined) {
    this.perf = perf;
    this.via = via;
    this.event = event;
  }
  /** The bpf_link (link mode), for `info` or pinning. */
  get link(): Link | undefined {
    return this.perf.link;
  }
  get mode(): 'link' | 'legacy' {
    return this.perf.mode;
  }
  detach(): void {
    try {
      this.perf.detach();
    } finally {
      this.event?.remove();
    }
  }
  close(): void {
    this.detach();
  }
  [Symbol.dispose](): void {
    this.detach();
  }
}

export interface KprobeAttachOptions extends KprobeOptions {
  /** bpf_link (`link`, 5.15+), PERF_EVENT_IOC_SET_BPF (`legacy`), or a link where the kernel has one (`auto`). */
  mode?: PerfAttachMode;
  /** Read in the program with bpf_get_attach_cookie (link mode). */
  cookie?: bigint;
}

/**
 * Attach a `kprobe` program at the entry of kernel function `symbol` (+ `offset`), at its return
 * with `retprobe`, or at `opts.address` (symbol undefined). See {@link openKprobe} for `via`.
 */
export function attachKprobe(
  program: Program,
  symbol: string | undefined,
  opts: KprobeAttachOptions = {},
): KprobeLink {
  requireProgramType(program, PERF_HOOK_PROG_TYPES.probe, `kprobe ${symbol ?? 'at an address'}`);
  const ev = openKprobe(symbol, opts);
  try {
    return new KprobeLink(attachPerfEvent(program, ev.fd, opts), ev.via, ev.event);
  } catch (e) {
    ev.event?.remove(); // attachPerfEvent closed the perf event
    throw e;
  }
}

/**
 * Attach a `ksyscall` (or, with `retprobe`, `kretsyscall`) program to syscall `name` (`getppid`):
 * a kprobe on {@link syscallFunction}. With wrappers the program reads the arguments through the
 * inner `pt_regs` (libbpf's BPF_KSYSCALL does).
 */
export function attachKsyscall(
  program: Program,
  name: string,
  opts: Omit<KprobeAttachOptions, 'address' | 'offset'> = {},
): KprobeLink {
  return attachKprobe(program, syscallFunction(name), opts);
}
