// raw_tracepoint programs: BPF_RAW_TRACEPOINT_OPEN on a tracepoint by name, returning a bpf_link.
import type { Program } from '@bpfkit/loader';
import { NativeBuffer, rawTracepointOpen } from '@bpfkit/sys';
import { Link } from './link.js';

/**
 * Attach a `raw_tracepoint` program to a kernel tracepoint (`sys_enter`, `sched_switch`, ...)
 * with BPF_RAW_TRACEPOINT_OPEN, which returns a bpf_link. `cookie` (6.10+) is readable in the
 * program with bpf_get_attach_cookie.
 */
export function attachRawTracepoint(program: Program, name: string, opts: { cookie?: bigint } = {}): Link {
  using tp = NativeBuffer.from(name);
  return new Link(
    rawTracepointOpen(
      { name: tp.ptr, progFd: program.fd.value, cookie: opts.cookie ?? 0n },
      `raw tracepoint ${name}`,
    ),
  );
}
