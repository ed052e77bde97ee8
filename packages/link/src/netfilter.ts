// Netfilter: a `netfilter` program on one of a namespace's netfilter hooks (prerouting, local
// in, forward, local out, postrouting) for IPv4 or IPv6, at a priority among the hook's other
// functions (iptables and nftables chains). Attached with a netfilter bpf_link (BPF_LINK_CREATE,
// 6.4+) in the calling thread's network namespace, or the one given. It returns NF_DROP (0) or
// NF_ACCEPT (1).

import type { Program } from '@bpfkit/loader';
import {
  AttachType,
  BpfError,
  Defines,
  kernelOlderThan,
  linkCreate,
  NfInetHook,
  NfIpPriority,
  Nfproto,
  NotSupportedError,
  oneOf,
} from '@bpfkit/sys';
import { Link } from './link.js';
import { type NetnsTarget, withTarget } from './netns.js';

export { NfInetHook, NfIpPriority };

/** The verdicts a netfilter program returns. */
export const NfVerdict = { DROP: 0, ACCEPT: 1 } as const;

export type NetfilterFamily = 'ipv4' | 'ipv6';
const FAMILIES: Record<NetfilterFamily, number> = { ipv4: Nfproto.IPV4, ipv6: Nfproto.IPV6 };
export type NetfilterHook = 'prerouting' | 'local_in' | 'forward' | 'local_out' | 'postrouting';
const HOOKS: Record<NetfilterHook, number> = {
  prerouting: NfInetHook.PRE_ROUTING,
  local_in: NfInetHook.LOCAL_IN,
  forward: NfInetHook.FORWARD,
  local_out: NfInetHook.LOCAL_OUT,
  postrouting: NfInetHook.POST_ROUTING,
};
/** The first kernel with netfilter links. */
const NETFILTER_SINCE = '6.4';

export interface NetfilterOptions {
  family: NetfilterFamily;
  hook: NetfilterHook;
  /**
   * Where among the hook's functions it runs (lower first; iptables' filter table is at
   * `NfIpPriority.FILTER`, 0). Strictly between NF_IP_PRI_FIRST and NF_IP_PRI_LAST.
   */
  priority: number;
  /** Have the kernel reassemble IP fragments before the program sees them (BPF_F_NETFILTER_IP_DEFRAG, 6.6+). */
  defrag?: boolean;
  /** The namespace whose hook it is; the calling thread's when omitted. */
  netns?: NetnsTarget;
}

/** Attach a `netfilter` program (loaded with attach type `netfilter`) to a netfilter hook; closing the link detaches. */
export function attachNetfilter(program: Program, opts: NetfilterOptions): Link {
  oneOf(opts.family, Object.keys(FAMILIES) as NetfilterFamily[], 'netfilter family');
  oneOf(opts.hook, Object.keys(HOOKS) as NetfilterHook[], 'netfilter hook');
  if (
    !Number.isInteger(opts.priority) ||
    opts.priority <= NfIpPriority.FIRST ||
    opts.priority >= NfIpPriority.LAST
  )
    throw new RangeError(
      `a netfilter priority is an integer strictly between ${NfIpPriority.FIRST} and ${NfIpPriority.LAST}, got ${opts.priority}`,
    );
  const what = `netfilter ${opts.family} ${opts.hook} priority ${opts.priority}`;
  return withTarget(opts.netns, (ns) =>
    ns.run(() => {
      try {
        return new Link(
          linkCreate(
            {
              progFd: program.fd.value,
              attachType: AttachType.NETFILTER,
              'netfilter.pf': FAMILIES[opts.family],
              'netfilter.hooknum': HOOKS[opts.hook],
              'netfilter.priority': opts.priority,
              'netfilter.flags': opts.defrag ? Defines.BPF_F_NETFILTER_IP_DEFRAG : 0,
            } as Parameters<typeof linkCreate>[0],
            what,
          ),
        );
      } catch (e) {
        if (e instanceof BpfError && e.code === 'EINVAL' && kernelOlderThan(NETFILTER_SINCE))
          throw new NotSupportedError('netfilter links', NETFILTER_SINCE, { cause: e });
        throw e;
      }
    }),
  );
}
