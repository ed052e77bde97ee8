// Feature probes: does this kernel support a map type, program type or helper? Each probe
// creates the smallest object that answers, closes it, and caches the answer per process.
import { AttachType, Defines, MapFlags, MapType, ProgType } from './abi.generated.js';
import { btfLoad, mapCreate, progLoad } from './commands.js';
import { BpfError, NotSupportedError } from './errors.js';
import type { Fd } from './fd.js';
import { type MapTypeName, mapTypes, type ProgTypeName, progTypes } from './names.js';
import { NativeBuffer } from './native.js';
import { pageSize } from './os.js';

/** The first Linux release with each map type (as documented by the kernel and libbpf). */
const MAP_SINCE: Partial<Record<string, string>> = {
  hash: '3.19',
  array: '3.19',
  prog_array: '4.2',
  perf_event_array: '4.3',
  percpu_hash: '4.6',
  percpu_array: '4.6',
  stack_trace: '4.6',
  cgroup_array: '4.8',
  lru_hash: '4.10',
  lru_percpu_hash: '4.10',
  lpm_trie: '4.11',
  array_of_maps: '4.12',
  hash_of_maps: '4.12',
  devmap: '4.14',
  sockmap: '4.14',
  cpumap: '4.15',
  xskmap: '4.18',
  sockhash: '4.18',
  cgroup_storage: '4.19',
  reuseport_sockarray: '4.19',
  percpu_cgroup_storage: '4.20',
  queue: '4.20',
  stack: '4.20',
  sk_storage: '5.2',
  devmap_hash: '5.4',
  struct_ops: '5.6',
  ringbuf: '5.8',
  inode_storage: '5.10',
  task_storage: '5.11',
  bloom_filter: '5.16',
  user_ringbuf: '6.1',
  cgrp_storage: '6.2',
  arena: '6.9',
};
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

const NOT_SUPPORTED = new Set(['EINVAL', 'E2BIG', 'ENOTSUPP', 'EOPNOTSUPP']);
const cache = new Map<string, boolean>();

function cached(key: string, probe: () => boolean): boolean {
  let v = cache.get(key);
  if (v === undefined) {
    v = probe();
    cache.set(key, v);
  }
  return v;
}

/** A minimal BTF blob with one type, `int` (id 1): enough for maps that insist on BTF. */
function intBtf(): Fd {
  const strings = new TextEncoder().encode('\0int\0');
  const types = new DataView(new ArrayBuffer(16));
  types.setUint32(0, 1, true); // name_off "int"
  types.setUint32(4, 1 << 24, true); // kind INT
  types.setUint32(8, 4, true); // size
  types.setUint32(12, (1 << 24) | 32, true); // signed, 32 bits
  const blob = new NativeBuffer(24 + 16 + strings.length);
  const h = blob.view;
  h.setUint16(0, 0xeb9f, true);
  h.setUint8(2, 1);
  h.setUint32(4, 24, true);
  h.setUint32(8, 0, true);
  h.setUint32(12, 16, true);
  h.setUint32(16, 16, true);
  h.setUint32(20, strings.length, true);
  blob.bytes.set(new Uint8Array(types.buffer), 24);
  blob.bytes.set(strings, 40);
  try {
    return btfLoad({ btf: blob.ptr, btfSize: blob.size });
  } finally {
    blob.free();
  }
}

function tryCreate(args: Parameters<typeof mapCreate>[0]): boolean {
  try {
    mapCreate(args).close();
    return true;
  } catch (e) {
    if (e instanceof BpfError && NOT_SUPPORTED.has(e.code)) return false;
    throw e;
  }
}

/** Whether this kernel can create maps of `type`. Cached. */
export function haveMapType(type: MapType | MapTypeName): boolean {
  const t = mapTypes.toValue(type);
  return cached(`map:${t}`, () => {
    const base = { mapType: t, keySize: 4, valueSize: 4, maxEntries: 1 };
    switch (t) {
      case MapType.STACK_TRACE:
        return tryCreate({ ...base, valueSize: 8 });
      case MapType.LPM_TRIE:
        return tryCreate({ ...base, keySize: 8, mapFlags: MapFlags.NO_PREALLOC });
      case MapType.QUEUE:
      case MapType.STACK:
      case MapType.BLOOM_FILTER:
        return tryCreate({ ...base, keySize: 0 });
      case MapType.RINGBUF:
      case MapType.USER_RINGBUF:
        return tryCreate({ ...base, keySize: 0, valueSize: 0, maxEntries: pageSize });
      case MapType.ARENA:
        return tryCreate({ ...base, keySize: 0, valueSize: 0, mapFlags: MapFlags.MMAPABLE });
      case MapType.CGROUP_STORAGE:
      case MapType.PERCPU_CGROUP_STORAGE:
        return tryCreate({ ...base, keySize: 8, maxEntries: 0 });
      case MapType.ARRAY_OF_MAPS:
      case MapType.HASH_OF_MAPS: {
        using inner = mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 });
        return tryCreate({ ...base, innerMapFd: inner.value });
      }
      case MapType.SK_STORAGE:
      case MapType.INODE_STORAGE:
      case MapType.TASK_STORAGE:
      case MapType.CGRP_STORAGE: {
        using btf = intBtf();
        return tryCreate({
          ...base,
          maxEntries: 0,
          mapFlags: MapFlags.NO_PREALLOC,
          btfFd: btf.value,
          btfKeyTypeId: 1,
          btfValueTypeId: 1,
        });
      }
      case MapType.STRUCT_OPS:
        // Needs a struct_ops type from vmlinux BTF; the kernel knows the map type when it
        // complains about the value type (EINVAL/ENOTSUPP) rather than the map type. Without
        // BTF, a kernel that knows struct_ops answers ENOTSUPP, one that does not answers EINVAL.
        try {
          mapCreate({ ...base, btfVmlinuxValueTypeId: 1 }).close();
          return true;
        } catch (e) {
          if (e instanceof BpfError && e.code === 'ENOTSUPP') return true;
          if (e instanceof BpfError && NOT_SUPPORTED.has(e.code)) return false;
          throw e;
        }
      default:
        return tryCreate(base);
    }
  });
}

/** Throws {@link NotSupportedError} naming the map type unless the kernel has it. */
export function requireMapType(type: MapType | MapTypeName): void {
  const t = mapTypes.toValue(type);
  const name = mapTypes.toName(t);
  if (!haveMapType(t)) throw new NotSupportedError(`map type ${name}`, MAP_SINCE[name]);
}

const LOG_SIZE = 64 * 1024;
/** One raw instruction: opcode, registers byte (src << 4 | dst), offset, immediate. */
export type RawInsn = [code: number, regs: number, off: number, imm: number];

/** Encode raw instructions into native memory (8 bytes each). The full assembler is @bpfkit/asm. */
export const encodeRawInsns = (...insns: RawInsn[]): NativeBuffer => {
  const buf = new NativeBuffer(insns.length * 8);
  insns.forEach(([code, regs, off, imm], i) => {
    buf.view.setUint8(i * 8, code);
    buf.view.setUint8(i * 8 + 1, regs);
    buf.view.setInt16(i * 8 + 2, off, true);
    buf.view.setInt32(i * 8 + 4, imm, true);
  });
  return buf;
};
const MOV64_R0_0: RawInsn = [Defines.BPF_ALU64 | Defines.BPF_MOV | Defines.BPF_K, 0, 0, 0];
const EXIT: RawInsn = [Defines.BPF_JMP | Defines.BPF_EXIT, 0, 0, 0];

/** Load a tiny program; returns the errno name (or undefined on success) and the verifier log. */
function tryLoad(
  progType: number,
  insns: NativeBuffer,
  extra: Partial<Parameters<typeof progLoad>[0]> = {},
): { code?: string; log: string } {
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
  return cached(`prog:${t}`, () => {
    using insns = encodeRawInsns(MOV64_R0_0, EXIT);
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
  return cached(`helper:${t}:${helper}`, () => {
    if (!haveProgType(t)) return false;
    using insns = encodeRawInsns([Defines.BPF_JMP | Defines.BPF_CALL, 0, 0, helper], MOV64_R0_0, EXIT);
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
