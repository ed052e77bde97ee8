// Netfilter links, in namespaces this file makes (and removes): a program on the receiving
// namespace's IPv4 local-in hook drops datagrams of one chosen length, counting them; the
// receiver must see exactly the others, and all of them once the link is closed.
import { Builder, R0, R1, R2, R3 } from '@bpfkit/asm';
import { Btf } from '@bpfkit/btf';
import { attachNetfilter, Link, NfIpPriority, NfVerdict } from '@bpfkit/link';
import { Program } from '@bpfkit/loader';
import { BpfMap, u32, u64 } from '@bpfkit/maps';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ourNamespaces,
  removeLeftovers,
  udpReceiver,
  udpSend,
  vethPair,
} from '../../../tools/testing/netns.js';
import { addToSlot0 } from '../../../tools/testing/programs.js';

const PORT = 4794;
const DROP_LEN = 40; // payload bytes of the datagrams to drop
const IP_UDP = 20 + 8; // at local-in skb->len counts from the IPv4 header

afterAll(() => {
  expect(ourNamespaces()).toEqual([]);
  expect(removeLeftovers()).toEqual([]);
});

/** netfilter: drop (and count) packets of IP_UDP + DROP_LEN bytes, accept the rest. */
function dropper(drops: BpfMap<number, bigint>): Program {
  const btf = Btf.kernel();
  const skbLen = btf.flatten(btf.find('sk_buff', 'struct').id).find((f) => f.path === 'len')!.offset;
  const b = new Builder()
    .ldx('dw', R2, R1, 8) // struct bpf_nf_ctx: state, then skb (a trusted sk_buff pointer)
    .ldx('w', R3, R2, skbLen)
    .jne(R3, IP_UDP + DROP_LEN, 'accept');
  addToSlot0(b, 'drops', 1, 'dw', 'drop')
    .label('drop')
    .mov64(R0, NfVerdict.DROP)
    .exit()
    .label('accept')
    .mov64(R0, NfVerdict.ACCEPT)
    .exit();
  return Program.load({
    type: 'netfilter',
    attachType: 'netfilter',
    license: 'GPL',
    instructions: b,
    maps: { drops },
  });
}

const pad = (s: string, n: number) => s.padEnd(n, '.');

describe.skipIf(process.env.BPFKIT_SKIP_PRIVILEGED === '1')('netfilter links', () => {
  it('drop chosen datagrams at IPv4 local-in of one namespace only, until closed', async () => {
    using net = vethPair();
    using drops = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 1 });
    using prog = dropper(drops);
    const msgs = ['D1', 'P1', 'D2', 'P2'].map((m) => (m[0] === 'D' ? pad(m, DROP_LEN) : m));
    {
      using link = attachNetfilter(prog, {
        family: 'ipv4',
        hook: 'local_in',
        priority: NfIpPriority.FILTER + 1,
        netns: net.b.path,
      });
      expect(link).toBeInstanceOf(Link);
      expect(link.info).toMatchObject({ typeName: 'netfilter', progId: prog.info.id });
      await using rx = await udpReceiver(net.b.name, net.b.addr, PORT);
      udpSend(net.a.name, net.b.addr, PORT, msgs);
      await rx.until(() => rx.got.length >= 2 && drops.get(0) === 2n);
      expect([...rx.got].sort()).toEqual(['P1', 'P2']);
      // the sending namespace has no such hook: a datagram back to it arrives whole
      await using back = await udpReceiver(net.a.name, net.a.addr, PORT);
      udpSend(net.b.name, net.a.addr, PORT, [pad('D3', DROP_LEN)]);
      await back.until(() => back.got.length >= 1);
      expect(drops.get(0)).toBe(2n);
    }
    await using rx = await udpReceiver(net.b.name, net.b.addr, PORT);
    udpSend(net.a.name, net.b.addr, PORT, msgs);
    await rx.until(() => rx.got.length >= 4);
    expect([...rx.got].sort()).toEqual([msgs[0], msgs[2], 'P1', 'P2'].sort());
    expect(drops.get(0)).toBe(2n);
  });

  it('checks its options before the kernel does', () => {
    using drops = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 1 });
    using prog = dropper(drops);
    expect(() => attachNetfilter(prog, { family: 'ipx' as never, hook: 'local_in', priority: 1 })).toThrow(
      /family/,
    );
    expect(() => attachNetfilter(prog, { family: 'ipv4', hook: 'inbound' as never, priority: 1 })).toThrow(
      /hook/,
    );
    expect(() =>
      attachNetfilter(prog, { family: 'ipv4', hook: 'local_in', priority: NfIpPriority.FIRST }),
    ).toThrow(RangeError);
  });
});
