/**
 * @bpfkit/link — every way to attach an eBPF program, one file per hook, each returning an
 * {@link Attachment} (`detach()`, dispose) and, where the kernel makes one, a {@link Link}
 * (`info`, `update(program)`, pinnable).
 *
 * ```ts
 * import { attachTracepoint } from '@bpfkit/link';
 * using link = attachTracepoint(coll.program('on_exec'), 'sched', 'sched_process_exec');
 * ```
 * @packageDocumentation
 */
export {
  type AttachCollectionOptions,
  AttachedCollection,
  attachCollection,
} from './attach-collection.js';
export {
  binarySymbols,
  fileOffset,
  ldSoCache,
  matchSymbols,
  resolveBinary,
  SymbolNotFoundError,
  symbolOffsets,
} from './binaries.js';
export {
  attachCgroup,
  CGROUP_ATTACH_TYPES,
  type CgroupAttachMode,
  CgroupAttachment,
  type CgroupAttachOptions,
  type CgroupQuery,
  type CgroupTarget,
  cgroupPath,
  cgroupProgType,
  type LegacyFlag,
  openCgroup,
  queryCgroup,
} from './cgroup.js';
export {
  type EventTarget,
  openHardware,
  openSoftware,
  openTracepoint,
  openUprobe,
  type SamplingOptions,
  symbolOffset,
  type UprobeOptions,
} from './events.js';
export {
  attachIter,
  BpfIterator,
  type CgroupIterOrderName,
  IterLink,
  type IterOptions,
} from './iter.js';
export {
  attachKprobe,
  attachKsyscall,
  type KprobeAttachOptions,
  type KprobeEvent,
  KprobeLink,
  type KprobeOptions,
  type KprobeVia,
  kprobesNotSupported,
  openKprobe,
} from './kprobe.js';
export {
  attachKprobeMulti,
  attachKprobeSession,
  type KprobeMultiOptions,
  resolveKprobePattern,
} from './kprobe-multi.js';
export {
  availableFilterFunctions,
  closeNames,
  globPattern,
  kernelFunctions,
  UnknownFunctionError,
  unknownFunction,
} from './ksyms.js';
export { type AttachMode, type Attachment, Link, linkOrLegacy, linkUnsupported } from './link.js';
export {
  attachNetfilter,
  type NetfilterFamily,
  type NetfilterHook,
  type NetfilterOptions,
  NfInetHook,
  NfIpPriority,
  NfVerdict,
} from './netfilter.js';
export {
  attachFlowDissector,
  attachSkLookup,
  FlowDissectorAttachment,
  type NetnsTarget,
  queryNetns,
} from './netns.js';
export {
  attachPerfEvent,
  attachTracepoint,
  attachUprobe,
  type PerfAttachMode,
  PerfEventLink,
} from './perf-event.js';
export {
  CAPABILITIES,
  type CapabilityName,
  effectiveCapabilities,
  explainRefusal,
  isRefusal,
  refusalHint,
} from './permissions.js';
export { attachRawTracepoint } from './raw-tracepoint.js';
export { attachSocketFilter, SocketFilter, type SocketLike } from './socket-filter.js';
export { attachSockMap, SockMapAttachment, type SockMapAttachType } from './sockmap.js';
export { StructOps, type StructOpsSpec, structOpsTarget } from './struct-ops.js';
export {
  attachNetkit,
  attachTc,
  NetkitAction,
  type NetkitOptions,
  type NetkitSide,
  queryNetkit,
  queryTc,
  type TcAnchor,
  type TcAttachVia,
  type TcDirection,
  TcFilterAttachment,
  type TcFilterInfo,
  type TcOptions,
  type TcQuery,
  TcxAction,
} from './tc.js';
export {
  addDynamicEvent,
  DynamicEvent,
  removeLeftoverEvents,
  tracefsRoot,
  tracepointId,
} from './tracefs.js';
export { attachFreplace, attachTracing } from './tracing.js';
export {
  attachUprobeMulti,
  attachUprobeSession,
  resolveUprobePattern,
  type UprobeMultiOptions,
} from './uprobe-multi.js';
export {
  attachUsdt,
  encodeUsdtSpec,
  parseUsdtArg,
  USDT_MAX_ARGS,
  USDT_SPEC_SIZE,
  type UsdtArgSpec,
  UsdtArgType,
  UsdtAttachment,
  type UsdtOptions,
  type UsdtProbe,
  UsdtProbeNotFoundError,
  usdtProbes,
} from './usdt.js';
export {
  attachXdp,
  queryXdp,
  XdpAction,
  type XdpAttachment,
  type XdpAttachVia,
  type XdpMode,
  XdpNetlinkAttachment,
  type XdpOptions,
  type XdpQuery,
} from './xdp.js';
