// perf_event_open for the kinds of events eBPF attaches to: tracepoints, software and hardware
// events, uprobes (through the uprobe PMU).
import { readFileSync } from 'node:fs';
import {
  type Fd,
  intOption,
  NativeBuffer,
  type PerfEventAttrArgs,
  PerfSwId,
  PerfType,
  perfEventOpen,
} from '@bpfkit/sys';
import { binarySymbols, resolveBinary, symbolOffsets } from './binaries.js';
import { tracepointId } from './tracefs.js';

export interface EventTarget {
  /** Process to watch (-1: every process; 0: this one). Default -1. */
  pid?: number;
  /** CPU to watch (-1: any, with a pid). Default 0, which with pid -1 covers tracepoints on every CPU. */
  cpu?: number;
}

/** A tracepoint perf event (`category/name`, e.g. `syscalls/sys_enter_openat`). */
export function openTracepoint(category: string, name: string, target: EventTarget = {}): Fd {
  return perfEventOpen(
    {
      type: PerfType.TRACEPOINT,
      config: BigInt(tracepointId(category, name)),
      samplePeriod: 1n,
      wakeupEvents: 1,
    },
    target.pid ?? -1,
    target.cpu ?? 0,
  );
}

export interface SamplingOptions extends EventTarget {
  /** Samples per second (sets `freq`). */
  frequency?: number;
  /** Or one sample every `period` events. */
  period?: number | bigint;
  /** Start disabled. */
  disabled?: boolean;
}

function sampling(opts: SamplingOptions): PerfEventAttrArgs {
  if (opts.frequency !== undefined) return { freq: 1, sampleFreq: BigInt(opts.frequency) };
  return { samplePeriod: BigInt(opts.period ?? 1) };
}

/** A software event: `cpu_clock` sampling, `context_switches`, `page_faults`, ... (`PerfSwId`). */
export function openSoftware(config: PerfSwId | keyof typeof PerfSwId, opts: SamplingOptions = {}): Fd {
  const id = typeof config === 'number' ? config : PerfSwId[config];
  if (id === undefined) throw new TypeError(`unknown software event '${String(config)}'`);
  return perfEventOpen(
    { type: PerfType.SOFTWARE, config: BigInt(id), ...sampling(opts), disabled: opts.disabled ? 1 : 0 },
    opts.pid ?? -1,
    opts.cpu ?? 0,
  );
}

/** A hardware event (`PerfHwId`: cpu_cycles, instructions, ...), where the CPU exposes them. */
export function openHardware(config: number, opts: SamplingOptions = {}): Fd {
  return perfEventOpen(
    { type: PerfType.HARDWARE, config: BigInt(config), ...sampling(opts), disabled: opts.disabled ? 1 : 0 },
    opts.pid ?? -1,
    opts.cpu ?? 0,
  );
}

function pmuType(pmu: string): { type: number; retprobeBit: number } {
  const dir = `/sys/bus/event_source/devices/${pmu}`;
  let type: number;
  try {
    type = Number.parseInt(readFileSync(`${dir}/type`, 'utf8'), 10);
  } catch {
    throw new TypeError(`this kernel has no ${pmu} PMU (${dir}); it needs CONFIG_UPROBE_EVENTS`);
  }
  const m = /config:(\d+)/.exec(readFileSync(`${dir}/format/retprobe`, 'utf8'));
  return { type, retprobeBit: Number(m?.[1] ?? 0) };
}

/**
 * The file offset of `symbol` in an ELF executable or library (symbol table, then dynamic
 * symbols), as the uprobe PMU takes it.
 */
export function symbolOffset(binary: string, symbol: string, kind: 'func' | 'object' = 'func'): number {
  return symbolOffsets(binary, [symbol], binarySymbols(binary, kind), kind)[0]!;
}

export interface UprobeOptions {
  /** Fire on return instead of entry. */
  retprobe?: boolean;
  /** Only this process (default: every process running the binary). */
  pid?: number;
  /** Extra offset added to the symbol's (or the absolute offset when no symbol). */
  offset?: number;
  /**
   * A USDT-style semaphore the kernel increments while the probe is attached: its file offset,
   * or the name of the variable (a 16-bit counter) in the binary (4.20+).
   */
  refCtrOffset?: number | string;
}

/**
 * A uprobe (or uretprobe) perf event on `binary` at `symbol` (or at `opts.offset`). `binary` is a
 * path, a program name on PATH, or a library name in the ld.so cache (`libc.so.6`).
 */
export function openUprobe(binaryName: string, symbol: string | undefined, opts: UprobeOptions = {}): Fd {
  const { type, retprobeBit } = pmuType('uprobe');
  const binary = resolveBinary(binaryName);
  const refCtr =
    typeof opts.refCtrOffset === 'string'
      ? symbolOffset(binary, opts.refCtrOffset, 'object')
      : intOption(opts.refCtrOffset ?? 0, 'uprobe refCtrOffset', 0, 0xffffffff);
  const offset =
    (symbol ? symbolOffset(binary, symbol) : 0) + intOption(opts.offset ?? 0, 'uprobe offset', 0);
  using path = NativeBuffer.from(binary);
  return perfEventOpen(
    {
      type,
      config: (opts.retprobe ? 1n << BigInt(retprobeBit) : 0n) | (BigInt(refCtr) << 32n),
      config1: path.ptr,
      config2: BigInt(offset),
      samplePeriod: 1n,
      wakeupEvents: 1,
    },
    opts.pid ?? -1,
    opts.pid !== undefined && opts.pid >= 0 ? -1 : 0,
  );
}
