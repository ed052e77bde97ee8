// Network-namespace hooks, in namespaces this file makes (and removes): an sk_lookup program
// steers connections for one port to a listening socket on another, and a flow dissector runs on
// the namespace's packets (a TC program asks for each packet's hash, which dissects it). The
// dissector counts only the test's own datagrams: the namespace also receives traffic nobody
// times (ARP probes, IPv6 router solicitations, MLD reports, DAD), which a count of every packet
// took in whenever it arrived — under a slow guest even while the dissector was being detached.
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { promisify } from 'node:util';
import { Builder, R0, R1, R2, R3, R4, R5, R6, R7, R10, reg } from '@bpfkit/asm';
import {
  attachFlowDissector,
  attachSkLookup,
  attachTc,
  FlowDissectorAttachment,
  Link,
  queryNetns,
  TcxAction,
} from '@bpfkit/link';
import { Program } from '@bpfkit/loader';
import { BpfMap, u32, u64 } from '@bpfkit/maps';
import { Netns, withNetns } from '@bpfkit/sys';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ourNamespaces,
  removeLeftovers,
  udpReceiver,
  udpSend,
  vethPair,
} from '../../../tools/testing/netns.js';
import { addToSlot0 } from '../../../tools/testing/programs.js';

const run = promisify(execFile);
const SK_PASS = 1;
const LOCAL_PORT = 60; // offsetof(struct bpf_sk_lookup, local_port), host byte order
const SKB_DATA = 76; // offsetof(struct __sk_buff, data), data_end and flow_keys
const SKB_DATA_END = 80;
const SKB_FLOW_KEYS = 144;
const DISSECT_PORT = 4793;

/**
 * flow_dissector: count the packets it dissects that are IPv4 UDP datagrams to DISSECT_PORT (the
 * network header is `flow_keys->nhoff` bytes into the data); answers BPF_OK, keys untouched.
 */
function countingDissector(runs: BpfMap<number, bigint>): Program {
  const b = new Builder()
    .ldx('dw', R7, R1, SKB_FLOW_KEYS)
    .ldx('h', R4, R7, 0) // nhoff
    .jgt(R4, 0xff, 'out') // bounded, so the verifier can range-check the pointer it offsets
    .ldx('w', R2, R1, SKB_DATA)
    .ldx('w', R3, R1, SKB_DATA_END)
    .add64(R2, reg(R4))
    .mov64(R5, reg(R2))
    .add64(R5, 24) // the IPv4 header (no options) and the UDP ports
    .jgt(R5, reg(R3), 'out')
    .ldx('b', R4, R2, 0)
    .jne(R4, 0x45, 'out')
    .ldx('b', R4, R2, 9)
    .jne(R4, 17, 'out') // IPPROTO_UDP
    .ldx('h', R4, R2, 22)
    .jne(R4, ((DISSECT_PORT & 0xff) << 8) | (DISSECT_PORT >> 8), 'out'); // the destination port, big-endian
  addToSlot0(b, 'runs', 1).label('out').mov64(R0, 0).exit(); // BPF_OK
  return Program.load({
    type: 'flow_dissector',
    attachType: 'flow_dissector',
    license: 'GPL',
    name: 'count_ours',
    instructions: b,
    maps: { runs },
  });
}

afterAll(() => {
  expect(ourNamespaces()).toEqual([]);
  expect(removeLeftovers()).toEqual([]);
});

/** A TCP server in namespace `ns` (made there: the socket belongs to it) that answers every connection with `name`. */
function serverIn(ns: string, name: string): Server & AsyncDisposable {
  const srv = withNetns(ns, () => createServer((s) => s.end(name)).listen(0)); // listen(port) makes the socket now
  return Object.assign(srv, {
    [Symbol.asyncDispose]: () => new Promise<void>((r) => srv.close(() => r())),
  });
}
const portOf = (s: Server): number => (s.address() as { port: number }).port;
const fdOf = (s: Server): number => (s as unknown as { _handle: { fd: number } })._handle.fd;

const CLIENT = `
const c = require('node:net').connect(Number(process.argv[1]), '127.0.0.1');
let got = '';
c.on('data', (d) => (got += d));
c.on('end', () => process.stdout.write(got));
c.on('error', (e) => process.stdout.write(e.code));
`;
/** Connect to 127.0.0.1:port from a process in namespace `ns`: what the server said (or the error code). */
async function ask(ns: string, port: number): Promise<string> {
  const { stdout } = await run('ip', ['netns', 'exec', ns, process.execPath, '-e', CLIENT, String(port)]);
  return stdout;
}

/** sk_lookup: connections to `port` go to the socket in slot 0 of `target`. */
function steer(target: BpfMap<number, number>, port: number): Program {
  const b = new Builder()
    .mov64(R6, reg(R1))
    .ldx('w', R2, R6, LOCAL_PORT)
    .jne(R2, port, 'pass')
    .st('w', R10, -4, 0)
    .ldMap(R1, 'target')
    .mov64(R2, reg(R10))
    .add64(R2, -4)
    .call('map_lookup_elem')
    .jeq(R0, 0, 'pass')
    .mov64(R7, reg(R0))
    .mov64(R1, reg(R6))
    .mov64(R2, reg(R7))
    .mov64(R3, 0)
    .call('sk_assign')
    .mov64(R1, reg(R7))
    .call('sk_release')
    .label('pass')
    .mov64(R0, SK_PASS)
    .exit();
  return Program.load({
    type: 'sk_lookup',
    attachType: 'sk_lookup',
    license: 'GPL',
    instructions: b,
    maps: { target },
  });
}

describe.skipIf(process.env.BPFKIT_SKIP_PRIVILEGED === '1')('network namespace hooks', () => {
  it('sk_lookup steers connections for one port to a chosen listening socket, until the link closes', async () => {
    using net = vethPair();
    await using a = serverIn(net.b.path, 'A');
    await using b = serverIn(net.b.path, 'B');
    using target = BpfMap.create({ type: 'sockmap', key: u32, value: u32, maxEntries: 1 });
    target.set(0, fdOf(b));
    using prog = steer(target, portOf(a));
    expect(await ask(net.b.name, portOf(a))).toBe('A');
    {
      using link = attachSkLookup(prog, net.b.path);
      expect(link).toBeInstanceOf(Link);
      expect(link.info).toMatchObject({ typeName: 'netns', progId: prog.info.id });
      expect(queryNetns('sk_lookup', net.b.path)).toEqual([prog.info.id]);
      expect(queryNetns('sk_lookup', net.a.path)).toEqual([]);
      expect(await ask(net.b.name, portOf(a))).toBe('B'); // steered
      expect(await ask(net.b.name, portOf(b))).toBe('B');
      // another namespace is untouched: nothing listens there
      expect(await ask(net.a.name, portOf(a))).toBe('ECONNREFUSED');
    }
    expect(queryNetns('sk_lookup', net.b.path)).toEqual([]);
    expect(await ask(net.b.name, portOf(a))).toBe('A');
  });

  for (const mode of ['link', 'legacy'] as const) {
    it(`a flow dissector (${mode}) dissects the namespace's packets, and only while attached`, async () => {
      using net = vethPair();
      using runs = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 1 });
      using dissector = countingDissector(runs);
      // a TC program that asks for every received packet's hash: the kernel dissects it
      using hasher = Program.load({
        type: 'sched_cls',
        license: 'GPL',
        instructions: new Builder().call('get_hash_recalc').mov64(R0, TcxAction.PASS).exit(),
      });
      using _tc = withNetns(net.b.path, () => attachTc(hasher, net.b.dev, { direction: 'ingress' }));
      const send = async (tag: string) => {
        await using rx = await udpReceiver(net.b.name, net.b.addr, DISSECT_PORT);
        udpSend(net.a.name, net.b.addr, DISSECT_PORT, [`1-${tag}`, `2-${tag}`]);
        await rx.until(() => rx.got.length >= 2);
        return runs.get(0) ?? 0n;
      };
      expect(await send('before')).toBe(0n);
      {
        using att = attachFlowDissector(dissector, net.b.path, { mode });
        expect(att).toBeInstanceOf(mode === 'link' ? Link : FlowDissectorAttachment);
        expect(queryNetns('flow_dissector', net.b.path)).toEqual([dissector.info.id]);
        expect(queryNetns('flow_dissector', net.a.path)).toEqual([]);
        // one per namespace: a second link is refused, and so is a legacy attach while a link holds it
        if (mode === 'link') {
          expect(() => attachFlowDissector(dissector, net.b.path, { mode })).toThrow(
            expect.objectContaining({ code: 'E2BIG' }),
          );
          expect(() => attachFlowDissector(dissector, net.b.path, { mode: 'legacy' })).toThrow(
            expect.objectContaining({ code: 'EEXIST' }),
          );
        }
        // each of the two datagrams is dissected once (its hash is kept), and nothing else counts
        expect(await send('on')).toBe(2n);
      }
      expect(queryNetns('flow_dissector', net.b.path)).toEqual([]);
      expect(await send('after')).toBe(2n);
    });
  }

  it('a legacy flow dissector detaches only while it is the one attached, from a Netns it was given', () => {
    using net = vethPair();
    using ns = Netns.open(net.b.path);
    const prog = () =>
      Program.load({
        type: 'flow_dissector',
        attachType: 'flow_dissector',
        license: 'GPL',
        instructions: new Builder().mov64(R0, 0).exit(),
      });
    using p1 = prog();
    using p2 = prog();
    const att = attachFlowDissector(p1, ns, { mode: 'legacy' }) as FlowDissectorAttachment;
    att.detach();
    expect(() => att.detach()).toThrow(/closed/);
    att.close(); // idempotent
    expect(queryNetns('flow_dissector', ns)).toEqual([]);
    // a legacy attach replaces the one there: the replaced attachment then leaves the new one alone
    const first = attachFlowDissector(p1, ns, { mode: 'legacy' }) as FlowDissectorAttachment;
    const second = attachFlowDissector(p2, ns, { mode: 'legacy' }) as FlowDissectorAttachment;
    expect(queryNetns('flow_dissector', ns)).toEqual([p2.info.id]);
    expect(() => first.detach()).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    first.close();
    expect(queryNetns('flow_dissector', ns)).toEqual([p2.info.id]);
    second.close();
    expect(queryNetns('flow_dissector', ns)).toEqual([]);
    expect(ns.fd.closed).toBe(false); // a Netns given stays the caller's
  });
});
