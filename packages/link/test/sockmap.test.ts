// Socket maps, in a namespace this file makes (and removes): two TCP connections whose server
// ends sit in a sockmap; an sk_skb verdict program redirects what the first receives out of the
// second, so the first connection's client writes and the second's client reads it. And an
// sk_msg program on a sockhash redirects what one socket sends into another's receive queue.
import { spawn } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { Builder, R0, R1, R2, R3, R4, R10, reg } from '@bpfkit/asm';
import { attachSockMap, Link, SockMapAttachment, type SockMapAttachType } from '@bpfkit/link';
import { Program } from '@bpfkit/loader';
import { BpfMap, u32, u64 } from '@bpfkit/maps';
import { kernelOlderThan, withNetns } from '@bpfkit/sys';
import { afterAll, describe, expect, it } from 'vitest';
import { ourNamespaces, removeLeftovers, vethPair } from '../../../tools/testing/netns.js';

const _SK_PASS = 1;
const BPF_F_INGRESS = 1;

afterAll(() => {
  expect(ourNamespaces()).toEqual([]);
  expect(removeLeftovers()).toEqual([]);
});

/** A TCP server listening in namespace `ns` (listen(port) makes the socket at once, there); `next()` resolves with its next connection. */
function serverIn(ns: string) {
  const conns: Socket[] = [];
  const waiting: ((s: Socket) => void)[] = [];
  const srv: Server = withNetns(ns, () =>
    createServer((s) => {
      const w = waiting.shift();
      if (w) w(s);
      else conns.push(s);
    }).listen(0),
  );
  return {
    port: (srv.address() as { port: number }).port,
    next: () => new Promise<Socket>((r) => (conns.length ? r(conns.shift()!) : waiting.push(r))),
    [Symbol.asyncDispose]: () => new Promise<void>((r) => srv.close(() => r())),
  };
}
const fdOf = (s: Socket): number => (s as unknown as { _handle: { fd: number } })._handle.fd;

// The clients: the first connects to port A and, told 'go', writes; the second connects to port
// B and prints what it reads (a line), then both close.
const CLIENTS = `
const net = require('node:net');
const [pa, pb] = process.argv.slice(1).map(Number);
const a = net.connect(pa, '127.0.0.1');
const b = net.connect(pb, '127.0.0.1');
let n = 0;
const up = () => { if (++n === 2) process.stdout.write('connected\\n'); };
a.on('connect', up); b.on('connect', up);
let got = '';
b.on('data', (d) => { got += d; if (got.includes('\\n')) { process.stdout.write('got ' + got); a.end(); b.end(); } });
process.stdin.on('data', () => a.write('hello through the sockmap\\n'));
`;

function clientsIn(ns: string, pa: number, pb: number) {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', CLIENTS, String(pa), String(pb)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const waiters: ((l: string) => void)[] = [];
  lines.on('line', (l) => waiters.shift()?.(l));
  return {
    line: () => new Promise<string>((r) => waiters.push(r)),
    go: () => child.stdin.write('go\n'),
    [Symbol.asyncDispose]: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill();
      await gone;
    },
  };
}

/** sk_skb verdict: send everything received out of the socket in slot 1. */
const redirector = (attachType: SockMapAttachType, map: BpfMap<number, number>) =>
  Program.load({
    type: 'sk_skb',
    attachType,
    license: 'GPL',
    instructions: new Builder().ldMap(R2, 'map').mov64(R3, 1).mov64(R4, 0).call('sk_redirect_map').exit(),
    maps: { map },
  });

describe.skipIf(process.env.BPFKIT_SKIP_PRIVILEGED === '1')('socket maps', () => {
  const cases = [
    { verdict: 'sk_skb_stream_verdict', parser: true, mode: 'legacy' },
    { verdict: 'sk_skb_verdict', parser: false, mode: 'auto' }, // a link on 6.10+
  ] as const;
  for (const { verdict, parser, mode } of cases) {
    it(`an ${verdict} program${parser ? ' with a stream parser' : ''} (${mode}) redirects data from one TCP connection into another`, async () => {
      using net = vethPair();
      await using srvA = serverIn(net.b.path);
      await using srvB = serverIn(net.b.path);
      using map = BpfMap.create({ type: 'sockmap', key: u32, value: u32, maxEntries: 2 });
      using prog = redirector(verdict, map);
      using parse = Program.load({
        type: 'sk_skb',
        attachType: 'sk_skb_stream_parser',
        license: 'GPL',
        instructions: new Builder().ldx('w', R0, R1, 0).exit(), // a message is all that arrived (skb->len)
      });
      {
        using att = attachSockMap(prog, map, verdict, { mode });
        expect(att).toBeInstanceOf(mode === 'auto' && !kernelOlderThan('6.10') ? Link : SockMapAttachment);
        using _p = parser ? attachSockMap(parse, map, 'sk_skb_stream_parser', { mode }) : undefined;
        await using clients = clientsIn(net.b.name, srvA.port, srvB.port);
        const [a, b] = await Promise.all([srvA.next(), srvB.next()]);
        expect(await clients.line()).toBe('connected');
        let seenByA = '';
        a.on('data', (d) => (seenByA += d));
        map.set(0, fdOf(a));
        map.set(1, fdOf(b));
        clients.go();
        expect(await clients.line()).toBe('got hello through the sockmap');
        expect(seenByA).toBe(''); // the verdict took it before the socket's own receive queue
        map.delete(0);
        map.delete(1);
        a.destroy();
        b.destroy();
      }
    });
  }

  it('an sk_msg program on a sockhash sends what one socket writes into the other’s receive queue', async () => {
    using net = vethPair();
    await using srvA = serverIn(net.b.path);
    await using srvB = serverIn(net.b.path);
    using hash = BpfMap.create({ type: 'sockhash', key: u32, value: u64, maxEntries: 2 });
    using prog = Program.load({
      type: 'sk_msg',
      attachType: 'sk_msg_verdict',
      license: 'GPL',
      instructions: new Builder()
        .st('w', R10, -4, 1)
        .ldMap(R2, 'hash')
        .mov64(R3, reg(R10))
        .add64(R3, -4)
        .mov64(R4, BPF_F_INGRESS)
        .call('msg_redirect_hash')
        .exit(),
      maps: { hash },
    });
    using _att = attachSockMap(prog, hash, 'sk_msg_verdict');
    await using clients = clientsIn(net.b.name, srvA.port, srvB.port);
    const [a, b] = await Promise.all([srvA.next(), srvB.next()]);
    expect(await clients.line()).toBe('connected');
    hash.set(0, BigInt(fdOf(a)));
    hash.set(1, BigInt(fdOf(b)));
    const got = new Promise<string>((r) => b.once('data', (d) => r(String(d))));
    a.write('sent by a, read by b'); // a's peer (the first client) never sees it
    expect(await got).toBe('sent by a, read by b');
    hash.delete(0);
    hash.delete(1);
    a.destroy();
    b.destroy();
  });

  it('says which attach types a socket map takes, and that links need 6.10', () => {
    using map = BpfMap.create({ type: 'sockmap', key: u32, value: u32, maxEntries: 1 });
    using prog = redirector('sk_skb_verdict', map);
    expect(() => attachSockMap(prog, map, 'sk_skb_sideways' as never)).toThrow(/attach type/);
    if (kernelOlderThan('6.10'))
      expect(() => attachSockMap(prog, map, 'sk_skb_verdict', { mode: 'link' })).toThrow(/6\.10/);
    else {
      using link = attachSockMap(prog, map, 'sk_skb_verdict', { mode: 'link' }) as Link;
      expect(link.info).toMatchObject({ typeName: 'sockmap', progId: prog.info.id });
    }
    // a map has one program per attach type
    using att = attachSockMap(prog, map, 'sk_skb_verdict', { mode: 'legacy' });
    expect(att).toBeInstanceOf(SockMapAttachment);
    att.detach();
    expect(() => att.detach()).toThrow(/closed/);
  });
});
