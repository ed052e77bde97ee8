// ELF section names → program type and expected attach type, following libbpf's SEC()
// conventions (libbpf.c section_defs). `/` after a prefix introduces the attach target.
import { type AttachType, attachTypes, Defines, type ProgType, progTypes } from '@bpfkit/sys';

const { BPF_F_SLEEPABLE, BPF_F_XDP_HAS_FRAGS } = Defines;

interface Def {
  /** Exact section name, or a prefix when it ends with '/' or '+'. */
  sec: string;
  type: string;
  attach?: string;
  flags?: number;
}

// Order matters: longer prefixes first where one is a prefix of another.
const DEFS: Def[] = [
  { sec: 'socket', type: 'socket_filter' },
  { sec: 'sk_reuseport/migrate', type: 'sk_reuseport', attach: 'sk_reuseport_select_or_migrate' },
  { sec: 'sk_reuseport', type: 'sk_reuseport', attach: 'sk_reuseport_select' },
  { sec: 'kprobe.multi/', type: 'kprobe', attach: 'trace_kprobe_multi' },
  { sec: 'kretprobe.multi/', type: 'kprobe', attach: 'trace_kprobe_multi' },
  { sec: 'kprobe.session/', type: 'kprobe', attach: 'trace_kprobe_session' },
  { sec: 'uprobe.multi/', type: 'kprobe', attach: 'trace_uprobe_multi' },
  { sec: 'uretprobe.multi/', type: 'kprobe', attach: 'trace_uprobe_multi' },
  { sec: 'uprobe.multi.s/', type: 'kprobe', attach: 'trace_uprobe_multi', flags: BPF_F_SLEEPABLE },
  { sec: 'uprobe.s/', type: 'kprobe', flags: BPF_F_SLEEPABLE },
  { sec: 'uretprobe.s/', type: 'kprobe', flags: BPF_F_SLEEPABLE },
  { sec: 'kprobe/', type: 'kprobe' },
  { sec: 'kretprobe/', type: 'kprobe' },
  { sec: 'uprobe/', type: 'kprobe' },
  { sec: 'uretprobe/', type: 'kprobe' },
  { sec: 'uprobe', type: 'kprobe' },
  { sec: 'uretprobe', type: 'kprobe' },
  { sec: 'ksyscall/', type: 'kprobe' },
  { sec: 'kretsyscall/', type: 'kprobe' },
  { sec: 'usdt/', type: 'kprobe' },
  { sec: 'tc/ingress', type: 'sched_cls', attach: 'tcx_ingress' },
  { sec: 'tc/egress', type: 'sched_cls', attach: 'tcx_egress' },
  { sec: 'tcx/ingress', type: 'sched_cls', attach: 'tcx_ingress' },
  { sec: 'tcx/egress', type: 'sched_cls', attach: 'tcx_egress' },
  { sec: 'netkit/primary', type: 'sched_cls', attach: 'netkit_primary' },
  { sec: 'netkit/peer', type: 'sched_cls', attach: 'netkit_peer' },
  { sec: 'tc', type: 'sched_cls' },
  { sec: 'classifier', type: 'sched_cls' },
  { sec: 'action', type: 'sched_act' },
  { sec: 'tracepoint/', type: 'tracepoint' },
  { sec: 'tp/', type: 'tracepoint' },
  { sec: 'raw_tracepoint.w/', type: 'raw_tracepoint_writable' },
  { sec: 'raw_tp.w/', type: 'raw_tracepoint_writable' },
  { sec: 'raw_tracepoint/', type: 'raw_tracepoint' },
  { sec: 'raw_tp/', type: 'raw_tracepoint' },
  { sec: 'tp_btf/', type: 'tracing', attach: 'trace_raw_tp' },
  { sec: 'fentry.s/', type: 'tracing', attach: 'trace_fentry', flags: BPF_F_SLEEPABLE },
  { sec: 'fmod_ret.s/', type: 'tracing', attach: 'modify_return', flags: BPF_F_SLEEPABLE },
  { sec: 'fexit.s/', type: 'tracing', attach: 'trace_fexit', flags: BPF_F_SLEEPABLE },
  { sec: 'fentry/', type: 'tracing', attach: 'trace_fentry' },
  { sec: 'fmod_ret/', type: 'tracing', attach: 'modify_return' },
  { sec: 'fexit/', type: 'tracing', attach: 'trace_fexit' },
  { sec: 'freplace/', type: 'ext' },
  { sec: 'lsm.s/', type: 'lsm', attach: 'lsm_mac', flags: BPF_F_SLEEPABLE },
  { sec: 'lsm_cgroup/', type: 'lsm', attach: 'lsm_cgroup' },
  { sec: 'lsm/', type: 'lsm', attach: 'lsm_mac' },
  { sec: 'iter.s/', type: 'tracing', attach: 'trace_iter', flags: BPF_F_SLEEPABLE },
  { sec: 'iter/', type: 'tracing', attach: 'trace_iter' },
  { sec: 'syscall', type: 'syscall', flags: BPF_F_SLEEPABLE },
  { sec: 'xdp.frags/devmap', type: 'xdp', attach: 'xdp_devmap', flags: BPF_F_XDP_HAS_FRAGS },
  { sec: 'xdp/devmap', type: 'xdp', attach: 'xdp_devmap' },
  { sec: 'xdp.frags/cpumap', type: 'xdp', attach: 'xdp_cpumap', flags: BPF_F_XDP_HAS_FRAGS },
  { sec: 'xdp/cpumap', type: 'xdp', attach: 'xdp_cpumap' },
  { sec: 'xdp.frags', type: 'xdp', attach: 'xdp', flags: BPF_F_XDP_HAS_FRAGS },
  { sec: 'xdp', type: 'xdp', attach: 'xdp' },
  { sec: 'perf_event', type: 'perf_event' },
  { sec: 'lwt_in', type: 'lwt_in' },
  { sec: 'lwt_out', type: 'lwt_out' },
  { sec: 'lwt_xmit', type: 'lwt_xmit' },
  { sec: 'lwt_seg6local', type: 'lwt_seg6local' },
  { sec: 'sockops', type: 'sock_ops', attach: 'cgroup_sock_ops' },
  { sec: 'sk_skb/stream_parser', type: 'sk_skb', attach: 'sk_skb_stream_parser' },
  { sec: 'sk_skb/stream_verdict', type: 'sk_skb', attach: 'sk_skb_stream_verdict' },
  { sec: 'sk_skb/verdict', type: 'sk_skb', attach: 'sk_skb_verdict' },
  { sec: 'sk_skb', type: 'sk_skb' },
  { sec: 'sk_msg', type: 'sk_msg', attach: 'sk_msg_verdict' },
  { sec: 'lirc_mode2', type: 'lirc_mode2', attach: 'lirc_mode2' },
  { sec: 'flow_dissector', type: 'flow_dissector', attach: 'flow_dissector' },
  { sec: 'cgroup_skb/ingress', type: 'cgroup_skb', attach: 'cgroup_inet_ingress' },
  { sec: 'cgroup_skb/egress', type: 'cgroup_skb', attach: 'cgroup_inet_egress' },
  { sec: 'cgroup/skb', type: 'cgroup_skb' },
  { sec: 'cgroup/sock_create', type: 'cgroup_sock', attach: 'cgroup_inet_sock_create' },
  { sec: 'cgroup/sock_release', type: 'cgroup_sock', attach: 'cgroup_inet_sock_release' },
  { sec: 'cgroup/sock', type: 'cgroup_sock', attach: 'cgroup_inet_sock_create' },
  { sec: 'cgroup/post_bind4', type: 'cgroup_sock', attach: 'cgroup_inet4_post_bind' },
  { sec: 'cgroup/post_bind6', type: 'cgroup_sock', attach: 'cgroup_inet6_post_bind' },
  { sec: 'cgroup/bind4', type: 'cgroup_sock_addr', attach: 'cgroup_inet4_bind' },
  { sec: 'cgroup/bind6', type: 'cgroup_sock_addr', attach: 'cgroup_inet6_bind' },
  { sec: 'cgroup/connect4', type: 'cgroup_sock_addr', attach: 'cgroup_inet4_connect' },
  { sec: 'cgroup/connect6', type: 'cgroup_sock_addr', attach: 'cgroup_inet6_connect' },
  { sec: 'cgroup/connect_unix', type: 'cgroup_sock_addr', attach: 'cgroup_unix_connect' },
  { sec: 'cgroup/sendmsg4', type: 'cgroup_sock_addr', attach: 'cgroup_udp4_sendmsg' },
  { sec: 'cgroup/sendmsg6', type: 'cgroup_sock_addr', attach: 'cgroup_udp6_sendmsg' },
  { sec: 'cgroup/sendmsg_unix', type: 'cgroup_sock_addr', attach: 'cgroup_unix_sendmsg' },
  { sec: 'cgroup/recvmsg4', type: 'cgroup_sock_addr', attach: 'cgroup_udp4_recvmsg' },
  { sec: 'cgroup/recvmsg6', type: 'cgroup_sock_addr', attach: 'cgroup_udp6_recvmsg' },
  { sec: 'cgroup/recvmsg_unix', type: 'cgroup_sock_addr', attach: 'cgroup_unix_recvmsg' },
  { sec: 'cgroup/getpeername4', type: 'cgroup_sock_addr', attach: 'cgroup_inet4_getpeername' },
  { sec: 'cgroup/getpeername6', type: 'cgroup_sock_addr', attach: 'cgroup_inet6_getpeername' },
  { sec: 'cgroup/getpeername_unix', type: 'cgroup_sock_addr', attach: 'cgroup_unix_getpeername' },
  { sec: 'cgroup/getsockname4', type: 'cgroup_sock_addr', attach: 'cgroup_inet4_getsockname' },
  { sec: 'cgroup/getsockname6', type: 'cgroup_sock_addr', attach: 'cgroup_inet6_getsockname' },
  { sec: 'cgroup/getsockname_unix', type: 'cgroup_sock_addr', attach: 'cgroup_unix_getsockname' },
  { sec: 'cgroup/sysctl', type: 'cgroup_sysctl', attach: 'cgroup_sysctl' },
  { sec: 'cgroup/getsockopt', type: 'cgroup_sockopt', attach: 'cgroup_getsockopt' },
  { sec: 'cgroup/setsockopt', type: 'cgroup_sockopt', attach: 'cgroup_setsockopt' },
  { sec: 'cgroup/dev', type: 'cgroup_device', attach: 'cgroup_device' },
  { sec: 'struct_ops.s/', type: 'struct_ops', flags: BPF_F_SLEEPABLE },
  { sec: 'struct_ops/', type: 'struct_ops' },
  { sec: 'struct_ops', type: 'struct_ops' },
  { sec: 'sk_lookup', type: 'sk_lookup', attach: 'sk_lookup' },
  { sec: 'netfilter', type: 'netfilter', attach: 'netfilter' },
];

export interface SectionProgram {
  type: ProgType;
  attachType: AttachType | undefined;
  /** What the section names after the prefix (`sys_enter`, `syscalls/sys_enter_openat`, a function). */
  attachTo: string | undefined;
  flags: number;
}

/** The program kind a section name stands for, or undefined when libbpf would not know it either. */
export function programForSection(section: string): SectionProgram | undefined {
  for (const d of DEFS) {
    const isPrefix = d.sec.endsWith('/');
    let attachTo: string | undefined;
    if (isPrefix) {
      if (!section.startsWith(d.sec)) continue;
      attachTo = section.slice(d.sec.length) || undefined;
    } else if (section === d.sec) {
      attachTo = undefined;
    } else if (section.startsWith(`${d.sec}/`) && !DEFS.some((o) => o.sec === section)) {
      // e.g. "xdp/foo", "socket/bar": an extra name libbpf tolerates
      attachTo = section.slice(d.sec.length + 1);
    } else continue;
    return {
      type: progTypes.toValue(d.type as never),
      attachType: d.attach ? attachTypes.toValue(d.attach as never) : undefined,
      attachTo,
      flags: d.flags ?? 0,
    };
  }
  return undefined;
}

/** Global data sections (`.data`, `.rodata`, `.bss` and their `.name` suffixed variants): each becomes an array map. */
export const DATA_SECTION = /^\.(data|rodata|bss)(\.|$)/;
