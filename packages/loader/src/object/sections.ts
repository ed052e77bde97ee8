// ELF section names → program type, expected attach type and flags, following libbpf's SEC()
// conventions (libbpf.c's section_defs table, checked against libbpf 1.1 and the current one).
//
// A pattern matches the way libbpf matches it:
//   'name'   the section is exactly `name`;
//   'name+'  the section is `name`, or `name/<target>`;
//   'name/'  the section starts with `name/` (a target is required).
// The first pattern that matches wins, so the order follows libbpf's. A section that starts with
// `?` is the same convention with the program left out of loading unless asked for (libbpf's
// autoload=false).
//
// Left out: fsession/fsession.s (newest libbpf, BPF_TRACE_FSESSION) because this kernel's uapi
// (sys's generated AttachType) has no such attach type.
import { type AttachType, attachTypes, Defines, type ProgType, progTypes } from '@bpfkit/sys';

const { BPF_F_SLEEPABLE: SLEEPABLE, BPF_F_XDP_HAS_FRAGS: FRAGS } = Defines;

/** [pattern, program type, expected attach type, program flags] */
type Def = readonly [pattern: string, type: string, attach?: string, flags?: number];

const DEFS: readonly Def[] = [
  ['socket', 'socket_filter'],
  ['sk_reuseport/migrate', 'sk_reuseport', 'sk_reuseport_select_or_migrate'],
  ['sk_reuseport', 'sk_reuseport', 'sk_reuseport_select'],
  // kprobes, uprobes, syscalls, USDT: all kprobe programs; the section says how to attach.
  ['kprobe+', 'kprobe'],
  ['uprobe+', 'kprobe'],
  ['uprobe.s+', 'kprobe', undefined, SLEEPABLE],
  ['kretprobe+', 'kprobe'],
  ['uretprobe+', 'kprobe'],
  ['uretprobe.s+', 'kprobe', undefined, SLEEPABLE],
  ['kprobe.multi+', 'kprobe', 'trace_kprobe_multi'],
  ['kretprobe.multi+', 'kprobe', 'trace_kprobe_multi'],
  ['kprobe.session+', 'kprobe', 'trace_kprobe_session'], // newer than libbpf 1.1
  ['uprobe.multi+', 'kprobe', 'trace_uprobe_multi'], // the uprobe.multi family: newer than 1.1
  ['uretprobe.multi+', 'kprobe', 'trace_uprobe_multi'],
  ['uprobe.session+', 'kprobe', 'trace_uprobe_session'],
  ['uprobe.multi.s+', 'kprobe', 'trace_uprobe_multi', SLEEPABLE],
  ['uretprobe.multi.s+', 'kprobe', 'trace_uprobe_multi', SLEEPABLE],
  ['uprobe.session.s+', 'kprobe', 'trace_uprobe_session', SLEEPABLE],
  ['ksyscall+', 'kprobe'],
  ['kretsyscall+', 'kprobe'],
  // As libbpf 1.1 (the reference): a plain kprobe program, no expected attach type. Newer
  // libbpf gives USDT programs trace_uprobe_multi where the kernel has uprobe_multi links; bpfkit
  // attaches each call site as a uprobe perf event, as 1.1 does, so none is set here.
  ['usdt+', 'kprobe'],
  ['usdt.s+', 'kprobe', undefined, SLEEPABLE], // newer than 1.1
  // tc: `tc/ingress`, `tc/egress` are aliases of tcx (newer than 1.1, as are tcx and netkit).
  ['tc/ingress', 'sched_cls', 'tcx_ingress'],
  ['tc/egress', 'sched_cls', 'tcx_egress'],
  ['tcx/ingress', 'sched_cls', 'tcx_ingress'],
  ['tcx/egress', 'sched_cls', 'tcx_egress'],
  ['tc', 'sched_cls'],
  ['classifier', 'sched_cls'],
  ['action', 'sched_act'],
  ['netkit/primary', 'sched_cls', 'netkit_primary'],
  ['netkit/peer', 'sched_cls', 'netkit_peer'],
  ['tracepoint+', 'tracepoint'],
  ['tp+', 'tracepoint'],
  ['raw_tracepoint+', 'raw_tracepoint'],
  ['raw_tp+', 'raw_tracepoint'],
  ['raw_tracepoint.w+', 'raw_tracepoint_writable'],
  ['raw_tp.w+', 'raw_tracepoint_writable'],
  // BTF-attached: the target is resolved to an attach_btf_id at load.
  ['tp_btf+', 'tracing', 'trace_raw_tp'],
  ['fentry+', 'tracing', 'trace_fentry'],
  ['fmod_ret+', 'tracing', 'modify_return'],
  ['fexit+', 'tracing', 'trace_fexit'],
  ['fentry.s+', 'tracing', 'trace_fentry', SLEEPABLE],
  ['fmod_ret.s+', 'tracing', 'modify_return', SLEEPABLE],
  ['fexit.s+', 'tracing', 'trace_fexit', SLEEPABLE],
  ['freplace+', 'ext'],
  ['lsm+', 'lsm', 'lsm_mac'],
  ['lsm.s+', 'lsm', 'lsm_mac', SLEEPABLE],
  ['lsm_cgroup+', 'lsm', 'lsm_cgroup'],
  ['iter+', 'tracing', 'trace_iter'],
  ['iter.s+', 'tracing', 'trace_iter', SLEEPABLE],
  ['syscall', 'syscall', undefined, SLEEPABLE],
  ['xdp.frags/devmap', 'xdp', 'xdp_devmap', FRAGS],
  ['xdp/devmap', 'xdp', 'xdp_devmap'],
  ['xdp.frags/cpumap', 'xdp', 'xdp_cpumap', FRAGS],
  ['xdp/cpumap', 'xdp', 'xdp_cpumap'],
  ['xdp.frags', 'xdp', 'xdp', FRAGS],
  ['xdp', 'xdp', 'xdp'],
  ['perf_event', 'perf_event'],
  ['lwt_in', 'lwt_in'],
  ['lwt_out', 'lwt_out'],
  ['lwt_xmit', 'lwt_xmit'],
  ['lwt_seg6local', 'lwt_seg6local'],
  ['sockops', 'sock_ops', 'cgroup_sock_ops'],
  ['sk_skb/stream_parser', 'sk_skb', 'sk_skb_stream_parser'],
  ['sk_skb/stream_verdict', 'sk_skb', 'sk_skb_stream_verdict'],
  ['sk_skb/verdict', 'sk_skb', 'sk_skb_verdict'], // newer libbpf
  ['sk_skb', 'sk_skb'],
  ['sk_msg', 'sk_msg', 'sk_msg_verdict'],
  ['lirc_mode2', 'lirc_mode2', 'lirc_mode2'],
  ['flow_dissector', 'flow_dissector', 'flow_dissector'],
  ['cgroup_skb/ingress', 'cgroup_skb', 'cgroup_inet_ingress'],
  ['cgroup_skb/egress', 'cgroup_skb', 'cgroup_inet_egress'],
  ['cgroup/skb', 'cgroup_skb'],
  ['cgroup/sock_create', 'cgroup_sock', 'cgroup_inet_sock_create'],
  ['cgroup/sock_release', 'cgroup_sock', 'cgroup_inet_sock_release'],
  ['cgroup/sock', 'cgroup_sock', 'cgroup_inet_sock_create'],
  ['cgroup/post_bind4', 'cgroup_sock', 'cgroup_inet4_post_bind'],
  ['cgroup/post_bind6', 'cgroup_sock', 'cgroup_inet6_post_bind'],
  ['cgroup/bind4', 'cgroup_sock_addr', 'cgroup_inet4_bind'],
  ['cgroup/bind6', 'cgroup_sock_addr', 'cgroup_inet6_bind'],
  ['cgroup/connect4', 'cgroup_sock_addr', 'cgroup_inet4_connect'],
  ['cgroup/connect6', 'cgroup_sock_addr', 'cgroup_inet6_connect'],
  ['cgroup/connect_unix', 'cgroup_sock_addr', 'cgroup_unix_connect'], // the *_unix ones: newer than 1.1
  ['cgroup/sendmsg4', 'cgroup_sock_addr', 'cgroup_udp4_sendmsg'],
  ['cgroup/sendmsg6', 'cgroup_sock_addr', 'cgroup_udp6_sendmsg'],
  ['cgroup/sendmsg_unix', 'cgroup_sock_addr', 'cgroup_unix_sendmsg'],
  ['cgroup/recvmsg4', 'cgroup_sock_addr', 'cgroup_udp4_recvmsg'],
  ['cgroup/recvmsg6', 'cgroup_sock_addr', 'cgroup_udp6_recvmsg'],
  ['cgroup/recvmsg_unix', 'cgroup_sock_addr', 'cgroup_unix_recvmsg'],
  ['cgroup/getpeername4', 'cgroup_sock_addr', 'cgroup_inet4_getpeername'],
  ['cgroup/getpeername6', 'cgroup_sock_addr', 'cgroup_inet6_getpeername'],
  ['cgroup/getpeername_unix', 'cgroup_sock_addr', 'cgroup_unix_getpeername'],
  ['cgroup/getsockname4', 'cgroup_sock_addr', 'cgroup_inet4_getsockname'],
  ['cgroup/getsockname6', 'cgroup_sock_addr', 'cgroup_inet6_getsockname'],
  ['cgroup/getsockname_unix', 'cgroup_sock_addr', 'cgroup_unix_getsockname'],
  ['cgroup/sysctl', 'cgroup_sysctl', 'cgroup_sysctl'],
  ['cgroup/getsockopt', 'cgroup_sockopt', 'cgroup_getsockopt'],
  ['cgroup/setsockopt', 'cgroup_sockopt', 'cgroup_setsockopt'],
  ['cgroup/dev', 'cgroup_device', 'cgroup_device'],
  // struct_ops: the attach type is the member's index and the BTF id the struct's, both from the
  // `.struct_ops` map that points at the program, not from the section.
  ['struct_ops+', 'struct_ops'],
  ['struct_ops.s+', 'struct_ops', undefined, SLEEPABLE],
  ['sk_lookup', 'sk_lookup', 'sk_lookup'],
  ['netfilter', 'netfilter', 'netfilter'], // newer than 1.1
];

export interface SectionProgram {
  type: ProgType;
  attachType: AttachType | undefined;
  /** What the section names after the pattern's `/` (`sys_enter`, `syscalls/sys_enter_openat`, a function). */
  attachTo: string | undefined;
  flags: number;
  /** False for a `?`-prefixed section: the program loads only when asked for. */
  autoload: boolean;
}

/** The target after `pattern` in `section`, '' when matched without one, undefined when it does not match. */
function match(pattern: string, section: string): string | undefined {
  const last = pattern[pattern.length - 1];
  if (last === '/') return section.startsWith(pattern) ? section.slice(pattern.length) : undefined;
  if (last === '+') {
    const base = pattern.slice(0, -1);
    if (section === base) return '';
    return section.startsWith(`${base}/`) ? section.slice(base.length + 1) : undefined;
  }
  return section === pattern ? '' : undefined;
}

/**
 * The program kind a section name stands for, or undefined when libbpf would not know it
 * either. A leading `?` is accepted and gives `autoload: false`.
 */
export function programForSection(section: string): SectionProgram | undefined {
  const autoload = !section.startsWith('?');
  const name = autoload ? section : section.slice(1);
  for (const [pattern, type, attach, flags] of DEFS) {
    const target = match(pattern, name);
    if (target === undefined) continue;
    return {
      type: progTypes.toValue(type as never),
      attachType: attach ? attachTypes.toValue(attach as never) : undefined,
      attachTo: target || undefined,
      flags: flags ?? 0,
      autoload,
    };
  }
  return undefined;
}

/** The section patterns this loader knows, in libbpf's notation (`name`, `name+`, `name/`). */
export const SECTION_PATTERNS: readonly string[] = DEFS.map((d) => d[0]);

/** A program whose section names no program type, asked to load: libbpf fails it the same way. */
export class UnknownSectionError extends TypeError {
  override name = 'UnknownSectionError';
  constructor(
    readonly program: string,
    readonly section: string,
  ) {
    super(
      `program '${program}' is in section '${section}', which names no program type (give it one with programOptions.${program}.type, or leave it out with the programs option)`,
    );
  }
}

/** Global data sections (`.data`, `.rodata`, `.bss` and their `.name` suffixed variants): each becomes an array map. */
export const DATA_SECTION = /^\.(data|rodata|bss)(\.|$)/;
