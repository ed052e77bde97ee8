// XDP: a program on a network interface's receive path. Attached with a bpf_link
// (BPF_LINK_CREATE, 5.9+), or over rtnetlink (RTM_SETLINK IFLA_XDP) where the kernel has no XDP
// links or the caller asks for it.

import type { Program } from '@bpfkit/loader';
import {
  AttachType,
  ClosedError,
  Defines,
  type Fd,
  getLinkXdp,
  ifIndex,
  kernelOlderThan,
  linkCreate,
  Netns,
  oneOf,
  setLinkXdp,
  XdpAction,
  XdpAttached,
  type XdpState,
} from '@bpfkit/sys';
import { type Attachment, detachUnlessGone, Link, linkUnsupported } from './link.js';

export { XdpAction };

/** Where the program runs: in the stack (`generic`), in the driver (`native`), on the NIC (`offload`). */
export type XdpMode = 'generic' | 'native' | 'offload';
const MODES: readonly XdpMode[] = ['generic', 'native', 'offload'];
const MODE_FLAGS: Record<XdpMode, number> = {
  generic: Defines.XDP_FLAGS_SKB_MODE,
  native: Defines.XDP_FLAGS_DRV_MODE,
  offload: Defines.XDP_FLAGS_HW_MODE,
};

/** How to attach: a bpf_link (`link`), rtnetlink (`netlink`), or a link where the kernel has XDP links (`auto`). */
export type XdpAttachVia = 'auto' | 'link' | 'netlink';
const VIAS: readonly XdpAttachVia[] = ['auto', 'link', 'netlink'];
/** The first kernel with XDP bpf_links. */
const XDP_LINK_SINCE = '5.9';

export interface XdpOptions {
  /** Without a mode the kernel chooses: native where the driver has XDP, generic otherwise. */
  mode?: XdpMode;
  /**
   * Replace this program, and only if it is the one attached now (XDP_FLAGS_REPLACE with
   * IFLA_XDP_EXPECTED_FD, 5.7+); the kernel refuses with EEXIST otherwise. Replacing goes through
   * netlink: a program attached by a link is replaced with `link.update(program, { expected })`.
   */
  replace?: Program;
  /** `auto` (the default): a bpf_link, falling back to netlink on kernels without XDP links. */
  via?: XdpAttachVia;
}

/**
 * A program attached over rtnetlink. It holds its own reference to the program (the kernel
 * needs one to name the expected program), so the `Program` may be closed meanwhile, and the
 * network namespace it was attached in, where it acts whichever namespace the thread is in
 * later. `detach()` removes the program only if it is still the one attached; `close()` does the
 * same but leaves alone an interface that is gone or whose program someone else replaced. Not
 * tied to an fd: a process that exits without closing leaves the program attached.
 */
export class XdpNetlinkAttachment implements Attachment {
  readonly ifindex: number;
  readonly mode: XdpMode | undefined;
  #prog: Fd | undefined;
  readonly #ns: Netns;

  /** Made by {@link attachXdp}, right after it attached `program` in the calling thread's namespace. */
  constructor(ifindex: number, mode: XdpMode | undefined, program: Program) {
    this.ifindex = ifindex;
    this.mode = mode;
    this.#ns = Netns.current();
    try {
      this.#prog = program.fd.dup();
    } catch (e) {
      this.#ns.close();
      throw e;
    }
  }

  #live(): Fd {
    if (!this.#prog || this.#prog.closed) throw new ClosedError('XDP attachment');
    return this.#prog;
  }

  #flags(): number {
    return this.mode ? MODE_FLAGS[this.mode] : 0;
  }

  /** The program attached now, by id. */
  get programId(): number {
    this.#live();
    const q = xdpQuery(this.#ns.run(() => getLinkXdp(this.ifindex)));
    return (this.mode ? q.programs[this.mode] : q.programId) ?? 0;
  }

  /** Replace the program atomically, only if ours (or `expected`) is the one attached now. */
  update(program: Program, opts: { expected?: Program } = {}): void {
    const cur = this.#live();
    this.#ns.run(() =>
      setLinkXdp(this.ifindex, {
        fd: program.fd.value,
        flags: this.#flags() | Defines.XDP_FLAGS_REPLACE,
        expectedFd: (opts.expected?.fd ?? cur).value,
      }),
    );
    const next = program.fd.dup();
    cur.close();
    this.#prog = next;
  }

  /** Remove the program, only if it is still ours (EEXIST otherwise). */
  detach(): void {
    const cur = this.#live();
    this.#ns.run(() =>
      setLinkXdp(this.ifindex, {
        fd: -1,
        flags: this.#flags() | Defines.XDP_FLAGS_REPLACE,
        expectedFd: cur.value,
      }),
    );
    cur.close();
    this.#ns.close();
  }

  close(): void {
    if (!this.#prog || this.#prog.closed) return;
    // EEXIST: someone else's program is attached now; ENODEV: the interface is gone
    detachUnlessGone(
      () => this.detach(),
      ['EEXIST', 'ENODEV'],
      () => {
        this.#prog?.close();
        this.#ns.close();
      },
    );
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** What attachXdp returns: a bpf_link, or a netlink attachment. */
export type XdpAttachment = Link | XdpNetlinkAttachment;

/**
 * Attach an `xdp` program to a network interface (a name or an index, in the calling thread's
 * network namespace). A bpf_link by default: closing the link (and any pin) detaches. With
 * `via: 'netlink'`, or on kernels before 5.9, or to `replace` a program, it attaches over
 * rtnetlink and returns an {@link XdpNetlinkAttachment}.
 */
export function attachXdp(program: Program, iface: string | number, opts: XdpOptions & { via: 'link' }): Link;
export function attachXdp(
  program: Program,
  iface: string | number,
  opts: XdpOptions & { via: 'netlink' },
): XdpNetlinkAttachment;
export function attachXdp(program: Program, iface: string | number, opts?: XdpOptions): XdpAttachment;
export function attachXdp(program: Program, iface: string | number, opts: XdpOptions = {}): XdpAttachment {
  const via = opts.via ?? 'auto';
  oneOf(via, VIAS, 'XDP attach via');
  if (opts.mode !== undefined) oneOf(opts.mode, MODES, 'XDP mode');
  if (opts.replace && via === 'link')
    throw new TypeError(
      'a bpf_link cannot replace an attached XDP program: replace over netlink, or update a link with link.update(program, { expected })',
    );
  const ifindex = ifIndex(iface);
  const flags = opts.mode ? MODE_FLAGS[opts.mode] : 0;
  if (via !== 'netlink' && !opts.replace) {
    try {
      return new Link(
        linkCreate(
          { progFd: program.fd.value, targetIfindex: ifindex, attachType: AttachType.XDP, flags },
          `XDP on interface ${iface}`,
        ),
      );
    } catch (e) {
      // Only a kernel without XDP links falls back: on 5.9+ the link's error is the answer (a
      // refused mode, say), not a reason to try another way.
      if (via === 'link' || !linkUnsupported(e) || !kernelOlderThan(XDP_LINK_SINCE)) throw e;
    }
  }
  setLinkXdp(ifindex, {
    fd: program.fd.value,
    flags: flags | (opts.replace ? Defines.XDP_FLAGS_REPLACE : 0),
    ...(opts.replace ? { expectedFd: opts.replace.fd.value } : {}),
  });
  return new XdpNetlinkAttachment(ifindex, opts.mode, program);
}

/** What is attached to an interface: the mode (`multi` when several) and program ids. */
export interface XdpQuery {
  mode: XdpMode | 'multi' | undefined;
  /** The program, when one mode is attached. */
  programId: number | undefined;
  /** The program in each mode that has one. */
  programs: Partial<Record<XdpMode, number>>;
}

/** The XDP programs attached to an interface (RTM_GETLINK IFLA_XDP), however they were attached. */
export function queryXdp(iface: string | number): XdpQuery {
  return xdpQuery(getLinkXdp(iface));
}

function xdpQuery(s: XdpState): XdpQuery {
  const mode =
    s.attached === XdpAttached.SKB
      ? 'generic'
      : s.attached === XdpAttached.DRV
        ? 'native'
        : s.attached === XdpAttached.HW
          ? 'offload'
          : s.attached === XdpAttached.MULTI
            ? 'multi'
            : undefined;
  const programs: Partial<Record<XdpMode, number>> = {};
  if (s.skbProgId) programs.generic = s.skbProgId;
  if (s.drvProgId) programs.native = s.drvProgId;
  if (s.hwProgId) programs.offload = s.hwProgId;
  return { mode, programId: s.progId || undefined, programs };
}
