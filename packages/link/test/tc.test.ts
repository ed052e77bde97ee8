// TC on a veth pair across two network namespaces this file makes (and removes): tcx programs on
// ingress and egress, in the order before/after give (each one appends its number to a trace in a
// map as the datagram passes), and a legacy cls_bpf filter under clsact that drops chosen
// datagrams; the receiver in the other namespace must see exactly the others. Then a netkit pair
// (6.7+; made with our own rtnetlink, as Debian 12's iproute2 cannot) across two namespaces:
// netkit/primary and netkit/peer programs drop chosen datagrams each way.
import { execFileSync } from 'node:child_process';
import { Builder, R0, R1, R2, R4, R10, reg } from '@bpfkit/asm';
import {
  attachNetkit,
  attachTc,
  Link,
  NetkitAction,
  queryNetkit,
  queryTc,
  TcFilterAttachment,
  TcxAction,
} from '@bpfkit/link';
import { Program } from '@bpfkit/loader';
import { BpfMap, u32, u64 } from '@bpfkit/maps';
import {
  AttachType,
  addClsact,
  BpfError,
  deleteClsact,
  hasClsact,
  ifIndex,
  kernelOlderThan,
  NetlinkError,
  withNetns,
} from '@bpfkit/sys';
import { afterAll, describe, expect, it } from 'vitest';
import { errorOf } from '../../../tools/testing/features.js';
import {
  dropExchange,
  netkitPair,
  ourNamespaces,
  removeLeftovers,
  udpReceiver,
  udpSend,
  vethPair,
} from '../../../tools/testing/netns.js';
import { addToSlot0, matchUdp } from '../../../tools/testing/programs.js';

const PORT = 4792;
const SKB_DATA = 76; // offsetof(struct __sk_buff, data)
const SKB_DATA_END = 80;
const TC_ACT_OK = 0; // a cls_bpf filter in direct-action mode answers with TC_ACT_*: OK and SHOT
const TC_ACT_SHOT = 2; // share tcx's PASS and DROP numbers

/** Jump to 'other' unless the packet is an IPv4 UDP datagram to PORT; leaves its first payload byte in r4. */
const matchDatagram = (b: Builder): Builder =>
  matchUdp(b, { dataOff: SKB_DATA, dataEndOff: SKB_DATA_END, port: PORT, other: 'other' });

/** sched_cls: on our datagrams, trace = trace << 4 | n; returns `ret` for every packet. */
function tracer(trace: BpfMap<number, bigint>, n: number, ret: number = TcxAction.NEXT): Program {
  const p = matchDatagram(new Builder());
  p.st('w', R10, -4, 0)
    .ldMap(R1, 'trace')
    .mov64(R2, reg(R10))
    .add64(R2, -4)
    .call('map_lookup_elem')
    .jeq(R0, 0, 'other')
    .ldx('dw', R1, R0, 0)
    .lsh64(R1, 4)
    .or64(R1, n)
    .stx('dw', R0, 0, R1)
    .label('other')
    .mov64(R0, ret)
    .exit();
  return Program.load({
    type: 'sched_cls',
    license: 'GPL',
    name: `trace${n}`,
    instructions: p,
    maps: { trace },
  });
}

/** sched_cls: drop our datagrams whose payload starts with 'D' (`drop`), counting them; `pass` for the rest. */
function dropper(drops: BpfMap<number, bigint>, drop: number, pass: number): Program {
  const b = matchDatagram(new Builder()).jne(R4, 'D'.charCodeAt(0), 'other');
  addToSlot0(b, 'drops', 1, 'dw', 'drop')
    .label('drop')
    .mov64(R0, drop)
    .exit()
    .label('other')
    .mov64(R0, pass)
    .exit();
  return Program.load({
    type: 'sched_cls',
    license: 'GPL',
    name: 'dropper',
    instructions: b,
    maps: { drops },
  });
}

afterAll(() => {
  // every test removes its namespaces itself; one that timed out is cleaned up here, and fails
  expect(ourNamespaces()).toEqual([]);
  expect(removeLeftovers()).toEqual([]);
});

type Net = Pick<ReturnType<typeof vethPair>, 'a' | 'b'>;
const u64map = () => BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 1 });

/** Send one datagram from a to b and wait for it: the trace its passage left. */
async function traceOne(net: Net, trace: BpfMap<number, bigint>, tag: string): Promise<string> {
  trace.set(0, 0n);
  await using rx = await udpReceiver(net.b.name, net.b.addr, PORT);
  udpSend(net.a.name, net.b.addr, PORT, [`P-${tag}`]);
  await rx.until(() => rx.got.length >= 1);
  return (trace.get(0) ?? 0n).toString(16);
}

const exchange = (net: Net, drops: BpfMap<number, bigint>, tag: string) =>
  dropExchange(net, drops, PORT, tag);

/** Send drop and pass datagrams from a to b with nothing attached: all arrive, none is counted. */
async function passAll(net: Net, drops: BpfMap<number, bigint>, tag: string) {
  await using rx = await udpReceiver(net.b.name, net.b.addr, PORT);
  const before = drops.get(0) ?? 0n;
  udpSend(net.a.name, net.b.addr, PORT, [`D1-${tag}`, `P1-${tag}`]);
  await rx.until(() => rx.got.length >= 2);
  return { got: [...rx.got].sort(), dropped: (drops.get(0) ?? 0n) - before };
}

const tcShow = (ns: string, ...args: string[]): string =>
  execFileSync('ip', ['netns', 'exec', ns, 'tc', ...args], { encoding: 'utf8' });

describe.skipIf(process.env.BPFKIT_SKIP_PRIVILEGED === '1')('tcx links on a veth pair', () => {
  it('runs ingress programs in the order before/after give, checks the revision, and detaches on close', async () => {
    using net = vethPair();
    using trace = u64map();
    using p1 = tracer(trace, 1);
    using p2 = tracer(trace, 2);
    using p3 = tracer(trace, 3);
    using p4 = tracer(trace, 4);
    using p5 = tracer(trace, 5);
    const inB = <T>(fn: () => T): T => withNetns(net.b.path, fn);
    const order = () => inB(() => queryTc(net.b.dev, 'ingress')).tcx?.programs.map((p) => p.programId);
    {
      using l1 = inB(() => attachTc(p1, net.b.dev, { direction: 'ingress', via: 'tcx' }));
      expect(l1).toBeInstanceOf(Link);
      expect(l1.info).toMatchObject({ typeName: 'tcx', progId: p1.info.id });
      using _l2 = inB(() => attachTc(p2, net.b.dev, { direction: 'ingress', before: p1 }));
      using l3 = inB(() => attachTc(p3, net.b.dev, { direction: 'ingress', via: 'tcx', after: l1 }));
      using _l4 = inB(() => attachTc(p4, net.b.dev, { direction: 'ingress', before: 'all' }));
      expect(order()).toEqual([p4.info.id, p2.info.id, p1.info.id, p3.info.id]);
      expect(await traceOne(net, trace, 'a')).toBe('4213');

      // the query names each program's link; a stale revision is refused, the current one taken
      const q = inB(() => queryTc(net.b.dev, 'ingress'));
      expect(q.tcx?.programs.find((p) => p.programId === p3.info.id)?.linkId).toBe(l3.info.id);
      const rev = q.tcx!.revision;
      expect(() =>
        inB(() =>
          attachTc(p5, net.b.dev, { direction: 'ingress', after: 'all', expectedRevision: rev - 1n }),
        ),
      ).toThrow(expect.objectContaining({ code: 'ESTALE' }));
      {
        using _l5 = inB(() =>
          attachTc(p5, net.b.dev, {
            direction: 'ingress',
            after: { linkId: l3.info.id },
            expectedRevision: rev,
          }),
        );
        expect(inB(() => queryTc(net.b.dev, 'ingress')).tcx?.revision).toBe(rev + 1n);
        expect(await traceOne(net, trace, 'b')).toBe('42135');
      }
      // an anchor that is not on the hook is refused
      expect(() =>
        inB(() => attachTc(p5, net.b.dev, { direction: 'ingress', before: { programId: p5.info.id } })),
      ).toThrow(expect.objectContaining({ code: 'ENOENT' }));
      l1.close();
      expect(await traceOne(net, trace, 'c')).toBe('423');
      // a link is updated in place, keeping its position
      l3.update(p1);
      expect(order()).toEqual([p4.info.id, p2.info.id, p1.info.id]);
    }
    expect(inB(() => queryTc(net.b.dev, 'ingress')).tcx?.programs).toEqual([]);
    expect(await traceOne(net, trace, 'd')).toBe('0');
  });

  it('drops chosen datagrams on egress, before a program placed after it', async () => {
    using net = vethPair();
    using drops = u64map();
    using trace = u64map();
    using drop = dropper(drops, TcxAction.DROP, TcxAction.NEXT);
    using last = tracer(trace, 7, TcxAction.PASS);
    const inA = <T>(fn: () => T): T => withNetns(net.a.path, fn);
    {
      using _d = inA(() => attachTc(drop, net.a.dev, { direction: 'egress' }));
      using _t = inA(() => attachTc(last, net.a.dev, { direction: 'egress', after: drop }));
      expect(inA(() => queryTc(net.a.dev, 'egress')).tcx?.programs.map((p) => p.programId)).toEqual([
        drop.info.id,
        last.info.id,
      ]);
      expect(inA(() => queryTc(net.a.dev, 'ingress')).tcx?.programs).toEqual([]);
      expect(await exchange(net, drops, 'egress')).toEqual({
        got: ['P1-egress', 'P2-egress', 'P3-egress'],
        dropped: 3n,
      });
      // only the passes reached the program after the dropper: three 7s
      expect(trace.get(0)).toBe(0x777n);
    }
    expect(inA(() => queryTc(net.a.dev, 'egress')).tcx?.programs).toEqual([]);
    expect(await passAll(net, drops, 'after')).toEqual({ got: ['D1-after', 'P1-after'], dropped: 0n });
  });
});

describe.skipIf(process.env.BPFKIT_SKIP_PRIVILEGED === '1')(
  'cls_bpf filters under clsact over rtnetlink',
  () => {
    it('drops chosen datagrams, is listed, and removes its filter and the clsact qdisc it made', async () => {
      using net = vethPair();
      using drops = u64map();
      using prog = dropper(drops, TC_ACT_SHOT, TC_ACT_OK);
      const inB = <T>(fn: () => T): T => withNetns(net.b.path, fn);
      expect(inB(() => hasClsact(net.b.dev))).toBe(false);
      {
        using att = inB(() => attachTc(prog, net.b.dev, { direction: 'ingress', via: 'netlink' }));
        expect(att).toBeInstanceOf(TcFilterAttachment);
        expect(att.attached).toBe(true); // asked in the attachment's own namespace
        expect(inB(() => hasClsact(net.b.dev))).toBe(true);
        expect(inB(() => queryTc(net.b.dev, 'ingress')).filters).toEqual([
          {
            priority: att.priority,
            handle: att.handle,
            protocol: 0x0003,
            programId: prog.info.id,
            name: 'dropper',
            directAction: true,
          },
        ]);
        expect(att.priority).toBeGreaterThan(0);
        expect(tcShow(net.b.name, 'filter', 'show', 'dev', net.b.dev, 'ingress')).toMatch(
          new RegExp(`bpf .*dropper direct-action .*id ${prog.info.id}`),
        );
        expect(inB(() => queryTc(net.b.dev, 'egress')).filters).toEqual([]);
        expect(await exchange(net, drops, 'cls')).toEqual({
          got: ['P1-cls', 'P2-cls', 'P3-cls'],
          dropped: 3n,
        });
      }
      expect(inB(() => queryTc(net.b.dev, 'ingress')).filters).toEqual([]);
      expect(inB(() => hasClsact(net.b.dev))).toBe(false);
      expect(await passAll(net, drops, 'gone')).toEqual({ got: ['D1-gone', 'P1-gone'], dropped: 0n });
    });

    it('takes a priority and handle, refuses a taken one, and keeps a qdisc it did not make or that is still used', () => {
      using net = vethPair();
      using drops = u64map();
      using prog = dropper(drops, TC_ACT_SHOT, TC_ACT_OK);
      const inB = <T>(fn: () => T): T => withNetns(net.b.path, fn);
      {
        const a = inB(() => attachTc(prog, net.b.dev, { direction: 'ingress', priority: 7, handle: 0x42 }));
        expect(a).toBeInstanceOf(TcFilterAttachment); // auto with a priority: a filter
        expect(a).toMatchObject({ priority: 7, handle: 0x42 });
        let refused: unknown;
        try {
          inB(() => attachTc(prog, net.b.dev, { direction: 'ingress', priority: 7, handle: 0x42 }));
        } catch (e) {
          refused = e;
        }
        expect(refused).toBeInstanceOf(NetlinkError);
        expect(refused).toMatchObject({ code: 'EEXIST' });
        using b = inB(() =>
          attachTc(prog, net.b.dev, { direction: 'egress', via: 'netlink', name: 'second' }),
        );
        expect(inB(() => queryTc(net.b.dev, 'egress')).filters.map((f) => f.name)).toEqual(['second']);
        // the qdisc this process made stays while a filter of ours is under it
        a.close();
        expect(inB(() => queryTc(net.b.dev, 'ingress')).filters).toEqual([]);
        expect(inB(() => hasClsact(net.b.dev))).toBe(true);
        expect(() => a.detach()).toThrow(/closed/);
        a.close(); // idempotent
        expect(b.attached).toBe(true);
      }
      expect(inB(() => hasClsact(net.b.dev))).toBe(false);

      // a qdisc someone else made is left in place
      inB(() => addClsact(net.b.dev));
      {
        using _c = inB(() => attachTc(prog, net.b.dev, { direction: 'ingress', via: 'netlink' }));
        expect(inB(() => queryTc(net.b.dev, 'ingress')).filters).toHaveLength(1);
      }
      expect(inB(() => queryTc(net.b.dev, 'ingress')).filters).toEqual([]);
      expect(inB(() => hasClsact(net.b.dev))).toBe(true);
      inB(() => deleteClsact(net.b.dev));

      // a filter someone removed: detach says so, close does not mind
      const gone = inB(() => attachTc(prog, net.b.dev, { direction: 'ingress', via: 'netlink' }));
      inB(() => deleteClsact(net.b.dev));
      expect(gone.attached).toBe(false);
      expect(() => gone.detach()).toThrow(/gone/);
      gone.close();
    });

    it('rejects options of the other path, and in auto mode uses what the kernel has', () => {
      using net = vethPair();
      using trace = u64map();
      using prog = tracer(trace, 1, TcxAction.PASS);
      const inB = <T>(fn: () => T): T => withNetns(net.b.path, fn);
      expect(() => attachTc(prog, 'lo', { direction: 'ingress', via: 'tcx', priority: 1 })).toThrow(
        TypeError,
      );
      expect(() => attachTc(prog, 'lo', { direction: 'ingress', via: 'netlink', before: 'all' })).toThrow(
        TypeError,
      );
      expect(() => attachTc(prog, 'lo', { direction: 'ingress', before: 'all', after: 'all' })).toThrow(
        TypeError,
      );
      expect(() => attachTc(prog, 'lo', { direction: 'sideways' as never })).toThrow(/direction/);
      expect(() => attachTc(prog, 'lo', { direction: 'ingress', priority: 0 })).toThrow(RangeError);
      expect(() => inB(() => attachTc(prog, 'bpfkit-nodev0', { direction: 'ingress' }))).toThrow(
        /bpfkit-nodev0/,
      );
      {
        using att = inB(() => attachTc(prog, net.b.dev, { direction: 'ingress' }));
        expect(att).toBeInstanceOf(kernelOlderThan('6.6') ? TcFilterAttachment : Link);
      }
      expect(inB(() => queryTc(net.b.dev, 'ingress'))).toMatchObject({ filters: [] });
      expect(inB(() => hasClsact(net.b.dev))).toBe(false);
    });
  },
);

describe.skipIf(process.env.BPFKIT_SKIP_PRIVILEGED === '1')('netkit links on a netkit pair', () => {
  // A kernel before 6.7, or one built without CONFIG_NETKIT (the host), answers the first attach
  // with the library's NotSupportedError: these tests are unsupported there and run on 6.12.
  it('a netkit/primary program drops chosen datagrams the primary sends; its link says where; close restores traffic', async () => {
    using drops = u64map();
    using prog = dropper(drops, NetkitAction.DROP, NetkitAction.NEXT);
    const notNetkit = errorOf(() => attachNetkit(prog, 'lo'));
    expect(notNetkit).toBeInstanceOf(BpfError);
    expect(notNetkit).toMatchObject({
      code: 'ENXIO',
      message: expect.stringMatching(/lo is not a netkit device/),
    });
    using net = netkitPair();
    const inA = <T>(fn: () => T): T => withNetns(net.a.path, fn);
    const primary = inA(() => ifIndex(net.a.dev));
    expect(inA(() => queryNetkit(net.a.dev)).programs).toEqual([]);
    {
      using link = inA(() => attachNetkit(prog, net.a.dev));
      expect(link).toBeInstanceOf(Link);
      expect(link.info).toMatchObject({
        typeName: 'netkit',
        progId: prog.info.id,
        netkitIfindex: primary,
        netkitAttachType: AttachType.NETKIT_PRIMARY,
      });
      expect(inA(() => queryNetkit(net.a.dev, 'primary')).programs).toEqual([
        { programId: prog.info.id, linkId: link.info.id },
      ]);
      expect(inA(() => queryNetkit(net.a.dev, 'peer')).programs).toEqual([]);
      expect(await exchange(net, drops, 'nk')).toEqual({ got: ['P1-nk', 'P2-nk', 'P3-nk'], dropped: 3n });
    }
    expect(inA(() => queryNetkit(net.a.dev)).programs).toEqual([]);
    expect(await passAll(net, drops, 'nk-gone')).toEqual({ got: ['D1-nk-gone', 'P1-nk-gone'], dropped: 0n });
  });

  it('a netkit/peer program (attached through the primary) drops what the peer sends, ordered with after and the revision', async () => {
    using drops = u64map();
    using trace = u64map();
    using drop = dropper(drops, NetkitAction.DROP, NetkitAction.NEXT);
    using last = tracer(trace, 9, NetkitAction.PASS);
    errorOf(() => attachNetkit(drop, 'lo')); // unsupported kernels stop here
    using net = netkitPair();
    const inA = <T>(fn: () => T): T => withNetns(net.a.path, fn);
    const inB = <T>(fn: () => T): T => withNetns(net.b.path, fn);
    // the peer cannot attach its own programs, and a program of another type is refused first
    expect(() => inB(() => attachNetkit(drop, net.b.dev))).toThrow(
      expect.objectContaining({ code: 'EACCES', message: expect.stringMatching(/peer of a netkit pair/) }),
    );
    using xdp = Program.load({
      type: 'xdp',
      license: 'GPL',
      instructions: new Builder().mov64(R0, 2).exit(),
    });
    expect(() => inA(() => attachNetkit(xdp, net.a.dev))).toThrow(/netkit runs sched_cls programs, not xdp/);
    expect(() => inA(() => attachNetkit(drop, net.a.dev, { side: 'middle' as never }))).toThrow(/side/);
    {
      using d = inA(() => attachNetkit(drop, net.a.dev, { side: 'peer' }));
      expect(d.info).toMatchObject({ typeName: 'netkit', netkitAttachType: AttachType.NETKIT_PEER });
      const rev = inA(() => queryNetkit(net.a.dev, 'peer')).revision;
      expect(() =>
        inA(() => attachNetkit(last, net.a.dev, { side: 'peer', after: drop, expectedRevision: rev - 1n })),
      ).toThrow(expect.objectContaining({ code: 'ESTALE' }));
      using _t = inA(() => attachNetkit(last, net.a.dev, { side: 'peer', after: d, expectedRevision: rev }));
      const q = inA(() => queryNetkit(net.a.dev, 'peer'));
      expect(q.revision).toBe(rev + 1n);
      expect(q.programs.map((p) => p.programId)).toEqual([drop.info.id, last.info.id]);
      expect(inA(() => queryNetkit(net.a.dev, 'primary')).programs).toEqual([]);
      // from the peer (b) to the primary (a): the peer side's programs see it
      const back = { a: net.b, b: net.a };
      expect(await exchange(back, drops, 'peer')).toEqual({
        got: ['P1-peer', 'P2-peer', 'P3-peer'],
        dropped: 3n,
      });
      expect(trace.get(0)).toBe(0x999n); // only the passes reached the program after the dropper
      // traffic the primary sends does not run the peer's programs
      expect(await passAll(net, drops, 'fwd')).toEqual({ got: ['D1-fwd', 'P1-fwd'], dropped: 0n });
    }
    expect(inA(() => queryNetkit(net.a.dev, 'peer')).programs).toEqual([]);
  });
});
