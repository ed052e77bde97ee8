// rtnetlink over an AF_NETLINK socket: a small codec (messages and attributes, pure and tested
// without privileges) and a socket that sends one request and reads its answer, turning the
// kernel's error into a NetlinkError that carries the extended ack message.
import { Defines, Ifla, IflaXdp, NlmsgerrAttr, Rtm, structLayout, Tca, TcaBpf } from './abi.generated.js';
import { BpfError } from './errors.js';
import { Fd } from './fd.js';
import { cBind, cRecv, cSend, cSetsockoptInt, cSocket, errno } from './ffi.js';
import { ifIndex } from './iface.js';
import { NativeBuffer } from './native.js';

const AF_NETLINK = 16;
const AF_UNSPEC = 0;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const SOL_NETLINK = 270;
const MSG_TRUNC = 0x20;
const NLMSG_HDRLEN = structLayout.nlmsghdr.$size[1];
const NLA_HDRLEN = structLayout.nlattr.$size[1];
const IFINFOMSG_LEN = structLayout.ifinfomsg.$size[1];
const NLMSGERR_LEN = structLayout.nlmsgerr.$size[1];
const TCMSG_LEN = structLayout.tcmsg.$size[1];
const RECV_SIZE = 32 * 1024;

const align4 = (n: number): number => (n + 3) & ~3;

// ---- the codec ------------------------------------------------------------------------------

/** One netlink attribute: its type (flags masked off), whether it is nested, and its payload. */
export interface NlAttr {
  type: number;
  nested: boolean;
  data: Uint8Array;
}

/** An attribute to encode: a payload, or (nested) a list of attributes. */
export type NlAttrSpec = { type: number; data: Uint8Array } | { type: number; nested: readonly NlAttrSpec[] };

export const nlU8 = (type: number, v: number): NlAttrSpec => ({ type, data: Uint8Array.of(v) });
export function nlU32(type: number, v: number): NlAttrSpec {
  const data = new Uint8Array(4);
  new DataView(data.buffer).setUint32(0, v >>> 0, true);
  return { type, data };
}
export function nlS32(type: number, v: number): NlAttrSpec {
  const data = new Uint8Array(4);
  new DataView(data.buffer).setInt32(0, v, true);
  return { type, data };
}

/** Encode attributes (each padded to 4 bytes; nested ones with NLA_F_NESTED). */
export function encodeAttrs(attrs: readonly NlAttrSpec[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const a of attrs) {
    const nested = 'nested' in a;
    const payload = nested ? encodeAttrs(a.nested) : a.data;
    const len = NLA_HDRLEN + payload.length;
    if (len > 0xffff) throw new RangeError(`netlink attribute ${a.type} is ${len} bytes (at most 65535)`);
    const out = new Uint8Array(align4(len));
    const v = new DataView(out.buffer);
    v.setUint16(0, len, true);
    v.setUint16(2, a.type | (nested ? Defines.NLA_F_NESTED : 0), true);
    out.set(payload, NLA_HDRLEN);
    parts.push(out);
    total += out.length;
  }
  const all = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return all;
}

/** Decode a run of attributes; a truncated one ends the run with a RangeError. */
export function parseAttrs(bytes: Uint8Array): NlAttr[] {
  const out: NlAttr[] = [];
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 0;
  while (o + NLA_HDRLEN <= bytes.length) {
    const len = v.getUint16(o, true);
    const type = v.getUint16(o + 2, true);
    if (len < NLA_HDRLEN || o + len > bytes.length)
      throw new RangeError(`netlink attribute at byte ${o} has length ${len} (${bytes.length - o} left)`);
    out.push({
      type: type & Defines.NLA_TYPE_MASK,
      nested: (type & Defines.NLA_F_NESTED) !== 0,
      data: bytes.subarray(o + NLA_HDRLEN, o + len),
    });
    o += align4(len);
  }
  return out;
}

/** A netlink message: the header fields and the payload after the header. */
export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  payload: Uint8Array;
}

/** Encode one message: the 16-byte header, then `payload` (padded to 4 bytes). */
export function encodeMessage(m: Omit<NlMessage, 'pid'> & { pid?: number }): Uint8Array {
  const len = NLMSG_HDRLEN + m.payload.length;
  const out = new Uint8Array(align4(len));
  const v = new DataView(out.buffer);
  const h = structLayout.nlmsghdr;
  v.setUint32(h.nlmsg_len[0], len, true);
  v.setUint16(h.nlmsg_type[0], m.type, true);
  v.setUint16(h.nlmsg_flags[0], m.flags, true);
  v.setUint32(h.nlmsg_seq[0], m.seq >>> 0, true);
  v.setUint32(h.nlmsg_pid[0], (m.pid ?? 0) >>> 0, true);
  out.set(m.payload, NLMSG_HDRLEN);
  return out;
}

/** Split a datagram into its messages. */
export function parseMessages(bytes: Uint8Array): NlMessage[] {
  const out: NlMessage[] = [];
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 0;
  while (o + NLMSG_HDRLEN <= bytes.length) {
    const len = v.getUint32(o, true);
    if (len < NLMSG_HDRLEN || o + len > bytes.length)
      throw new RangeError(`netlink message at byte ${o} has length ${len} (${bytes.length - o} left)`);
    out.push({
      type: v.getUint16(o + 4, true),
      flags: v.getUint16(o + 6, true),
      seq: v.getUint32(o + 8, true),
      pid: v.getUint32(o + 12, true),
      payload: bytes.subarray(o + NLMSG_HDRLEN, o + len),
    });
    o += align4(len);
  }
  return out;
}

/** An NLMSG_ERROR message's payload: the errno (0 for an ack) and, where sent, the extended ack. */
export interface NlError {
  errno: number;
  /** NLMSGERR_ATTR_MSG: the kernel's words for what went wrong. */
  message?: string;
  /** NLMSGERR_ATTR_OFFS: the byte offset in the request of the attribute at fault. */
  offset?: number;
}

/** Decode the payload of an NLMSG_ERROR message whose header had `flags`. */
export function parseError(payload: Uint8Array, flags: number): NlError {
  if (payload.length < 4) throw new RangeError('netlink error message too short');
  const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const out: NlError = { errno: Math.abs(v.getInt32(0, true)) };
  if (!(flags & Defines.NLM_F_ACK_TLVS)) return out;
  // The request's header follows, and its payload too unless the ack is capped.
  let o = NLMSGERR_LEN;
  if (!(flags & Defines.NLM_F_CAPPED) && payload.length >= NLMSGERR_LEN) o = 4 + align4(v.getUint32(4, true));
  if (o > payload.length) return out;
  for (const a of parseAttrs(payload.subarray(o))) {
    if (a.type === NlmsgerrAttr.MSG) {
      const end = a.data.indexOf(0);
      out.message = new TextDecoder().decode(end < 0 ? a.data : a.data.subarray(0, end));
    } else if (a.type === NlmsgerrAttr.OFFS && a.data.length >= 4) {
      out.offset = new DataView(a.data.buffer, a.data.byteOffset).getUint32(0, true);
    }
  }
  return out;
}

/** A `struct ifinfomsg` for interface `index`. */
export function encodeIfinfomsg(index: number, family = AF_UNSPEC): Uint8Array {
  const out = new Uint8Array(IFINFOMSG_LEN);
  const v = new DataView(out.buffer);
  v.setUint8(structLayout.ifinfomsg.ifi_family[0], family);
  v.setInt32(structLayout.ifinfomsg.ifi_index[0], index, true);
  return out;
}

// ---- errors and the socket ---------------------------------------------------------------------

/** A netlink request the kernel refused: errno as in BpfError, and the extended ack `message`. */
export class NetlinkError extends BpfError {
  override name = 'NetlinkError';
  /** The kernel's extended ack message (NLMSGERR_ATTR_MSG), when it sent one. */
  readonly extack: string | undefined;
  constructor(what: string, err: NlError, detail?: string) {
    super(what, err.errno, detail, err.message);
    this.extack = err.message;
  }
}

let nextSeq = 1;

/**
 * An rtnetlink (NETLINK_ROUTE) socket in the caller's network namespace, with extended acks
 * on. `request` sends one message and returns the answer's messages; the socket is blocking,
 * and the kernel answers a route request before `send` returns, so `recv` never waits for long.
 */
export class NetlinkSocket {
  readonly fd: Fd;
  #buf = new NativeBuffer(RECV_SIZE);

  constructor() {
    const fd = cSocket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, Defines.NETLINK_ROUTE);
    if (fd < 0) throw new BpfError('socket', errno(), 'AF_NETLINK, NETLINK_ROUTE');
    this.fd = new Fd(fd, 'netlink socket');
    try {
      using one = new NativeBuffer(4);
      one.view.setInt32(0, 1, true);
      // Extended acks (4.12+) and capped acks are optional: without them errors carry no message.
      cSetsockoptInt(fd, SOL_NETLINK, Defines.NETLINK_EXT_ACK, one.ptr, 4);
      cSetsockoptInt(fd, SOL_NETLINK, Defines.NETLINK_CAP_ACK, one.ptr, 4);
      using addr = new NativeBuffer(12); // struct sockaddr_nl: family, pad, pid 0 (the kernel picks), groups 0
      addr.view.setUint16(0, AF_NETLINK, true);
      if (cBind(fd, addr.ptr, 12) < 0) throw new BpfError('bind', errno(), 'AF_NETLINK');
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /**
   * Send one request (NLM_F_REQUEST is added, and NLM_F_ACK) and collect the answer: the
   * messages before the ack or NLMSG_DONE. A refusal throws {@link NetlinkError} named `what`.
   */
  request(type: number, flags: number, payload: Uint8Array, what: string, detail?: string): NlMessage[] {
    const seq = nextSeq;
    nextSeq = (nextSeq % 0xffffffff) + 1;
    const msg = encodeMessage({
      type,
      flags: flags | Defines.NLM_F_REQUEST | Defines.NLM_F_ACK,
      seq,
      payload,
    });
    {
      using out = NativeBuffer.from(msg);
      if (cSend(this.fd.value, out.ptr, msg.length, 0) < 0) throw new BpfError('send', errno(), what);
    }
    const got: NlMessage[] = [];
    for (;;) {
      const n = cRecv(this.fd.value, this.#buf.ptr, RECV_SIZE, MSG_TRUNC);
      if (n < 0) throw new BpfError('recv', errno(), what);
      if (n > RECV_SIZE) throw new RangeError(`netlink answer of ${n} bytes exceeds ${RECV_SIZE}`);
      for (const m of parseMessages(this.#buf.bytes.slice(0, n))) {
        if (m.seq !== seq) continue; // a late answer to an earlier request
        if (m.type === Defines.NLMSG_ERROR) {
          const err = parseError(m.payload, m.flags);
          if (err.errno !== 0) throw new NetlinkError(what, err, detail);
          return got;
        }
        if (m.type === Defines.NLMSG_DONE) return got;
        got.push(m);
      }
    }
  }

  close(): void {
    this.fd.close();
    this.#buf.free();
  }
  [Symbol.dispose](): void {
    this.close();
  }
}

// ---- rtnetlink: XDP -----------------------------------------------------------------------------

/** What RTM_SETLINK IFLA_XDP is asked: the program fd (-1 detaches), XDP_FLAGS_*, and the expected fd. */
export interface SetXdpArgs {
  fd: number;
  flags?: number;
  /** With XDP_FLAGS_REPLACE: act only if this program (an fd) is the one attached now. */
  expectedFd?: number;
}

/** The IFLA_XDP attributes of an interface: the attach mode (XdpAttached) and program ids. */
export interface XdpState {
  attached: number;
  progId: number;
  skbProgId: number;
  drvProgId: number;
  hwProgId: number;
}

/** The RTM_SETLINK payload that sets (or with fd -1 clears) the XDP program of interface `index`. */
export function encodeSetXdp(index: number, args: SetXdpArgs): Uint8Array {
  const nested: NlAttrSpec[] = [nlS32(IflaXdp.FD, args.fd)];
  if (args.flags) nested.push(nlU32(IflaXdp.FLAGS, args.flags));
  if (args.expectedFd !== undefined) nested.push(nlS32(IflaXdp.EXPECTED_FD, args.expectedFd));
  const attrs = encodeAttrs([{ type: Ifla.XDP, nested }]);
  const out = new Uint8Array(IFINFOMSG_LEN + attrs.length);
  out.set(encodeIfinfomsg(index));
  out.set(attrs, IFINFOMSG_LEN);
  return out;
}

/** Read the IFLA_XDP attributes out of an RTM_NEWLINK payload. */
export function decodeXdpState(payload: Uint8Array): XdpState {
  const state: XdpState = { attached: 0, progId: 0, skbProgId: 0, drvProgId: 0, hwProgId: 0 };
  const xdp = parseAttrs(payload.subarray(IFINFOMSG_LEN)).find((a) => a.type === Ifla.XDP);
  if (!xdp) return state;
  for (const a of parseAttrs(xdp.data)) {
    const v = new DataView(a.data.buffer, a.data.byteOffset, a.data.byteLength);
    if (a.type === IflaXdp.ATTACHED && a.data.length >= 1) state.attached = v.getUint8(0);
    else if (a.data.length < 4) continue;
    else if (a.type === IflaXdp.PROG_ID) state.progId = v.getUint32(0, true);
    else if (a.type === IflaXdp.SKB_PROG_ID) state.skbProgId = v.getUint32(0, true);
    else if (a.type === IflaXdp.DRV_PROG_ID) state.drvProgId = v.getUint32(0, true);
    else if (a.type === IflaXdp.HW_PROG_ID) state.hwProgId = v.getUint32(0, true);
  }
  return state;
}

/** Set or clear the XDP program of an interface (name or index) with RTM_SETLINK. */
export function setLinkXdp(iface: string | number, args: SetXdpArgs): void {
  const index = ifIndex(iface);
  using nl = new NetlinkSocket();
  nl.request(Rtm.SETLINK, 0, encodeSetXdp(index, args), 'RTM_SETLINK IFLA_XDP', `interface ${iface}`);
}

/** The XDP state of an interface (name or index), from RTM_GETLINK. */
export function getLinkXdp(iface: string | number): XdpState {
  const index = ifIndex(iface);
  using nl = new NetlinkSocket();
  const got = nl.request(Rtm.GETLINK, 0, encodeIfinfomsg(index), 'RTM_GETLINK', `interface ${iface}`);
  const link = got.find((m) => m.type === Rtm.NEWLINK);
  if (!link) throw new Error(`RTM_GETLINK for interface ${iface} returned no link`);
  return decodeXdpState(link.payload);
}

// ---- rtnetlink: traffic control (qdiscs and filters) -------------------------------------------

/** The `struct tcmsg` of a qdisc or filter request: interface, handle, parent and (filters) priority and protocol. */
export interface TcMsg {
  ifindex: number;
  handle: number;
  parent: number;
  /** Filters: the priority (upper 16 bits) and protocol in network byte order (lower 16); see {@link tcInfo}. */
  info: number;
}

/** A filter's `tcm_info`: its priority and its protocol (an ETH_P_* value, host byte order). */
export function tcInfo(priority: number, protocol: number): number {
  return ((priority << 16) | (((protocol & 0xff) << 8) | ((protocol >> 8) & 0xff))) >>> 0;
}

/** A handle `major:minor` (TC_H_MAKE). */
export const tcHandle = (major: number, minor: number): number =>
  ((major & Defines.TC_H_MAJ_MASK) | (minor & Defines.TC_H_MIN_MASK)) >>> 0;

/** Encode a `struct tcmsg` (family AF_UNSPEC). */
export function encodeTcmsg(m: TcMsg): Uint8Array {
  const out = new Uint8Array(TCMSG_LEN);
  const v = new DataView(out.buffer);
  const l = structLayout.tcmsg;
  v.setInt32(l.tcm_ifindex[0], m.ifindex, true);
  v.setUint32(l.tcm_handle[0], m.handle >>> 0, true);
  v.setUint32(l.tcm_parent[0], m.parent >>> 0, true);
  v.setUint32(l.tcm_info[0], m.info >>> 0, true);
  return out;
}

/** A qdisc or filter as the kernel reports it (RTM_NEWQDISC / RTM_NEWTFILTER). */
export interface TcObject extends TcMsg {
  /** TCA_KIND: `clsact`, `bpf`, … */
  kind: string;
  /** Filters: the priority and protocol (host byte order) out of `info`. */
  priority: number;
  protocol: number;
  /** The attributes nested in TCA_OPTIONS. */
  options: NlAttr[];
}

const cstr = (data: Uint8Array): string => {
  const end = data.indexOf(0);
  return new TextDecoder().decode(end < 0 ? data : data.subarray(0, end));
};
const nlStr = (type: number, s: string): NlAttrSpec => ({ type, data: new TextEncoder().encode(`${s}\0`) });

/** Decode a qdisc or filter message's payload. */
export function decodeTcObject(payload: Uint8Array): TcObject {
  if (payload.length < TCMSG_LEN) throw new RangeError('tcmsg too short');
  const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const l = structLayout.tcmsg;
  const info = v.getUint32(l.tcm_info[0], true);
  const out: TcObject = {
    ifindex: v.getInt32(l.tcm_ifindex[0], true),
    handle: v.getUint32(l.tcm_handle[0], true),
    parent: v.getUint32(l.tcm_parent[0], true),
    info,
    kind: '',
    priority: info >>> 16,
    protocol: ((info & 0xff) << 8) | ((info >> 8) & 0xff),
    options: [],
  };
  for (const a of parseAttrs(payload.subarray(TCMSG_LEN))) {
    if (a.type === Tca.KIND) out.kind = cstr(a.data);
    else if (a.type === Tca.OPTIONS) out.options = parseAttrs(a.data);
  }
  return out;
}

/** What a cls_bpf filter holds: the program's id and name, its flags and tag. */
export interface BpfFilterOptions {
  progId: number;
  name: string;
  /** TCA_BPF_FLAGS: TCA_BPF_FLAG_ACT_DIRECT for direct action. */
  flags: number;
  tag: string;
}

/** The cls_bpf options of a filter (`kind` 'bpf'), or undefined for another kind. */
export function bpfFilterOptions(f: TcObject): BpfFilterOptions | undefined {
  if (f.kind !== 'bpf') return undefined;
  const out: BpfFilterOptions = { progId: 0, name: '', flags: 0, tag: '' };
  for (const a of f.options) {
    const v = new DataView(a.data.buffer, a.data.byteOffset, a.data.byteLength);
    if (a.type === TcaBpf.NAME) out.name = cstr(a.data);
    else if (a.type === TcaBpf.TAG) out.tag = Buffer.from(a.data).toString('hex');
    else if (a.data.length < 4) continue;
    else if (a.type === TcaBpf.ID) out.progId = v.getUint32(0, true);
    else if (a.type === TcaBpf.FLAGS) out.flags = v.getUint32(0, true);
  }
  return out;
}

function tcPayload(m: TcMsg, attrs: readonly NlAttrSpec[]): Uint8Array {
  const a = encodeAttrs(attrs);
  const out = new Uint8Array(TCMSG_LEN + a.length);
  out.set(encodeTcmsg(m));
  out.set(a, TCMSG_LEN);
  return out;
}

/** The clsact qdisc's handle (ffff:0) and parent. */
const CLSACT = { handle: tcHandle(Defines.TC_H_CLSACT, 0), parent: Defines.TC_H_CLSACT };

/**
 * Add a clsact qdisc to an interface (RTM_NEWQDISC). Returns false, and changes nothing, when the
 * interface has one already; true when this call made it.
 */
export function addClsact(iface: string | number): boolean {
  const ifindex = ifIndex(iface);
  using nl = new NetlinkSocket();
  try {
    nl.request(
      Rtm.NEWQDISC,
      Defines.NLM_F_CREATE | Defines.NLM_F_EXCL,
      tcPayload({ ifindex, ...CLSACT, info: 0 }, [nlStr(Tca.KIND, 'clsact')]),
      'RTM_NEWQDISC clsact',
      `interface ${iface}`,
    );
    return true;
  } catch (e) {
    if (e instanceof NetlinkError && e.code === 'EEXIST' && hasClsact(ifindex)) return false;
    throw e;
  }
}

/** Remove the clsact qdisc of an interface (RTM_DELQDISC), and with it every filter it holds. */
export function deleteClsact(iface: string | number): void {
  const ifindex = ifIndex(iface);
  using nl = new NetlinkSocket();
  nl.request(
    Rtm.DELQDISC,
    0,
    tcPayload({ ifindex, ...CLSACT, info: 0 }, [nlStr(Tca.KIND, 'clsact')]),
    'RTM_DELQDISC clsact',
    `interface ${iface}`,
  );
}

/** The qdiscs of an interface (an RTM_GETQDISC dump, kept to that interface). */
export function listQdiscs(iface: string | number): TcObject[] {
  const ifindex = ifIndex(iface);
  using nl = new NetlinkSocket();
  const got = nl.request(
    Rtm.GETQDISC,
    Defines.NLM_F_DUMP,
    tcPayload({ ifindex, handle: 0, parent: 0, info: 0 }, []),
    'RTM_GETQDISC',
    `interface ${iface}`,
  );
  return got
    .filter((m) => m.type === Rtm.NEWQDISC)
    .map((m) => decodeTcObject(m.payload))
    .filter((q) => q.ifindex === ifindex);
}

/** Whether an interface has a clsact qdisc. */
export function hasClsact(iface: string | number): boolean {
  return listQdiscs(iface).some((q) => q.kind === 'clsact' && q.parent === CLSACT.parent);
}

/** A cls_bpf filter to add: where (parent, priority, handle; 0 lets the kernel choose) and the program. */
export interface BpfFilterSpec {
  parent: number;
  priority?: number;
  handle?: number;
  /** An ETH_P_* value; ETH_P_ALL when not given. */
  protocol?: number;
  progFd: number;
  /** TCA_BPF_NAME, as `tc filter show` prints it. */
  name: string;
  /** TCA_BPF_FLAGS: TCA_BPF_FLAG_ACT_DIRECT for direct action. */
  flags: number;
}

/**
 * Add a cls_bpf filter (RTM_NEWTFILTER with NLM_F_CREATE | NLM_F_EXCL, so an existing filter of
 * that priority and handle is never replaced: EEXIST). Returns the filter as the kernel made it
 * (NLM_F_ECHO), with the priority and handle it chose where none was given.
 */
export function addBpfFilter(iface: string | number, f: BpfFilterSpec): TcObject {
  const ifindex = ifIndex(iface);
  using nl = new NetlinkSocket();
  const got = nl.request(
    Rtm.NEWTFILTER,
    Defines.NLM_F_CREATE | Defines.NLM_F_EXCL | Defines.NLM_F_ECHO,
    tcPayload(
      {
        ifindex,
        handle: f.handle ?? 0,
        parent: f.parent,
        info: tcInfo(f.priority ?? 0, f.protocol ?? Defines.ETH_P_ALL),
      },
      [
        nlStr(Tca.KIND, 'bpf'),
        {
          type: Tca.OPTIONS,
          nested: [nlU32(TcaBpf.FD, f.progFd), nlStr(TcaBpf.NAME, f.name), nlU32(TcaBpf.FLAGS, f.flags)],
        },
      ],
    ),
    'RTM_NEWTFILTER bpf',
    `interface ${iface}`,
  );
  const made = got.find((m) => m.type === Rtm.NEWTFILTER);
  if (!made) throw new Error(`RTM_NEWTFILTER on interface ${iface} echoed no filter`);
  return decodeTcObject(made.payload);
}

/** Remove one filter, named by parent, priority, protocol and handle (RTM_DELTFILTER). */
export function deleteFilter(
  iface: string | number,
  f: { parent: number; priority: number; protocol: number; handle: number; kind: string },
): void {
  const ifindex = ifIndex(iface);
  using nl = new NetlinkSocket();
  nl.request(
    Rtm.DELTFILTER,
    0,
    tcPayload({ ifindex, handle: f.handle, parent: f.parent, info: tcInfo(f.priority, f.protocol) }, [
      nlStr(Tca.KIND, f.kind),
    ]),
    'RTM_DELTFILTER',
    `interface ${iface}`,
  );
}

/** The filters under `parent` on an interface (an RTM_GETTFILTER dump); none when it has no such qdisc. */
export function listFilters(iface: string | number, parent: number): TcObject[] {
  const ifindex = ifIndex(iface);
  using nl = new NetlinkSocket();
  let got: NlMessage[];
  try {
    got = nl.request(
      Rtm.GETTFILTER,
      Defines.NLM_F_DUMP,
      tcPayload({ ifindex, handle: 0, parent, info: 0 }, []),
      'RTM_GETTFILTER',
      `interface ${iface}`,
    );
  } catch (e) {
    if (e instanceof NetlinkError && e.code === 'EINVAL' && !hasClsact(ifindex)) return [];
    throw e;
  }
  // a filter's dump holds a message per priority chain (no handle) and one per filter
  return got
    .filter((m) => m.type === Rtm.NEWTFILTER)
    .map((m) => decodeTcObject(m.payload))
    .filter((f) => f.handle !== 0);
}
