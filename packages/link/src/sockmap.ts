// Socket maps: `sk_msg` and `sk_skb` programs attached to a sockmap or sockhash, where they run
// on the sockets the map holds (sk_msg on what they send; sk_skb stream parser and verdict, or
// the plain verdict, on what they receive). Attached with BPF_PROG_ATTACH to the map's fd, or with
// a sockmap bpf_link (BPF_LINK_CREATE with the map's fd, 6.10+). `sock_ops` programs, which
// usually fill such maps, attach to cgroups (cgroup.ts).

import type { Program } from '@bpfkit/loader';
import {
  AttachType,
  BpfError,
  ClosedError,
  type Fd,
  type HasFd,
  kernelOlderThan,
  linkCreate,
  NotSupportedError,
  oneOf,
  progAttach,
  progDetach,
} from '@bpfkit/sys';
import {
  type AttachMode,
  type Attachment,
  detachUnlessGone,
  Link,
  linkOrLegacy,
  linkUnsupported,
} from './link.js';

/** Where on a socket map a program runs. */
export type SockMapAttachType =
  | 'sk_msg_verdict'
  | 'sk_skb_stream_parser'
  | 'sk_skb_stream_verdict'
  | 'sk_skb_verdict';
const TYPES: Record<SockMapAttachType, number> = {
  sk_msg_verdict: AttachType.SK_MSG_VERDICT,
  sk_skb_stream_parser: AttachType.SK_SKB_STREAM_PARSER,
  sk_skb_stream_verdict: AttachType.SK_SKB_STREAM_VERDICT,
  sk_skb_verdict: AttachType.SK_SKB_VERDICT,
};
/** The first kernel with sockmap bpf_links. */
const SOCKMAP_LINK_SINCE = '6.10';
/** The first kernel with BPF_SK_SKB_VERDICT (a verdict program without a parser). */
const SK_SKB_VERDICT_SINCE = '5.13';

/**
 * A program attached to a socket map with BPF_PROG_ATTACH. It holds its own references to the
 * map and the program; `detach()` removes it only if it is still the one attached (ENOENT
 * otherwise), `close()` does the same but leaves a replaced one alone. Not tied to an fd of its
 * own: the program stays attached for as long as the map lives.
 */
export class SockMapAttachment implements Attachment {
  readonly attachType: SockMapAttachType;
  #map: Fd | undefined;
  #prog: Fd | undefined;

  /** Made by {@link attachSockMap}, right after it attached `program` to `map`. */
  constructor(map: HasFd, program: Program, attachType: SockMapAttachType) {
    this.attachType = attachType;
    this.#map = map.fd.dup();
    try {
      this.#prog = program.fd.dup();
    } catch (e) {
      this.#map.close();
      throw e;
    }
  }

  detach(): void {
    if (!this.#map || !this.#prog) throw new ClosedError('socket map attachment');
    progDetach(
      { targetFd: this.#map.value, attachBpfFd: this.#prog.value, attachType: TYPES[this.attachType] },
      `${this.attachType} on a socket map`,
    );
    this.#done();
  }

  #done(): void {
    this.#prog?.close();
    this.#map?.close();
    this.#prog = undefined;
    this.#map = undefined;
  }

  close(): void {
    if (!this.#map) return;
    // ENOENT: replaced, no longer ours
    detachUnlessGone(
      () => this.detach(),
      ['ENOENT'],
      () => this.#done(),
    );
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Attach an `sk_msg` or `sk_skb` program to a sockmap or sockhash (anything with the map's fd).
 * Attach before adding sockets: a socket takes the programs the map has when it is added. A
 * sockmap link by default where the kernel has them (6.10+), else BPF_PROG_ATTACH (`mode`
 * `legacy` asks for it); a map has one program of each attach type.
 */
export function attachSockMap(
  program: Program,
  map: HasFd,
  attachType: SockMapAttachType,
  opts: { mode?: AttachMode } = {},
): Link | SockMapAttachment {
  oneOf(attachType, Object.keys(TYPES) as SockMapAttachType[], 'socket map attach type');
  const what = `${attachType} on a socket map`;
  return linkOrLegacy<Link | SockMapAttachment>(
    opts.mode ?? 'auto',
    () => {
      try {
        return new Link(
          linkCreate(
            { progFd: program.fd.value, targetFd: map.fd.value, attachType: TYPES[attachType] },
            what,
          ),
        );
      } catch (e) {
        if (opts.mode === 'link' && linkUnsupported(e) && kernelOlderThan(SOCKMAP_LINK_SINCE))
          throw new NotSupportedError('sockmap links', SOCKMAP_LINK_SINCE, { cause: e });
        throw e;
      }
    },
    () => {
      try {
        progAttach(
          { targetFd: map.fd.value, attachBpfFd: program.fd.value, attachType: TYPES[attachType] },
          what,
        );
      } catch (e) {
        if (
          attachType === 'sk_skb_verdict' &&
          e instanceof BpfError &&
          e.code === 'EINVAL' &&
          kernelOlderThan(SK_SKB_VERDICT_SINCE)
        )
          throw new NotSupportedError('the sk_skb_verdict attach type', SK_SKB_VERDICT_SINCE, { cause: e });
        throw e;
      }
      return new SockMapAttachment(map, program, attachType);
    },
  );
}
