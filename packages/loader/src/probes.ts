// Program-type and helper probes: can this kernel load programs of a type, may they call a
// helper? Each loads `r0 = 0; exit` (built with @bpfkit/asm), with the helper call when asked,
// and reads the verifier's answer; answers are kept in @bpfkit/sys's probe cache.
import { Builder, Class, encode, JmpOp, R0 } from '@bpfkit/asm';
import {
  AttachType,
  BpfError,
  cachedProbe,
  Defines,
  NativeBuffer,
  NotSupportedError,
  ProgType,
  type ProgTypeName,
  progLoad,
  progTypes,
} from '@bpfkit/sys';

/** The first Linux release with each program type. */
const PROG_SINCE: Partial<Record<string, string>> = {
  socket_filter: '3.19',
  kprobe: '4.1',
  sched_cls: '4.1',
  sched_act: '4.1',
  tracepoint: '4.7',
  xdp: '4.8',
  perf_event: '4.9',
  cgroup_skb: '4.10',
  cgroup_sock: '4.10',
  lwt_in: '4.10',
  lwt_out: '4.10',
  lwt_xmit: '4.10',
  sock_ops: '4.13',
  sk_skb: '4.14',
  cgroup_device: '4.15',
  sk_msg: '4.17',
  raw_tracepoint: '4.17',
  cgroup_sock_addr: '4.17',
  lwt_seg6local: '4.18',
  lirc_mode2: '4.18',
  sk_reuseport: '4.19',
  flow_dissector: '4.20',
  cgroup_sysctl: '5.2',
  raw_tracepoint_writable: '5.2',
  cgroup_sockopt: '5.3',
  tracing: '5.5',
  struct_ops: '5.6',
  ext: '5.6',
  lsm: '5.7',
  sk_lookup: '5.9',
  syscall: '5.14',
  netfilter: '6.4',
};

const LOG_SIZE = 64 * 1024;
/** `r0 = 0; exit`, with a helper call first when `helper` is given. */
function probeProgram(helper?: number): Uint8Array {
  const b = new Builder();
  // An id this build of @bpfkit/asm does not know is still worth asking the kernel about.
  if (helper !== undefined) b.raw({ code: Class.JMP | JmpOp.call, dst: 0, src: 0, off: 0, imm: helper });
  return encode(b.mov64(R0, 0).exit().assemble().insns);
}

/** Load a tiny program; returns the errno name (or undefined on success) and the verifier log. */
function tryLoad(
  progType: number,
  program: Uint8Array,
  extra: Partial<Parameters<typeof progLoad>[0]> = {},
): { code?: string; log: string } {
  using insns = NativeBuffer.from(program);
  using license = NativeBuffer.from('GPL');
  using log = new NativeBuffer(LOG_SIZE);
  try {
    progLoad({
      progType,
      insns: insns.ptr,
      insnCnt: insns.size / 8,
      license: license.ptr,
      logLevel: 1,
      logBuf: log.ptr,
      logSize: LOG_SIZE,
      ...extra,
    }).close();
    return { log: '' };
  } catch (e) {
    // EPERM answers "may I", not "does the kernel know": let the caller see it.
    if (!(e instanceof BpfError) || e.code === 'EPERM') throw e;
    const end = log.bytes.indexOf(0);
    return { code: e.code, log: Buffer.from(log.bytes.subarray(0, end < 0 ? LOG_SIZE : end)).toString() };
  }
}

/** Whether this kernel can load programs of `type`. Cached. */
export function haveProgType(type: ProgType | ProgTypeName): boolean {
  const t = progTypes.toValue(type);
  return cachedProbe(`prog:${t}`, () => {
    const insns = probeProgram();
    switch (t) {
      case ProgType.TRACING:
      case ProgType.EXT:
      case ProgType.LSM: {
        // These need a BTF target; the kernel knows the type when it complains about the target.
        const expectedAttachType =
          t === ProgType.LSM ? AttachType.LSM_MAC : t === ProgType.TRACING ? AttachType.TRACE_FENTRY : 0;
        const r = tryLoad(t, insns, { expectedAttachType, attachBtfId: 1 });
        return r.code === undefined || /attach_btf_id|btf_id/.test(r.log);
      }
      case ProgType.STRUCT_OPS: {
        const r = tryLoad(t, insns, { attachBtfId: 1 });
        return r.code === undefined || /struct_ops|attach_btf_id/.test(r.log) || r.code === 'ENOTSUPP';
      }
      default: {
        const extra: Partial<Parameters<typeof progLoad>[0]> = {};
        if (t === ProgType.CGROUP_SOCK_ADDR) extra.expectedAttachType = AttachType.CGROUP_INET4_CONNECT;
        if (t === ProgType.CGROUP_SOCKOPT) extra.expectedAttachType = AttachType.CGROUP_GETSOCKOPT;
        if (t === ProgType.SK_LOOKUP) extra.expectedAttachType = AttachType.SK_LOOKUP;
        if (t === ProgType.NETFILTER) extra.expectedAttachType = AttachType.NETFILTER;
        if (t === ProgType.SYSCALL) extra.progFlags = Defines.BPF_F_SLEEPABLE;
        const r = tryLoad(t, insns, extra);
        if (r.code === undefined) return true;
        if (r.code === 'EINVAL' && r.log.length > 0) return true; // rejected by the verifier, not for its type
        return false;
      }
    }
  });
}

export function requireProgType(type: ProgType | ProgTypeName): void {
  const t = progTypes.toValue(type);
  const name = progTypes.toName(t);
  if (!haveProgType(t)) throw new NotSupportedError(`program type ${name}`, PROG_SINCE[name]);
}

/** Whether programs of `progType` may call helper `helper` (a `Helper` id). Cached. */
export function haveHelper(progType: ProgType | ProgTypeName, helper: number): boolean {
  const t = progTypes.toValue(progType);
  return cachedProbe(`helper:${t}:${helper}`, () => {
    if (!haveProgType(t)) return false;
    const insns = probeProgram(helper);
    const extra: Partial<Parameters<typeof progLoad>[0]> = {};
    if (t === ProgType.CGROUP_SOCK_ADDR) extra.expectedAttachType = AttachType.CGROUP_INET4_CONNECT;
    const r = tryLoad(t, insns, extra);
    if (r.code === undefined) return true;
    return !/invalid func |unknown func |program of this type cannot use helper /.test(r.log);
  });
}

export function requireHelper(
  progType: ProgType | ProgTypeName,
  helper: number,
  helperName = `helper ${helper}`,
): void {
  if (!haveHelper(progType, helper))
    throw new NotSupportedError(
      `${helperName} for program type ${progTypes.toName(progTypes.toValue(progType))}`,
    );
}
