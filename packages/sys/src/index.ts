/**
 * @bpfkit/sys — the raw bpf(2) ABI for Node.js.
 *
 * - `bpf(cmd, attr)` and a typed function per command (`mapCreate`, `progLoad`, `linkCreate`, ...)
 * - generated kernel constants (`BpfCmd`, `MapType`, `ProgType`, `AttachType`, `Helper`, ...) and layouts
 * - `Fd`, the single owner of a kernel fd; `BpfError` / `NotSupportedError`
 * - introspection (`mapInfo`, `progIds`, `mapFdById`, ...), feature probes, and the other syscalls
 *   the stack needs (perf_event_open, mmap, epoll, ioctl, statfs, mount, rlimit, rtnetlink, setns)
 *
 * @packageDocumentation
 */
export * from './abi.generated.js';
export {
  type AttrArgs,
  type AttrFamily,
  type AttrValue,
  bpf,
  bpfCommand,
  readField,
  readLastAttr,
  writeField,
} from './attr.js';
export * from './commands.js';
export { ElemOps } from './elem.js';
export {
  BpfError,
  ClosedError,
  commandError,
  errnoName,
  kernelOlderThan,
  kernelVersion,
  NotSupportedError,
} from './errors.js';
export { Fd, type FdLike, fdNumber, finalizedFds, type HasFd } from './fd.js';
export type { Ptr } from './ffi.js';
export { InterfaceNotFoundError, ifIndex, ifName } from './iface.js';
export * from './info.js';
export { removeMemlockLimit, setAutoMemlock } from './memlock.js';
export { cgroup2Mount, type Mount, mounts } from './mounts.js';
export {
  type AttachTypeName,
  attachTypes,
  type LinkTypeName,
  linkTypes,
  type MapTypeName,
  mapTypes,
  type ProgTypeName,
  progTypes,
} from './names.js';
export { NativeBuffer } from './native.js';
export {
  addBpfFilter,
  addClsact,
  type BpfFilterOptions,
  type BpfFilterSpec,
  bpfFilterOptions,
  decodeTcObject,
  decodeXdpState,
  deleteClsact,
  deleteFilter,
  encodeAttrs,
  encodeIfinfomsg,
  encodeMessage,
  encodeSetXdp,
  encodeTcmsg,
  getLinkXdp,
  hasClsact,
  listFilters,
  listQdiscs,
  NetlinkError,
  NetlinkSocket,
  type NlAttr,
  type NlAttrSpec,
  type NlError,
  type NlMessage,
  nlS32,
  nlU8,
  nlU32,
  parseAttrs,
  parseError,
  parseMessages,
  type SetXdpArgs,
  setLinkXdp,
  type TcMsg,
  type TcObject,
  tcHandle,
  tcInfo,
  type XdpState,
} from './netlink.js';
export { Netns, withNetns } from './netns.js';
export { intOption, oneOf } from './options.js';
export * from './os.js';
export { Readiness } from './poll.js';
export { cachedProbe, NOT_SUPPORTED_CODES } from './probes.js';
export { withSignalsBlocked } from './signals.js';
