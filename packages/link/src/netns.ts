// Network-namespace hooks: `sk_lookup` (which socket takes a new connection or datagram, 5.9+)
// and `flow_dissector` (how the namespace's packets are parsed for hashing and steering). Both
// attach to a namespace with a netns bpf_link (BPF_LINK_CREATE with the namespace's fd; 5.7+ for
// the flow dissector, 5.9+ for sk_lookup); the flow dissector also with the legacy
// BPF_PROG_ATTACH, which acts on the calling thread's namespace.

import type { Program } from '@bpfkit/loader';
import {
  AttachType,
  BpfError,
  ClosedError,
  type Fd,
  kernelOlderThan,
  linkCreate,
  NativeBuffer,
  Netns,
  NotSupportedError,
  progAttach,
  progDetach,
  progQuery,
} from '@bpfkit/sys';
import { type AttachMode, type Attachment, detachUnlessGone, Link, linkOrLegacy } from './link.js';

/** A network namespace: its file (`/run/netns/<name>`, `/proc/<pid>/ns/net`) or an open {@link Netns}; the calling thread's own when omitted. */
export type NetnsTarget = string | Netns;

export function withTarget<T>(target: NetnsTarget | undefined, fn: (ns: Netns) => T): T {
  if (target instanceof Netns) return fn(target);
  using ns = target === undefined ? Netns.current() : Netns.open(target);
  return fn(ns);
}

const what = (target: NetnsTarget | undefined): string =>
  target === undefined
    ? 'the current network namespace'
    : typeof target === 'string'
      ? target
      : 'a network namespace';

/**
 * Attach an `sk_lookup` program to a network namespace with a netns link (5.9+). It runs when
 * the namespace looks up a listening TCP or an unconnected UDP socket for a packet, and may pick
 * the socket itself (`bpf_sk_assign` with one from a sockmap). Several may be attached; closing
 * the link (and any pin) detaches.
 */
export function attachSkLookup(program: Program, netns?: NetnsTarget): Link {
  return withTarget(netns, (ns) => {
    try {
      return new Link(
        linkCreate(
          { progFd: program.fd.value, targetFd: ns.fd.value, attachType: AttachType.SK_LOOKUP },
          `sk_lookup on ${what(netns)}`,
        ),
      );
    } catch (e) {
      if (e instanceof BpfError && e.code === 'EINVAL' && kernelOlderThan('5.9'))
        throw new NotSupportedError('sk_lookup programs', '5.9', { cause: e });
      throw e;
    }
  });
}

/**
 * A flow dissector attached with BPF_PROG_ATTACH (the legacy way). It holds its own reference to
 * the program and to the namespace it acts on; `detach()` removes it only if it is still the one
 * attached (ENOENT otherwise); `close()` does the same but leaves alone a replaced one. Not tied
 * to an fd: a process that exits without closing leaves it attached.
 */
export class FlowDissectorAttachment implements Attachment {
  #prog: Fd | undefined;
  readonly #ns: Netns;

  /** Made by {@link attachFlowDissector}, right after it attached `program` in namespace `ns` (which it keeps). */
  constructor(program: Program, ns: Netns) {
    this.#ns = ns;
    this.#prog = program.fd.dup();
  }

  detach(): void {
    const prog = this.#prog;
    if (!prog || prog.closed) throw new ClosedError('flow dissector attachment');
    this.#ns.run(() =>
      progDetach(
        { targetFd: 0, attachBpfFd: prog.value, attachType: AttachType.FLOW_DISSECTOR },
        'flow_dissector',
      ),
    );
    this.#done();
  }

  #done(): void {
    this.#prog?.close();
    this.#prog = undefined;
    this.#ns.close();
  }

  close(): void {
    if (!this.#prog || this.#prog.closed) return;
    // ENOENT: replaced or removed, not ours any more
    detachUnlessGone(
      () => this.detach(),
      ['ENOENT'],
      () => {
        if (this.#prog) this.#done();
      },
    );
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Attach a `flow_dissector` program to a network namespace: a netns link by default (5.7+);
 * with `mode: 'legacy'` (or in `auto` on older kernels) BPF_PROG_ATTACH, run in that namespace.
 * A namespace has one flow dissector: a second is refused with EEXIST.
 */
export function attachFlowDissector(
  program: Program,
  netns?: NetnsTarget,
  opts: { mode?: AttachMode } = {},
): Link | FlowDissectorAttachment {
  return withTarget(netns, (ns) =>
    linkOrLegacy<Link | FlowDissectorAttachment>(
      opts.mode ?? 'auto',
      () =>
        new Link(
          linkCreate(
            { progFd: program.fd.value, targetFd: ns.fd.value, attachType: AttachType.FLOW_DISSECTOR },
            `flow_dissector on ${what(netns)}`,
          ),
        ),
      () => {
        ns.run(() =>
          progAttach(
            { targetFd: 0, attachBpfFd: program.fd.value, attachType: AttachType.FLOW_DISSECTOR },
            `flow_dissector on ${what(netns)}`,
          ),
        );
        return new FlowDissectorAttachment(program, Netns.open(`/proc/self/fd/${ns.fd.value}`));
      },
    ),
  );
}

/** The programs attached to a namespace's hook (`sk_lookup` or `flow_dissector`), by id. */
export function queryNetns(kind: 'sk_lookup' | 'flow_dissector', netns?: NetnsTarget): number[] {
  const attachType = kind === 'sk_lookup' ? AttachType.SK_LOOKUP : AttachType.FLOW_DISSECTOR;
  return withTarget(netns, (ns) => {
    for (let room = 8; ; room *= 4) {
      using ids = new NativeBuffer(4 * room);
      try {
        const q = progQuery({ targetFd: ns.fd.value, attachType, progIds: ids.ptr, progCnt: room });
        return Array.from({ length: q.progCnt }, (_, i) => ids.view.getUint32(4 * i, true));
      } catch (e) {
        if (e instanceof BpfError && e.code === 'ENOSPC') continue;
        throw e;
      }
    }
  });
}
