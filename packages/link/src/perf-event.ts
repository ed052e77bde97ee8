import type { Program } from '@bpfkit/loader';
import { AttachType, Defines, type Fd, ioctl, linkCreate } from '@bpfkit/sys';
import { openTracepoint, openUprobe, type UprobeOptions } from './events.js';
import {
  type AttachMode,
  type Attachment,
  Link,
  linkOrLegacy,
  PERF_HOOK_PROG_TYPES,
  requireProgramType,
} from './link.js';

export type PerfAttachMode = AttachMode;

/**
 * A program attached to a perf event. With a bpf_link (BPF_LINK_CREATE, 5.15+) it is a
 * {@link Link} (`info`, pinnable); in legacy mode (PERF_EVENT_IOC_SET_BPF) `link` is undefined
 * and closing the perf event detaches. Either way it owns the perf event fd.
 */
export class PerfEventLink implements Attachment {
  readonly perfFd: Fd;
  readonly link: Link | undefined;

  constructor(perfFd: Fd, link: Link | undefined) {
    this.perfFd = perfFd.persistent();
    this.link = link;
  }
  get mode(): 'link' | 'legacy' {
    return this.link ? 'link' : 'legacy';
  }
  detach(): void {
    if (this.link) this.link.close();
    else if (!this.perfFd.closed) ioctl(this.perfFd, Defines.PERF_EVENT_IOC_DISABLE);
    this.perfFd.close();
  }
  close(): void {
    this.detach();
  }
  [Symbol.dispose](): void {
    this.detach();
  }
}

/**
 * Attach `program` to an open perf event (ownership of `perfFd` moves here): BPF_LINK_CREATE
 * where the kernel supports perf links (`auto`, `link`), PERF_EVENT_IOC_SET_BPF + ENABLE
 * otherwise (`auto` fallback, `legacy`). `cookie` (link mode) is read with bpf_get_attach_cookie.
 */
export function attachPerfEvent(
  program: Program,
  perfFd: Fd,
  opts: { mode?: PerfAttachMode; cookie?: bigint } = {},
): PerfEventLink {
  try {
    return linkOrLegacy(
      opts.mode ?? 'auto',
      () => {
        const fd = linkCreate(
          {
            progFd: program.fd.value,
            targetFd: perfFd.value,
            attachType: AttachType.PERF_EVENT,
            'perfEvent.bpfCookie': opts.cookie ?? 0n,
          } as Parameters<typeof linkCreate>[0],
          'perf event',
        );
        ioctl(perfFd, Defines.PERF_EVENT_IOC_ENABLE);
        return new PerfEventLink(perfFd, new Link(fd));
      },
      () => {
        if (opts.cookie) throw new TypeError('a perf event cookie needs a bpf_link (mode "link" or "auto")');
        ioctl(perfFd, Defines.PERF_EVENT_IOC_SET_BPF, program.fd.value);
        ioctl(perfFd, Defines.PERF_EVENT_IOC_ENABLE);
        return new PerfEventLink(perfFd, undefined);
      },
    );
  } catch (e) {
    perfFd.close();
    throw e;
  }
}

/** Attach a `tracepoint` program to `category/name` (e.g. `syscalls`, `sys_enter_getppid`). */
export function attachTracepoint(
  program: Program,
  category: string,
  name: string,
  opts: { mode?: PerfAttachMode; cookie?: bigint } = {},
): PerfEventLink {
  requireProgramType(program, PERF_HOOK_PROG_TYPES.tracepoint, `tracepoint ${category}/${name}`);
  return attachPerfEvent(program, openTracepoint(category, name), opts);
}

/** Attach a `kprobe`-type program as a uprobe on `binary` at `symbol` (entry, or return with `retprobe`). */
export function attachUprobe(
  program: Program,
  binary: string,
  symbol: string | undefined,
  opts: UprobeOptions & { mode?: PerfAttachMode; cookie?: bigint } = {},
): PerfEventLink {
  requireProgramType(program, PERF_HOOK_PROG_TYPES.probe, `uprobe ${binary}:${symbol ?? opts.offset ?? 0}`);
  return attachPerfEvent(program, openUprobe(binary, symbol, opts), opts);
}
