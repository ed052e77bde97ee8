// rtnetlink over an AF_NETLINK socket: a small codec (messages and attributes, pure and tested
// without privileges) and a socket that sends one request and reads its answer, turning the
// kernel's error into a NetlinkError that carries the extended ack message.
import { Defines, Ifla, IflaXdp, NlmsgerrAttr, Rtm, structLayout } from './abi.generated.js';
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
