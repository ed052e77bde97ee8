// uprobe.multi, uretprobe.multi and uprobe.session: one bpf_link (BPF_LINK_CREATE with
// BPF_TRACE_UPROBE_MULTI or BPF_TRACE_UPROBE_SESSION) over many places in one executable or
// library. The places are functions named by a list or by a glob over the file's function
// symbols (libbpf's `uprobe.multi/PATH:PATTERN`), or file offsets; each may carry a cookie and a
// USDT-style reference counter (semaphore).
import type { Program } from '@bpfkit/loader';
import {
  AttachType,
  BpfError,
  intOption,
  kernelOlderThan,
  linkCreate,
  NativeBuffer,
  NotSupportedError,
  UprobeMultiFlags,
} from '@bpfkit/sys';
import { binarySymbols, matchSymbols, resolveBinary, symbolOffsets } from './binaries.js';
import { Link, OPERATION_NOT_SUPPORTED, PERF_HOOK_PROG_TYPES, requireProgramType } from './link.js';
import { explainRefusal, MULTI_PROBE_NEEDS } from './permissions.js';

export interface UprobeMultiOptions {
  /** The executable or library: a path, a program on PATH, or a library in the ld.so cache (`libc.so.6`). */
  binary: string;
  /** The functions, by name. */
  symbols?: readonly string[];
  /** Or every function of the binary whose name matches this glob (`*`, `?`), in name order ({@link resolveUprobePattern}). */
  pattern?: string;
  /** Or file offsets in the binary. */
  offsets?: readonly number[];
  /** One per place (in the order of `symbols`/`offsets`, or of the pattern's matches), read with bpf_get_attach_cookie. */
  cookies?: readonly bigint[];
  /** One per place: the file offset of a 16-bit counter the kernel raises while the probe is attached (0: none). */
  refCtrOffsets?: readonly number[];
  /** Only this process (thread group); default every process that runs the binary. */
  pid?: number;
  /** On return (uretprobe.multi). */
  retprobe?: boolean;
}

/** The functions of `binary` whose names match the glob `pattern`, sorted by name, with their file offsets; a {@link SymbolNotFoundError} naming both when none does. */
export function resolveUprobePattern(binary: string, pattern: string): { name: string; offset: number }[] {
  return matchSymbols(resolveBinary(binary), pattern);
}

function multiNotSupported(e: BpfError, session: boolean): NotSupportedError | undefined {
  const old = e.code === 'EINVAL' || OPERATION_NOT_SUPPORTED.has(e.code);
  if (session && kernelOlderThan('6.13') && old)
    return new NotSupportedError('uprobe.session links (BPF_TRACE_UPROBE_SESSION)', '6.13', { cause: e });
  if (old && kernelOlderThan('6.6'))
    return new NotSupportedError(
      `${session ? 'uprobe.session' : 'uprobe_multi'} links (BPF_TRACE_UPROBE_MULTI)`,
      session ? '6.13' : '6.6',
      { cause: e },
    );
  // without CONFIG_UPROBES the kernel's uprobe_multi attach is a stub answering EOPNOTSUPP
  if (OPERATION_NOT_SUPPORTED.has(e.code))
    return new NotSupportedError('uprobe_multi links (BPF_TRACE_UPROBE_MULTI; CONFIG_UPROBES)', '6.6', {
      cause: e,
    });
  return undefined;
}

function u64s(values: readonly (number | bigint)[] | undefined, count: number): NativeBuffer | undefined {
  if (!values) return undefined;
  const b = new NativeBuffer(8 * count);
  for (const [i, v] of values.entries()) b.view.setBigUint64(8 * i, BigInt.asUintN(64, BigInt(v)), true);
  return b;
}

function attachMulti(program: Program, opts: UprobeMultiOptions, session: boolean): Link {
  const kind = session ? 'uprobe.session' : opts.retprobe ? 'uretprobe.multi' : 'uprobe.multi';
  if (typeof opts.binary !== 'string' || opts.binary === '')
    throw new TypeError(`${kind} needs a binary (a path, a program on PATH or a library name)`);
  requireProgramType(program, PERF_HOOK_PROG_TYPES.probe, `${kind} ${opts.binary}`);
  const given = [opts.symbols, opts.pattern, opts.offsets].filter((x) => x !== undefined).length;
  if (given !== 1) throw new TypeError(`${kind} takes exactly one of symbols, pattern or offsets`);
  if (session && opts.retprobe)
    throw new TypeError('a uprobe.session runs at entry and return; retprobe does not apply');
  const binary = resolveBinary(opts.binary);
  let offsets: number[];
  if (opts.pattern !== undefined) offsets = matchSymbols(binary, opts.pattern).map((m) => m.offset);
  else if (opts.symbols) offsets = symbolOffsets(binary, opts.symbols, binarySymbols(binary));
  else offsets = opts.offsets!.map((o) => intOption(o, `${kind} offset`, 0));
  const count = offsets.length;
  if (count === 0) throw new TypeError(`${kind} needs at least one place to probe`);
  for (const [what, list] of [
    ['cookies', opts.cookies],
    ['refCtrOffsets', opts.refCtrOffsets],
  ] as const)
    if (list && list.length !== count)
      throw new RangeError(`${kind} has ${count} places but ${list.length} ${what}`);
  for (const r of opts.refCtrOffsets ?? []) intOption(r, `${kind} refCtrOffset`, 0);
  const pid = opts.pid === undefined ? 0 : intOption(opts.pid, `${kind} pid`, 1, 0x7fffffff);

  using path = NativeBuffer.from(binary);
  using offs = u64s(offsets, count)!;
  using refs = u64s(opts.refCtrOffsets, count);
  using cookies = u64s(opts.cookies, count);
  const what = `${kind} on ${count} places in ${binary}`;
  try {
    return new Link(
      linkCreate(
        {
          progFd: program.fd.value,
          attachType: session ? AttachType.TRACE_UPROBE_SESSION : AttachType.TRACE_UPROBE_MULTI,
          'uprobeMulti.path': path.ptr,
          'uprobeMulti.offsets': offs.ptr,
          'uprobeMulti.refCtrOffsets': refs?.ptr ?? 0n,
          'uprobeMulti.cookies': cookies?.ptr ?? 0n,
          'uprobeMulti.cnt': count,
          'uprobeMulti.flags': opts.retprobe ? UprobeMultiFlags.UPROBE_MULTI_RETURN : 0,
          'uprobeMulti.pid': pid,
        } as Parameters<typeof linkCreate>[0],
        what,
      ),
    );
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    const ns = multiNotSupported(e, session);
    if (ns) throw ns;
    if (e.code === 'ESRCH' && opts.pid !== undefined)
      throw new TypeError(`${what}: no process ${opts.pid}`, { cause: e });
    throw explainRefusal(e, what, MULTI_PROBE_NEEDS);
  }
}

/**
 * Attach a `uprobe.multi` program (loaded with attach type `trace_uprobe_multi`) to many places
 * of one binary through one bpf_link, at entry or (`retprobe`) at return: Linux 6.6+,
 * {@link NotSupportedError} before.
 */
export function attachUprobeMulti(program: Program, opts: UprobeMultiOptions): Link {
  return attachMulti(program, opts, false);
}

/**
 * Attach a `uprobe.session` program (attach type `trace_uprobe_session`, 6.13+): it runs at entry
 * and, when the entry run returned 0, at return too (bpf_session_is_return tells which).
 */
export function attachUprobeSession(program: Program, opts: Omit<UprobeMultiOptions, 'retprobe'>): Link {
  return attachMulti(program, opts, true);
}
