import {
  bpfFilterOptions,
  Defines,
  decodeTcObject,
  decodeXdpState,
  encodeAttrs,
  encodeMessage,
  encodeSetXdp,
  encodeTcmsg,
  getLinkXdp,
  Ifla,
  IflaXdp,
  InterfaceNotFoundError,
  ifIndex,
  ifName,
  NetlinkError,
  NlmsgerrAttr,
  nlS32,
  nlU8,
  nlU32,
  parseAttrs,
  parseError,
  parseMessages,
  Rtm,
  Tca,
  TcaBpf,
  tcHandle,
  tcInfo,
  XdpAttached,
} from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';

const le32 = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n, true);
  return b;
};

describe('netlink codec', () => {
  it('encodes attributes padded to 4 bytes, nested ones flagged, and parses them back', () => {
    const bytes = encodeAttrs([nlU8(7, 0xab), { type: 9, nested: [nlU32(1, 5), nlS32(2, -1)] }]);
    // u8: header 4 + 1 byte, padded to 8; nested: 4 + 2 × 8
    expect(bytes.length).toBe(8 + 20);
    expect([...bytes.subarray(0, 5)]).toEqual([5, 0, 7, 0, 0xab]);
    const [u8, nest] = parseAttrs(bytes);
    expect(u8).toMatchObject({ type: 7, nested: false });
    expect([...u8!.data]).toEqual([0xab]);
    expect(nest).toMatchObject({ type: 9, nested: true });
    const inner = parseAttrs(nest!.data);
    expect(inner.map((a) => a.type)).toEqual([1, 2]);
    expect(new DataView(inner[1]!.data.buffer, inner[1]!.data.byteOffset).getInt32(0, true)).toBe(-1);
  });

  it('refuses a truncated attribute or message', () => {
    expect(() => parseAttrs(Uint8Array.of(12, 0, 1, 0, 0, 0))).toThrow(RangeError);
    expect(() =>
      parseMessages(
        encodeMessage({ type: 16, flags: 0, seq: 1, payload: new Uint8Array(8) }).subarray(0, 20),
      ),
    ).toThrow(RangeError);
  });

  it('splits a datagram into messages with their headers', () => {
    const a = encodeMessage({ type: Rtm.NEWLINK, flags: 2, seq: 7, pid: 9, payload: Uint8Array.of(1, 2, 3) });
    const b = encodeMessage({ type: Defines.NLMSG_DONE, flags: 0, seq: 7, payload: new Uint8Array(4) });
    expect(a.length).toBe(20); // 16 + 3, padded
    const both = new Uint8Array(a.length + b.length);
    both.set(a);
    both.set(b, a.length);
    const [m1, m2] = parseMessages(both);
    expect(m1).toMatchObject({ type: Rtm.NEWLINK, flags: 2, seq: 7, pid: 9 });
    expect([...m1!.payload]).toEqual([1, 2, 3]);
    expect(m2!.type).toBe(Defines.NLMSG_DONE);
  });

  it('reads the errno and the extended ack of an error, capped or carrying the request', () => {
    const request = encodeMessage({ type: Rtm.SETLINK, flags: 5, seq: 3, payload: new Uint8Array(24) });
    const tlvs = encodeAttrs([
      { type: NlmsgerrAttr.MSG, data: new TextEncoder().encode('Active program does not match expected\0') },
      nlU32(NlmsgerrAttr.OFFS, 20),
    ]);
    // capped: errno, the request's header only, then the TLVs
    const capped = new Uint8Array([...le32(-17), ...request.subarray(0, 16), ...tlvs]);
    expect(parseError(capped, Defines.NLM_F_ACK_TLVS | Defines.NLM_F_CAPPED)).toEqual({
      errno: 17,
      message: 'Active program does not match expected',
      offset: 20,
    });
    // uncapped: the whole request comes back before the TLVs
    const whole = new Uint8Array([...le32(-22), ...request, ...tlvs]);
    expect(parseError(whole, Defines.NLM_F_ACK_TLVS).message).toBe('Active program does not match expected');
    // no TLVs: an ack, or an error without words
    expect(parseError(new Uint8Array([...le32(0), ...request.subarray(0, 16)]), 0)).toEqual({ errno: 0 });
  });

  it('encodes RTM_SETLINK IFLA_XDP and decodes the IFLA_XDP of a link', () => {
    const p = encodeSetXdp(3, { fd: 10, flags: Defines.XDP_FLAGS_REPLACE, expectedFd: 11 });
    expect(new DataView(p.buffer).getInt32(4, true)).toBe(3); // ifi_index
    const [xdp] = parseAttrs(p.subarray(16));
    expect(xdp).toMatchObject({ type: Ifla.XDP, nested: true });
    const inner = parseAttrs(xdp!.data).map((a) => [
      a.type,
      new DataView(a.data.buffer, a.data.byteOffset).getInt32(0, true),
    ]);
    expect(inner).toEqual([
      [IflaXdp.FD, 10],
      [IflaXdp.FLAGS, Defines.XDP_FLAGS_REPLACE],
      [IflaXdp.EXPECTED_FD, 11],
    ]);
    const reply = new Uint8Array([
      ...new Uint8Array(16),
      ...encodeAttrs([
        nlU32(Ifla.MTU, 1500),
        {
          type: Ifla.XDP,
          nested: [
            nlU8(IflaXdp.ATTACHED, XdpAttached.SKB),
            nlU32(IflaXdp.SKB_PROG_ID, 42),
            nlU32(IflaXdp.PROG_ID, 42),
          ],
        },
      ]),
    ]);
    expect(decodeXdpState(reply)).toEqual({
      attached: XdpAttached.SKB,
      progId: 42,
      skbProgId: 42,
      drvProgId: 0,
      hwProgId: 0,
    });
  });

  it('encodes a tcmsg with priority and protocol, and decodes a cls_bpf filter with its options', () => {
    expect(tcHandle(Defines.TC_H_CLSACT, Defines.TC_H_MIN_INGRESS)).toBe(0xfffffff2);
    expect(tcInfo(7, Defines.ETH_P_ALL)).toBe(0x00070300); // protocol in network byte order
    const msg = encodeTcmsg({
      ifindex: 5,
      handle: 0x42,
      parent: 0xfffffff3,
      info: tcInfo(7, Defines.ETH_P_IP),
    });
    expect(msg.length).toBe(20);
    const name = new TextEncoder().encode('drop\0');
    const reply = new Uint8Array([
      ...msg,
      ...encodeAttrs([
        { type: Tca.KIND, data: new TextEncoder().encode('bpf\0') },
        {
          type: Tca.OPTIONS,
          nested: [
            nlU32(TcaBpf.ID, 99),
            { type: TcaBpf.NAME, data: name },
            nlU32(TcaBpf.FLAGS, Defines.TCA_BPF_FLAG_ACT_DIRECT),
            { type: TcaBpf.TAG, data: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 0xff) },
          ],
        },
      ]),
    ]);
    const f = decodeTcObject(reply);
    expect(f).toMatchObject({
      ifindex: 5,
      handle: 0x42,
      parent: 0xfffffff3,
      kind: 'bpf',
      priority: 7,
      protocol: 0x800,
    });
    expect(bpfFilterOptions(f)).toEqual({ progId: 99, name: 'drop', flags: 1, tag: '01020304050607ff' });
    expect(bpfFilterOptions({ ...f, kind: 'u32' })).toBeUndefined();
    expect(() => decodeTcObject(new Uint8Array(8))).toThrow(RangeError);
  });
});

describe.skipIf(process.env.BPFKIT_SKIP_PRIVILEGED === '1')('interfaces and rtnetlink', () => {
  it('finds interfaces by name or index, and names a missing one', () => {
    expect(ifIndex('lo')).toBe(1);
    expect(ifIndex(1)).toBe(1);
    expect(ifName(1)).toBe('lo');
    expect(() => ifIndex('bpfkit-none0')).toThrow(InterfaceNotFoundError);
    expect(() => ifIndex('bpfkit-none0')).toThrow(/bpfkit-none0/);
    expect(() => ifIndex(0x7ffffff0)).toThrow(/index 2147483632/);
    expect(() => ifIndex('x'.repeat(16))).toThrow(TypeError);
  });

  it('reads the XDP state of lo over RTM_GETLINK', () => {
    expect(getLinkXdp('lo')).toMatchObject({ attached: XdpAttached.NONE, progId: 0 });
    expect(NetlinkError.prototype).toBeInstanceOf(Error);
  });
});
