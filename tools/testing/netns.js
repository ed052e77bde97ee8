// Network namespaces for tests that need real traffic: a veth pair across two namespaces made
// with iproute2, 10.x addresses inside them only, and UDP sender and receiver processes run in
// them with `ip netns exec`. Everything is removed on dispose (deleting a namespace deletes its
// end of the veth, and with it the pair).
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { createInterface } from 'node:readline';
import {
  Defines,
  encodeAttrs,
  encodeIfinfomsg,
  Ifla,
  IflaInfo,
  IflaNetkit,
  NetkitMode,
  NetlinkSocket,
  nlS32,
  nlU32,
  Rtm,
  withNetns,
} from '@bpfkit/sys';

const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** The namespaces this process made that still exist (what a test checks is empty at its end). */
export function ourNamespaces() {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n?.startsWith(`bpfkit-${process.pid}-`));
}

let serial = 0;
/** What is still to remove should a test end without its dispose (a timeout): namespaces and child processes. */
const live = { namespaces: new Set(), children: new Set() };
process.once('exit', () => {
  for (const c of live.children) c.kill('SIGKILL');
  for (const ns of live.namespaces) {
    try {
      ip('netns', 'del', ns);
    } catch {}
  }
});

/** Remove what this process's namespaces and receivers left (for an afterAll); returns the namespaces removed. */
export function removeLeftovers() {
  for (const c of live.children) c.kill('SIGKILL');
  live.children.clear();
  const left = ourNamespaces();
  for (const ns of left) ip('netns', 'del', ns);
  live.namespaces.clear();
  return left;
}

/**
 * Two namespaces `a` and `b` (files for setns in `path`) with an interface each, `a.dev` at
 * `<net>.1/24` and `b.dev` at `<net>.2/24`, both up: `join(a, b)` makes the two interfaces once
 * the namespaces exist. Removed with the namespaces on dispose, or when any step fails.
 */
function namespacePair(devPrefix, net, join) {
  const id = `${process.pid}-${serial++}`;
  const a = { name: `bpfkit-${id}-a`, dev: `${devPrefix}a${id}`.slice(0, 15), addr: `${net}.1` };
  const b = { name: `bpfkit-${id}-b`, dev: `${devPrefix}b${id}`.slice(0, 15), addr: `${net}.2` };
  const made = [];
  const dispose = () => {
    for (const ns of made.splice(0)) {
      ip('netns', 'del', ns);
      live.namespaces.delete(ns);
    }
  };
  try {
    for (const ns of [a, b]) {
      ip('netns', 'add', ns.name);
      made.push(ns.name);
      live.namespaces.add(ns.name);
      ns.path = `/run/netns/${ns.name}`;
    }
    join(a, b);
    for (const ns of [a, b]) {
      ip('-n', ns.name, 'addr', 'add', `${ns.addr}/24`, 'dev', ns.dev);
      ip('-n', ns.name, 'link', 'set', ns.dev, 'up');
      ip('-n', ns.name, 'link', 'set', 'lo', 'up');
    }
  } catch (e) {
    dispose();
    throw e;
  }
  return { a, b, [Symbol.dispose]: dispose };
}

/**
 * Two namespaces `a` and `b` joined by a veth pair: `a.dev` (10.201.0.1/24) in `a`, `b.dev`
 * (10.201.0.2/24) in `b`, both up. `path` is the namespace's file for setns.
 */
export function vethPair() {
  return namespacePair('bx', '10.201.0', (a, b) =>
    ip('link', 'add', a.dev, 'netns', a.name, 'type', 'veth', 'peer', 'name', b.dev, 'netns', b.name),
  );
}

const cstr = (type, text) => ({ type, data: new TextEncoder().encode(`${text}\0`) });

/**
 * The RTM_NEWLINK payload that makes a netkit pair (Debian 12's iproute2 cannot): the primary
 * named `primary` where the request is sent, the peer named `peer` in the namespace open as fd
 * `peerNsFd`, in `mode` (NetkitMode). The peer's info is a struct ifinfomsg and its attributes.
 */
export function encodeNewNetkit({ primary, peer, peerNsFd, mode = NetkitMode.L2 }) {
  const peerAttrs = encodeAttrs([cstr(Ifla.IFNAME, peer), nlS32(Ifla.NET_NS_FD, peerNsFd)]);
  const ifi = encodeIfinfomsg(0);
  const peerInfo = new Uint8Array(ifi.length + peerAttrs.length);
  peerInfo.set(ifi);
  peerInfo.set(peerAttrs, ifi.length);
  const attrs = encodeAttrs([
    cstr(Ifla.IFNAME, primary),
    {
      type: Ifla.LINKINFO,
      nested: [
        cstr(IflaInfo.KIND, 'netkit'),
        {
          type: IflaInfo.DATA,
          nested: [nlU32(IflaNetkit.MODE, mode), { type: IflaNetkit.PEER_INFO, data: peerInfo }],
        },
      ],
    },
  ]);
  const out = new Uint8Array(ifi.length + attrs.length);
  out.set(ifi);
  out.set(attrs, ifi.length);
  return out;
}

/**
 * Two namespaces `a` and `b` joined by a netkit pair (6.7+, CONFIG_NETKIT) in L2 mode, made
 * with our own rtnetlink: the primary `a.dev` (10.202.0.1/24) in `a`, the peer `b.dev`
 * (10.202.0.2/24) in `b`, both up. Removed with the namespaces on dispose.
 */
export function netkitPair() {
  return namespacePair('bk', '10.202.0', (a, b) => {
    const peerNsFd = openSync(b.path, 'r');
    try {
      withNetns(a.path, () => {
        const nl = new NetlinkSocket();
        try {
          nl.request(
            Rtm.NEWLINK,
            Defines.NLM_F_CREATE | Defines.NLM_F_EXCL,
            encodeNewNetkit({ primary: a.dev, peer: b.dev, peerNsFd }),
            'RTM_NEWLINK netkit',
            `${a.dev} in ${a.name}, peer ${b.dev} in ${b.name}`,
          );
        } finally {
          nl.close();
        }
      });
    } finally {
      closeSync(peerNsFd);
    }
  });
}

const RECEIVER = `
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m) => process.stdout.write(m.toString() + '\\n'));
s.bind(Number(process.argv[2]), process.argv[1], () => process.stdout.write('ready\\n'));
`;
const SENDER = `
const s = require('node:dgram').createSocket('udp4');
const [addr, port, ...msgs] = process.argv.slice(1);
(async () => {
  for (const m of msgs) await new Promise((r, j) => s.send(m, Number(port), addr, (e) => (e ? j(e) : r())));
  s.close();
})();
`;

/**
 * A UDP receiver on `addr:port` inside namespace `ns`: `got` holds the datagrams received so
 * far; `until(check)` resolves once `check()` holds, looking again on each datagram (and on the
 * next turn of the loop, for conditions such as a map's counter that have no event).
 */
export async function udpReceiver(ns, addr, port) {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', RECEIVER, addr, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  live.children.add(child);
  child.once('exit', () => live.children.delete(child));
  const got = [];
  let wake = () => {};
  const lines = createInterface({ input: child.stdout });
  let ready;
  const isReady = new Promise((r, j) => {
    ready = r;
    child.once('exit', (code) => j(new Error(`UDP receiver in ${ns} exited (${code}) before it listened`)));
  });
  lines.on('line', (l) => {
    if (l === 'ready') return ready();
    got.push(l);
    wake();
  });
  await isReady;
  return {
    got,
    async until(check) {
      while (!check())
        await new Promise((r) => {
          wake = r;
          setTimeout(r, 10);
        });
    },
    async [Symbol.asyncDispose]() {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill();
      await gone;
    },
  };
}

/** Send each of `msgs` as a datagram to `addr:port` from namespace `ns`, in order; resolves once all are sent. */
export function udpSend(ns, addr, port, msgs) {
  execFileSync('ip', ['netns', 'exec', ns, process.execPath, '-e', SENDER, addr, String(port), ...msgs], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

/**
 * Send drop and pass datagrams from `net.a` to `net.b` on `port` (payloads 'D1-tag', 'P1-tag', …,
 * three of each); wait for the passes to arrive and `counter` (slot 0 of an array map) to grow by
 * three. Returns what arrived, sorted, and how much the counter grew.
 */
export async function dropExchange(net, counter, port, tag) {
  const rx = await udpReceiver(net.b.name, net.b.addr, port);
  try {
    const before = counter.get(0) ?? 0n;
    const msgs = [`D1-${tag}`, `P1-${tag}`, `D2-${tag}`, `P2-${tag}`, `D3-${tag}`, `P3-${tag}`];
    udpSend(net.a.name, net.b.addr, port, msgs);
    await rx.until(() => rx.got.length >= 3 && (counter.get(0) ?? 0n) - before >= 3n);
    return { got: [...rx.got].sort(), dropped: (counter.get(0) ?? 0n) - before };
  } finally {
    await rx[Symbol.asyncDispose]();
  }
}
