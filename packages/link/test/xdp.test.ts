// XDP on a veth pair across two network namespaces this file makes (and removes): a program
// drops chosen UDP datagrams and counts them; the receiver in the other namespace must see
// exactly the others.
import { Builder, R0, R4 } from '@bpfkit/asm';
import { attachXdp, Link, queryXdp, XdpAction, XdpNetlinkAttachment } from '@bpfkit/link';
import { Program } from '@bpfkit/loader';
import { BpfMap, u32, u64 } from '@bpfkit/maps';
import { BpfError, InterfaceNotFoundError, NetlinkError, withNetns } from '@bpfkit/sys';
import { afterAll, describe, expect, it } from 'vitest';
import { dropExchange, ourNamespaces, removeLeftovers, vethPair } from '../../../tools/testing/netns.js';
import { addToSlot0, matchUdp } from '../../../tools/testing/programs.js';

const PORT = 4791;

/** XDP: drop IPv4 UDP datagrams to PORT whose payload starts with 'D', counting them in `drops`; pass the rest. */
function dropper(drops: BpfMap<number, bigint>, action: number = XdpAction.DROP): Program {
  const b = matchUdp(new Builder(), { dataOff: 0, dataEndOff: 4, port: PORT, other: 'pass' }).jne(
    R4,
    'D'.charCodeAt(0),
    'pass',
  );
  addToSlot0(b, 'drops', 1, 'dw', 'drop')
    .label('drop')
    .mov64(R0, action)
    .exit()
    .label('pass')
    .mov64(R0, XdpAction.PASS)
    .exit();
  return Program.load({ type: 'xdp', license: 'GPL', instructions: b, maps: { drops } });
}

const passer = () =>
  Program.load({ type: 'xdp', license: 'GPL', instructions: new Builder().mov64(R0, XdpAction.PASS).exit() });

afterAll(() => {
  // every test removes its namespaces itself; one that timed out is cleaned up here, and fails
  expect(ourNamespaces()).toEqual([]);
  expect(removeLeftovers()).toEqual([]);
});

const exchange = (net: ReturnType<typeof vethPair>, drops: BpfMap<number, bigint>, tag: string) =>
  dropExchange(net, drops, PORT, tag);

describe.skipIf(process.env.BPFKIT_SKIP_PRIVILEGED === '1')('XDP on a veth pair', () => {
  for (const mode of ['generic', 'native'] as const) {
    it(`drops chosen datagrams in ${mode} mode through a bpf_link, and nothing is left after close`, async () => {
      using net = vethPair();
      using drops = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 1 });
      using prog = dropper(drops);
      const inB = <T>(fn: () => T): T => withNetns(net.b.path, fn);
      {
        using link = inB(() => attachXdp(prog, net.b.dev, { mode, via: 'link' }));
        expect(link).toBeInstanceOf(Link);
        expect(link.info).toMatchObject({ typeName: 'xdp', progId: prog.info.id });
        expect(inB(() => queryXdp(net.b.dev))).toEqual({
          mode,
          programId: prog.info.id,
          programs: { [mode]: prog.info.id },
        });
        expect(await exchange(net, drops, mode)).toEqual({
          got: [`P1-${mode}`, `P2-${mode}`, `P3-${mode}`],
          dropped: 3n,
        });
        // a link is replaced by updating it, and only from the expected program
        using other = passer();
        expect(() => link.update(other, { expected: other })).toThrow(
          expect.objectContaining({ code: 'EPERM' }),
        );
        link.update(other, { expected: prog });
        expect(inB(() => queryXdp(net.b.dev)).programId).toBe(other.info.id);
        // a second attachment in the same mode is refused while the link holds the interface
        expect(() => inB(() => attachXdp(prog, net.b.dev, { mode }))).toThrow(BpfError);
      }
      expect(inB(() => queryXdp(net.b.dev))).toEqual({ mode: undefined, programId: undefined, programs: {} });
    });
  }

  it('attaches over netlink when asked, replaces only the expected program, and detaches', async () => {
    using net = vethPair();
    using drops = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 1 });
    using prog = dropper(drops);
    using other = passer();
    using wrong = passer();
    const inB = <T>(fn: () => T): T => withNetns(net.b.path, fn);
    {
      using att = inB(() => attachXdp(prog, net.b.dev, { mode: 'generic', via: 'netlink' }));
      expect(att).toBeInstanceOf(XdpNetlinkAttachment);
      expect(att.programId).toBe(prog.info.id); // asked in the attachment's own namespace
      expect(inB(() => queryXdp(net.b.dev))).toMatchObject({ mode: 'generic', programId: prog.info.id });
      expect(await exchange(net, drops, 'netlink')).toEqual({
        got: ['P1-netlink', 'P2-netlink', 'P3-netlink'],
        dropped: 3n,
      });

      // replace with a wrong expected program: refused, with the kernel's words
      let refused: unknown;
      try {
        inB(() => attachXdp(other, net.b.dev, { mode: 'generic', replace: wrong }));
      } catch (e) {
        refused = e;
      }
      expect(refused).toBeInstanceOf(NetlinkError);
      expect(refused).toMatchObject({ code: 'EEXIST', extack: expect.stringMatching(/expected/i) });
      expect((refused as Error).message).toMatch(/does not match expected/);
      expect(inB(() => queryXdp(net.b.dev)).programId).toBe(prog.info.id);

      // replace with the expected one: done
      const repl = inB(() => attachXdp(other, net.b.dev, { mode: 'generic', replace: prog }));
      expect(inB(() => queryXdp(net.b.dev)).programId).toBe(other.info.id);
      // the old attachment no longer owns the interface: closing it leaves the new program alone
      att.close();
      expect(inB(() => queryXdp(net.b.dev)).programId).toBe(other.info.id);
      // update through the new attachment, guarded by what it holds
      inB(() => repl.update(prog));
      expect(inB(() => queryXdp(net.b.dev)).programId).toBe(prog.info.id);
      expect(() => inB(() => repl.update(other, { expected: wrong }))).toThrow(
        expect.objectContaining({ code: 'EEXIST' }),
      );
      inB(() => repl.detach());
      expect(inB(() => queryXdp(net.b.dev))).toEqual({ mode: undefined, programId: undefined, programs: {} });
      expect(() => repl.detach()).toThrow(/closed/);
      repl.close(); // idempotent
    }
    // a link cannot replace; a missing interface is named
    expect(() => inB(() => attachXdp(prog, net.b.dev, { via: 'link', replace: other }))).toThrow(TypeError);
    expect(() => inB(() => attachXdp(prog, 'bpfkit-nodev0'))).toThrow(InterfaceNotFoundError);
    expect(() => inB(() => queryXdp('bpfkit-nodev0'))).toThrow(/bpfkit-nodev0/);
    expect(() => attachXdp(prog, net.b.dev)).toThrow(InterfaceNotFoundError); // not in this namespace
    // veth has no offload: refused, in the kernel's words
    // (auto mode on 5.9+ reports the link's refusal, and does not retry over netlink)
    expect(() => inB(() => attachXdp(prog, net.b.dev, { mode: 'offload' }))).toThrow(
      /BPF_LINK_CREATE.*EINVAL/,
    );
    expect(() => inB(() => attachXdp(prog, net.b.dev, { mode: 'offload', via: 'netlink' }))).toThrow(
      NetlinkError,
    );
    expect(inB(() => queryXdp(net.b.dev)).mode).toBeUndefined();
  });

  it('in auto mode attaches a link (this kernel has XDP links), and the netlink attachment closes on dispose', () => {
    using net = vethPair();
    using drops = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 1 });
    using prog = dropper(drops);
    const inB = <T>(fn: () => T): T => withNetns(net.b.path, fn);
    {
      using link = inB(() => attachXdp(prog, net.b.dev));
      expect(link).toBeInstanceOf(Link);
      expect(inB(() => queryXdp(net.b.dev)).mode).toBe('native'); // veth has native XDP: the kernel's choice
    }
    {
      using _att = inB(() => attachXdp(prog, net.b.dev, { via: 'netlink' }));
      expect(inB(() => queryXdp(net.b.dev)).programId).toBe(prog.info.id);
    }
    expect(inB(() => queryXdp(net.b.dev)).mode).toBeUndefined();
  });
});
