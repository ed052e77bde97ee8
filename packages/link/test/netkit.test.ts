// netkit, where the kernel has it (6.7+ with CONFIG_NETKIT): a pair made over rtnetlink (this
// iproute2 may not know netkit) with the primary in one namespace this file makes and the peer in
// another; a program on the peer side drops chosen datagrams the peer sends, counting them; the
// receiver behind the primary must see exactly the others.
import { execFileSync } from 'node:child_process';
import { Builder, R0, R1, R2, R3, R4, reg } from '@bpfkit/asm';
import { attachNetkit, Link, queryNetkit, TcxAction } from '@bpfkit/link';
import { Program } from '@bpfkit/loader';
import { BpfMap, u32, u64 } from '@bpfkit/maps';
import {
  Defines,
  encodeAttrs,
  encodeIfinfomsg,
  Ifla,
  IflaInfo,
  kernelOlderThan,
  NetlinkSocket,
  Rtm,
  withNetns,
} from '@bpfkit/sys';
import { afterAll, describe, expect, it } from 'vitest';
import { requireFeature } from '../../../tools/testing/features.js';
import { dropExchange, ourNamespaces, removeLeftovers, vethPair } from '../../../tools/testing/netns.js';
import { addToSlot0 } from '../../../tools/testing/programs.js';

const PORT = 4795;
const SKB_DATA = 76;
const SKB_DATA_END = 80;

afterAll(() => {
  expect(ourNamespaces()).toEqual([]);
  expect(removeLeftovers()).toEqual([]);
});

const cstr = (s: string) => new TextEncoder().encode(`${s}\0`);
const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });

/** A netkit pair (L3 mode, the default): primary `name` in namespace `a` (10.202.0.1), its peer moved to `b` (10.202.0.2). */
function netkitPair(a: { name: string; path: string }, b: { name: string }, name: string) {
  withNetns(a.path, () => {
    using nl = new NetlinkSocket();
    const attrs = encodeAttrs([
      { type: Ifla.IFNAME, data: cstr(name) },
      { type: Ifla.LINKINFO, nested: [{ type: IflaInfo.KIND, data: cstr('netkit') }] },
    ]);
    const info = encodeIfinfomsg(0);
    const payload = new Uint8Array(info.length + attrs.length);
    payload.set(info);
    payload.set(attrs, info.length);
    nl.request(Rtm.NEWLINK, Defines.NLM_F_CREATE | Defines.NLM_F_EXCL, payload, 'RTM_NEWLINK netkit');
  });
  // the kernel names the peer nk%d, beside the primary
  const peer = ip('-n', a.name, '-o', 'link', 'show')
    .split('\n')
    .map((l) => /^\d+: ([^:@]+)@([^:]+):/.exec(l))
    .find((m) => m?.[2] === name)?.[1];
  if (!peer) throw new Error(`no peer of netkit ${name} in ${a.name}`);
  ip('-n', a.name, 'link', 'set', peer, 'netns', b.name);
  ip('-n', a.name, 'addr', 'add', '10.202.0.1/24', 'dev', name);
  ip('-n', a.name, 'link', 'set', name, 'up');
  ip('-n', b.name, 'addr', 'add', '10.202.0.2/24', 'dev', peer);
  ip('-n', b.name, 'link', 'set', peer, 'up');
  return { primary: name, peer };
}

/** Drop IPv4 UDP datagrams to PORT whose payload starts with 'D' (an L3 device: the packet starts at the IP header). */
function dropper(drops: BpfMap<number, bigint>): Program {
  const b = new Builder()
    .ldx('w', R2, R1, SKB_DATA)
    .ldx('w', R3, R1, SKB_DATA_END)
    .mov64(R4, reg(R2))
    .add64(R4, 29)
    .jgt(R4, reg(R3), 'other')
    .ldx('b', R4, R2, 0)
    .jne(R4, 0x45, 'other')
    .ldx('b', R4, R2, 9)
    .jne(R4, 17, 'other')
    .ldx('h', R4, R2, 22)
    .jne(R4, ((PORT & 0xff) << 8) | (PORT >> 8), 'other')
    .ldx('b', R4, R2, 28)
    .jne(R4, 'D'.charCodeAt(0), 'other');
  addToSlot0(b, 'drops', 1, 'dw', 'drop')
    .label('drop')
    .mov64(R0, TcxAction.DROP)
    .exit()
    .label('other')
    .mov64(R0, TcxAction.NEXT)
    .exit();
  return Program.load({ type: 'sched_cls', license: 'GPL', instructions: b, maps: { drops } });
}

describe.skipIf(process.env.BPFKIT_SKIP_PRIVILEGED === '1')('netkit links', () => {
  it('a program on the peer side drops chosen datagrams the peer sends, and only while linked', async (ctx) => {
    using drops = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 1 });
    using prog = dropper(drops);
    if (kernelOlderThan('6.7')) {
      attachNetkit(prog, 'lo', { side: 'peer' }); // a kernel before 6.7 refuses with NotSupportedError
      throw new Error('attachNetkit before 6.7 did not refuse');
    }
    requireFeature(ctx, 'netkit devices', { config: ['CONFIG_NETKIT'] });
    using net = vethPair();
    const nk = netkitPair(net.a, net.b, `bnk${process.pid % 100000}`);
    // datagrams from b (the peer's side) to a (the primary's)
    const flow = {
      a: { ...net.b, addr: '10.202.0.2' },
      b: { ...net.a, addr: '10.202.0.1' },
    };
    const inA = <T>(fn: () => T): T => withNetns(net.a.path, fn);
    {
      using link = inA(() => attachNetkit(prog, nk.primary, { side: 'peer' }));
      expect(link).toBeInstanceOf(Link);
      expect(link.info).toMatchObject({ typeName: 'netkit', progId: prog.info.id });
      expect(inA(() => queryNetkit(nk.primary, 'peer')).programs).toEqual([
        { programId: prog.info.id, linkId: link.info.id },
      ]);
      expect(inA(() => queryNetkit(nk.primary, 'primary')).programs).toEqual([]);
      expect(await dropExchange(flow, drops, PORT, 'nk')).toEqual({
        got: ['P1-nk', 'P2-nk', 'P3-nk'],
        dropped: 3n,
      });
      // programs attach through the primary only
      expect(() => withNetns(net.b.path, () => attachNetkit(prog, nk.peer, { side: 'peer' }))).toThrow(
        expect.objectContaining({ cmd: 'BPF_LINK_CREATE' }),
      );
    }
    expect(inA(() => queryNetkit(nk.primary, 'peer')).programs).toEqual([]);
  });
});
