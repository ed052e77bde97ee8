// netkit: a veth-like device pair made for BPF (6.7+), whose programs run in the device's own
// transmit path. Programs attach through the primary device with a netkit bpf_link
// (BPF_LINK_CREATE with BPF_NETKIT_PRIMARY for what the primary sends, BPF_NETKIT_PEER for what
// the peer sends), ordered like tcx. They return the tcx verdicts (NETKIT_NEXT/PASS/DROP/REDIRECT
// are the same numbers as TcxAction).

import type { Program } from '@bpfkit/loader';
import { AttachType, ifIndex, kernelOlderThan, linkCreate, NotSupportedError, oneOf } from '@bpfkit/sys';
import { Link, linkUnsupported } from './link.js';
import { placement, queryTcx, type TcAnchor, type TcQuery } from './tc.js';

/** Which side's transmit path: the primary device's, or its peer's (both attached through the primary). */
export type NetkitSide = 'primary' | 'peer';
const SIDES: Record<NetkitSide, number> = {
  primary: AttachType.NETKIT_PRIMARY,
  peer: AttachType.NETKIT_PEER,
};
/** The first kernel with netkit. */
const NETKIT_SINCE = '6.7';

export interface NetkitOptions {
  side: NetkitSide;
  /** Run before this program or link, or with `'all'` before every other (as for tcx). */
  before?: TcAnchor | 'all';
  /** Run after this program or link, or with `'all'` after every other. */
  after?: TcAnchor | 'all';
  /** Attach only if the hook's revision ({@link queryNetkit}) is still this one; ESTALE otherwise. */
  expectedRevision?: number | bigint;
}

/**
 * Attach a `sched_cls` program to a netkit pair through its primary device (a name or an index in
 * the calling thread's namespace). Closing the link detaches.
 */
export function attachNetkit(program: Program, primary: string | number, opts: NetkitOptions): Link {
  oneOf(opts.side, Object.keys(SIDES) as NetkitSide[], 'netkit side');
  const ifindex = ifIndex(primary);
  const place = placement(opts);
  try {
    return new Link(
      linkCreate(
        {
          progFd: program.fd.value,
          targetIfindex: ifindex,
          attachType: SIDES[opts.side],
          flags: place.flags,
          ...(place.fd !== undefined ? { 'netkit.relativeFd': place.fd } : {}),
          ...(place.id !== undefined ? { 'netkit.relativeId': place.id } : {}),
          ...(opts.expectedRevision !== undefined
            ? { 'netkit.expectedRevision': BigInt(opts.expectedRevision) }
            : {}),
        } as Parameters<typeof linkCreate>[0],
        `netkit ${opts.side} on interface ${primary}`,
      ),
    );
  } catch (e) {
    if (linkUnsupported(e) && kernelOlderThan(NETKIT_SINCE))
      throw new NotSupportedError('netkit links', NETKIT_SINCE, { cause: e });
    throw e;
  }
}

/** The programs on one side of a netkit pair, in run order with their links, and the revision (BPF_PROG_QUERY on the primary). */
export function queryNetkit(primary: string | number, side: NetkitSide): NonNullable<TcQuery['tcx']> {
  oneOf(side, Object.keys(SIDES) as NetkitSide[], 'netkit side');
  const q = queryTcx(ifIndex(primary), SIDES[side]);
  if (!q) throw new NotSupportedError('netkit', NETKIT_SINCE);
  return q;
}
