import type { Program } from '@bpfkit/loader';
import {
  BpfError,
  ClosedError,
  Defines,
  type Fd,
  type HasFd,
  InterfaceNotFoundError,
  type LinkInfo,
  linkDetach,
  linkFdById,
  linkInfo,
  linkUpdate,
  oneOf,
  ProgType,
  progTypes,
} from '@bpfkit/sys';

/** Something that keeps a program attached until `detach()`/dispose. */
export interface Attachment {
  detach(): void;
  [Symbol.dispose](): void;
}

/**
 * A bpf_link: the kernel object that keeps a program attached. One class for every link type.
 * Closing the last fd (and any pin) detaches; `detach()` detaches now while the fd stays valid.
 * A forgotten Link is never detached by the garbage collector.
 */
export class Link implements HasFd, Attachment {
  readonly fd: Fd;

  constructor(fd: Fd) {
    this.fd = fd.persistent();
  }

  static fromFd(fd: Fd): Link {
    linkInfo(fd); // fails unless it is a link
    return new Link(fd);
  }

  /** Open the link with this id (needs CAP_SYS_ADMIN). */
  static fromId(id: number): Link {
    return new Link(linkFdById(id));
  }

  #live(): Fd {
    if (this.fd.closed) throw new ClosedError('link');
    return this.fd;
  }

  get info(): LinkInfo {
    return linkInfo(this.#live());
  }

  /** Atomically replace the program; with `expected`, only if that is the one attached now. */
  update(program: Program, opts: { expected?: Program } = {}): void {
    linkUpdate({
      linkFd: this.#live().value,
      newProgFd: program.fd.value,
      oldProgFd: opts.expected?.fd.value ?? 0,
      flags: opts.expected ? Defines.BPF_F_REPLACE : 0,
    });
  }

  /** Detach now (BPF_LINK_DETACH). The fd stays open but the link is defunct. */
  detach(): void {
    linkDetach({ linkFd: this.#live().value });
  }

  close(): void {
    this.fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** How to attach: a bpf_link (`link`), the classic per-kind call (`legacy`), or a link where the kernel has one (`auto`). */
export type AttachMode = 'auto' | 'link' | 'legacy';
const ATTACH_MODES: readonly AttachMode[] = ['auto', 'link', 'legacy'];

/** The kernel has no bpf_link for this attachment (so `auto` falls back to the legacy call). */
export function linkUnsupported(e: unknown): boolean {
  return e instanceof BpfError && ['EINVAL', 'ENOTSUPP', 'EOPNOTSUPP'].includes(e.code);
}

/** Attach through a bpf_link unless `mode` is legacy; in `auto` mode fall back to `legacy()` when links are unsupported. */
/** "Operation not supported", by each name errno 95 and the kernel's 524 go by: a kernel stub for a config option it was built without. */
export const OPERATION_NOT_SUPPORTED: ReadonlySet<string> = new Set(['EOPNOTSUPP', 'ENOTSUP', 'ENOTSUPP']);

export function linkOrLegacy<T>(mode: AttachMode, viaLink: () => T, legacy: () => T): T {
  oneOf(mode, ATTACH_MODES, 'attach mode');
  if (mode !== 'legacy') {
    try {
      return viaLink();
    } catch (e) {
      if (mode === 'link' || !linkUnsupported(e)) throw e;
    }
  }
  return legacy();
}

/**
 * The close path of an attachment that holds no bpf_link: `detach()`, where a refusal whose
 * errno is one of `gone` (or an interface that no longer exists) means what we attached is
 * already gone or was replaced, so nothing of ours is left to remove; any other error is
 * thrown. `release()` (closing the attachment's own references) runs in every case. Returns
 * whether `detach()` removed it.
 */
export function detachUnlessGone(detach: () => void, gone: readonly string[], release: () => void): boolean {
  try {
    detach();
    return true;
  } catch (e) {
    if ((e instanceof BpfError && gone.includes(e.code)) || e instanceof InterfaceNotFoundError) return false;
    throw e;
  } finally {
    release();
  }
}

/**
 * A TypeError, before anything is opened, when `program` is not of a type `hook` runs: the
 * kernel would answer EINVAL from an ioctl or link call that does not say why.
 */
export function requireProgramType(program: Program, types: readonly ProgType[], hook: string): void {
  if (types.includes(program.type)) return;
  const want = types.map((t) => progTypes.toName(t)).join(' or ');
  throw new TypeError(
    `${hook} runs ${want} programs, not ${progTypes.toName(program.type)}${program.name ? ` ('${program.name}')` : ''}`,
  );
}

/** The program types each perf-event hook runs. */
export const PERF_HOOK_PROG_TYPES = {
  tracepoint: [ProgType.TRACEPOINT],
  probe: [ProgType.KPROBE], // kprobes and uprobes alike
} as const;
