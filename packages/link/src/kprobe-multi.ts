// kprobe.multi, kretprobe.multi and kprobe.session: one bpf_link (BPF_LINK_CREATE with
// BPF_TRACE_KPROBE_MULTI or BPF_TRACE_KPROBE_SESSION) over many kernel functions at once, through
// fprobe (CONFIG_FPROBE). Functions are named by a list, a glob pattern matched against tracefs's
// available_filter_functions (as libbpf does), or addresses; each may carry a cookie.
import type { Program } from '@bpfkit/loader';
import {
  AttachType,
  BpfError,
  Defines,
  kernelOlderThan,
  linkCreate,
  NativeBuffer,
  NotSupportedError,
} from '@bpfkit/sys';
import { availableFilterFunctions, globPattern, UnknownFunctionError, unknownFunction } from './ksyms.js';
import { Link, OPERATION_NOT_SUPPORTED } from './link.js';
import { explainRefusal, MULTI_PROBE_NEEDS } from './permissions.js';

export interface KprobeMultiOptions {
  /** The functions, by name. */
  symbols?: readonly string[];
  /** Or every function ftrace can attach to whose name matches this glob (`*`, `?`). */
  pattern?: string;
  /** Or kernel addresses. */
  addresses?: readonly bigint[];
  /** One per function (in the order of `symbols`/`addresses`, or of {@link resolveKprobePattern}), read with bpf_get_attach_cookie. */
  cookies?: readonly bigint[];
  /** On return (kretprobe.multi). */
  retprobe?: boolean;
}

/** The functions `pattern` matches in available_filter_functions, sorted; an error names the pattern when none does. */
export function resolveKprobePattern(
  pattern: string,
  names: readonly string[] = availableFilterFunctions(),
): string[] {
  const re = globPattern(pattern);
  const out = names.filter((n) => re.test(n)).sort();
  if (out.length === 0)
    throw new UnknownFunctionError(
      pattern,
      [],
      'available_filter_functions (no function matches the pattern)',
    );
  return out;
}

function multiNotSupported(e: BpfError, session: boolean): NotSupportedError | undefined {
  if (session && kernelOlderThan('6.10') && (e.code === 'EINVAL' || OPERATION_NOT_SUPPORTED.has(e.code)))
    return new NotSupportedError('kprobe.session links (BPF_TRACE_KPROBE_SESSION)', '6.10', { cause: e });
  // without CONFIG_FPROBE the kernel's kprobe_multi attach is a stub answering EOPNOTSUPP
  if (OPERATION_NOT_SUPPORTED.has(e.code) || (e.code === 'EINVAL' && kernelOlderThan('5.18')))
    return new NotSupportedError(
      `${session ? 'kprobe.session' : 'kprobe.multi'} links (BPF_TRACE_KPROBE_MULTI; CONFIG_FPROBE)`,
      session ? '6.10' : '5.18',
      { cause: e },
    );
  return undefined;
}

function attachMulti(program: Program, opts: KprobeMultiOptions, session: boolean): Link {
  const given = [opts.symbols, opts.pattern, opts.addresses].filter((x) => x !== undefined).length;
  if (given !== 1) throw new TypeError('kprobe.multi takes exactly one of symbols, pattern or addresses');
  if (session && opts.retprobe)
    throw new TypeError('a kprobe.session runs at entry and return; retprobe does not apply');
  const symbols = opts.pattern !== undefined ? resolveKprobePattern(opts.pattern) : opts.symbols;
  const count = symbols?.length ?? opts.addresses?.length ?? 0;
  if (count === 0) throw new TypeError('kprobe.multi needs at least one function');
  if (opts.cookies && opts.cookies.length !== count)
    throw new RangeError(`kprobe.multi has ${count} functions but ${opts.cookies.length} cookies`);
  for (const s of symbols ?? [])
    if (typeof s !== 'string' || !/^[\w.]+$/.test(s))
      throw new TypeError(`bad kernel function name '${String(s)}'`);

  // the names as C strings in one block, and the array of their addresses
  const strings = (symbols ?? []).map((s) => Buffer.from(`${s}\0`));
  using text = NativeBuffer.from(new Uint8Array(Buffer.concat(strings)));
  using ptrs = new NativeBuffer(8 * count);
  using cookies = new NativeBuffer(8 * count);
  let at = 0n;
  for (let i = 0; i < count; i++) {
    if (symbols) {
      ptrs.view.setBigUint64(8 * i, text.ptr + at, true);
      at += BigInt(strings[i]!.length);
    } else ptrs.view.setBigUint64(8 * i, opts.addresses![i]!, true);
    if (opts.cookies) cookies.view.setBigUint64(8 * i, opts.cookies[i]!, true);
  }
  const attachType = session ? AttachType.TRACE_KPROBE_SESSION : AttachType.TRACE_KPROBE_MULTI;
  const what = `${session ? 'kprobe.session' : opts.retprobe ? 'kretprobe.multi' : 'kprobe.multi'} on ${count} functions`;
  try {
    return new Link(
      linkCreate(
        {
          progFd: program.fd.value,
          attachType,
          'kprobeMulti.flags': opts.retprobe ? Defines.BPF_F_KPROBE_MULTI_RETURN : 0,
          'kprobeMulti.cnt': count,
          'kprobeMulti.syms': symbols ? ptrs.ptr : 0n,
          'kprobeMulti.addrs': symbols ? 0n : ptrs.ptr,
          'kprobeMulti.cookies': opts.cookies ? cookies.ptr : 0n,
        } as Parameters<typeof linkCreate>[0],
        what,
      ),
    );
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    const ns = multiNotSupported(e, session);
    if (ns) throw ns;
    // an unknown name is ENOENT (or ESRCH, older kernels): say which
    if (symbols && (e.code === 'ENOENT' || e.code === 'ESRCH' || e.code === 'EINVAL')) {
      for (const s of symbols) {
        const unknown = unknownFunction(s);
        if (unknown) throw Object.assign(unknown, { cause: e });
      }
    }
    throw explainRefusal(e, what, MULTI_PROBE_NEEDS);
  }
}

/**
 * Attach a `kprobe.multi` program (loaded with attach type `trace_kprobe_multi`) to many kernel
 * functions through one bpf_link (5.18+, CONFIG_FPROBE; {@link NotSupportedError} otherwise).
 */
export function attachKprobeMulti(program: Program, opts: KprobeMultiOptions): Link {
  return attachMulti(program, opts, false);
}

/**
 * Attach a `kprobe.session` program (attach type `trace_kprobe_session`, 6.10+): it runs at entry
 * and, when the entry run returned 0, at return too (bpf_session_is_return tells which).
 */
export function attachKprobeSession(program: Program, opts: Omit<KprobeMultiOptions, 'retprobe'>): Link {
  return attachMulti(program, opts, true);
}
