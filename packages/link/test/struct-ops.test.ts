// struct_ops: a TCP congestion control of our own (struct tcp_congestion_ops filled with struct_ops
// programs), registered, chosen with TCP_CONGESTION on a loopback connection in a namespace this
// file makes: the kernel runs its init program for that socket, the data flows, and the name
// leaves the available list on close.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { Builder, R0 } from '@bpfkit/asm';
import { attachCollection, StructOps, structOpsTarget } from '@bpfkit/link';
import { loadCollection, Program } from '@bpfkit/loader';
import { BpfMap, u32, u64 } from '@bpfkit/maps';
import { kernelOlderThan, NotSupportedError, setsockoptBytes, withNetns } from '@bpfkit/sys';
import { afterAll, describe, expect, it } from 'vitest';
import { requireFeature } from '../../../tools/testing/features.js';
import { ourNamespaces, removeLeftovers, vethPair } from '../../../tools/testing/netns.js';
import { addToSlot0 } from '../../../tools/testing/programs.js';

const IPPROTO_TCP = 6;
const TCP_CONGESTION = 13;

afterAll(() => {
  expect(ourNamespaces()).toEqual([]);
  expect(removeLeftovers()).toEqual([]);
});

/** A struct_ops program for member `member` of tcp_congestion_ops: counts its runs in `count` (if given), returns `ret`. */
function member(member: string, ret: number, count?: BpfMap<number, bigint>): Program {
  const t = structOpsTarget('tcp_congestion_ops', member);
  const b = new Builder();
  if (count) addToSlot0(b, 'count', 1).label('out');
  b.mov64(R0, ret).exit();
  return Program.load({
    type: 'struct_ops',
    attachType: t.attachType as never,
    attachBtfId: t.attachBtfId,
    license: 'GPL',
    name: member,
    instructions: b,
    ...(count ? { maps: { count } } : {}),
  });
}

/** Our congestion control: init counted in `inits`; ssthresh and undo_cwnd give 10 segments; cong_avoid does nothing. */
function congestionControl(inits: BpfMap<number, bigint>) {
  const programs = {
    init: member('init', 0, inits),
    ssthresh: member('ssthresh', 10),
    undo_cwnd: member('undo_cwnd', 10),
    cong_avoid: member('cong_avoid', 0),
  };
  return {
    programs,
    [Symbol.dispose]: () => {
      for (const p of Object.values(programs)) p.close();
    },
  };
}

const available = () =>
  readFileSync('/proc/sys/net/ipv4/tcp_available_congestion_control', 'utf8').trim().split(/\s+/);

const CLIENT = `
const c = require('node:net').connect(Number(process.argv[1]), '127.0.0.1');
let n = 0;
c.on('data', (d) => (n += d.length));
c.on('end', () => { process.stdout.write(String(n)); c.end(); });
`;

/**
 * A loopback TCP connection in namespace `ns`; the server end (ours) is switched to `cc` with
 * TCP_CONGESTION and sends 64 KiB to the client. Returns how many bytes arrived.
 */
async function connectionWith(ns: { name: string; path: string }, cc: string) {
  let accepted!: (s: Socket) => void;
  const conn = new Promise<Socket>((r) => (accepted = r));
  const srv = withNetns(ns.path, () => createServer((s) => accepted(s)).listen(0));
  try {
    const port = (srv.address() as { port: number }).port;
    const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', CLIENT, String(port)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const done = new Promise((r) => child.once('exit', r));
    const s = await conn;
    setsockoptBytes(
      (s as unknown as { _handle: { fd: number } })._handle.fd,
      IPPROTO_TCP,
      TCP_CONGESTION,
      cc,
    );
    s.end(Buffer.alloc(64 * 1024, 1));
    await done;
    return Number(out);
  } finally {
    await new Promise((r) => srv.close(r));
  }
}

describe.skipIf(process.env.BPFKIT_SKIP_PRIVILEGED === '1')('struct_ops', () => {
  for (const mode of ['legacy', 'auto'] as const) {
    it(`registers a TCP congestion control (${mode}) that a connection selects with TCP_CONGESTION, and unregisters it`, async (ctx) => {
      using inits = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 1 });
      requireFeature(ctx, 'struct_ops programs', { probe: () => member('ssthresh', 10).close() });
      using net = vethPair();
      using cc = congestionControl(inits);
      const name = `bpfkit_${mode}`;
      {
        using ops = StructOps.register(
          'tcp_congestion_ops',
          { programs: cc.programs, fields: { name } },
          { mode },
        );
        expect(ops.link !== undefined).toBe(mode === 'auto' && !kernelOlderThan('6.4'));
        expect(available()).toContain(name);
        expect(await connectionWith(net.b, name)).toBe(64 * 1024);
        expect(inits.get(0)).toBe(1n); // our init ran when the socket switched to it
      }
      expect(available()).not.toContain(name);
    });
  }

  it('a linked registration is updated to a new table in place, and checks what it is given', async (ctx) => {
    using inits = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 1 });
    using inits2 = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 1 });
    requireFeature(ctx, 'struct_ops programs', { probe: () => member('ssthresh', 10).close() });
    using net = vethPair();
    using cc = congestionControl(inits);
    using cc2 = congestionControl(inits2);
    expect(() =>
      StructOps.register(
        'tcp_congestion_ops',
        { programs: cc.programs, fields: { nmae: 'x' } },
        { mode: 'legacy' },
      ),
    ).toThrow(/no member 'nmae'/);
    expect(() =>
      StructOps.register(
        'tcp_congestion_ops',
        { programs: {}, fields: { name: 'a'.repeat(16) } },
        { mode: 'legacy' },
      ),
    ).toThrow(/at most 15 bytes/);
    const name = 'bpfkit_linked';
    {
      using ops = StructOps.register(
        'tcp_congestion_ops',
        { programs: cc.programs, fields: { name } },
        { mode: 'link' },
      );
      expect(ops.link?.info).toMatchObject({ typeName: 'struct_ops' });
      ops.update({ programs: cc2.programs, fields: { name } });
      expect(available()).toContain(name);
      expect(await connectionWith(net.b, name)).toBe(64 * 1024);
      expect([inits.get(0), inits2.get(0)]).toEqual([0n, 1n]); // the new table's init ran
    }
    expect(available()).not.toContain(name);
  });
});

// the fixtures are the loader's (its libbpf comparison loads them too)
const fixture = (name: string) => new URL(`../../loader/test/fixtures/${name}`, import.meta.url).pathname;

describe.skipIf(process.env.BPFKIT_SKIP_PRIVILEGED === '1')(
  'struct_ops from an ELF object (.struct_ops, .struct_ops.link)',
  () => {
    const probe = () => member('ssthresh', 10).close();

    it('struct_ops.bpf.o: the .struct_ops table registers on attach, a connection selects it and runs its programs, close unregisters', async (ctx) => {
      requireFeature(ctx, 'struct_ops programs', { probe });
      using net = vethPair();
      using c = loadCollection(fixture('struct_ops.bpf.o'));
      expect(Object.keys(c.structOps)).toEqual(['bpfkit_cc']);
      expect(c.program('cc_undo_cwnd').info.attachBtfId).toBe(
        structOpsTarget('tcp_congestion_ops', 'undo_cwnd').attachBtfId,
      );
      expect(available()).not.toContain('bpfkit_cc'); // created, not registered until attached (as libbpf)
      const calls = c.map('calls', { key: u32, value: u64 });
      {
        using ops = StructOps.fromCollection(c, 'bpfkit_cc');
        expect(ops.link).toBeUndefined();
        expect(available()).toContain('bpfkit_cc');
        expect(await connectionWith(net.b, 'bpfkit_cc')).toBe(64 * 1024);
        expect(calls.get(0)).toBeGreaterThan(0n); // our init (and cong_avoid) ran
      }
      expect(available()).not.toContain('bpfkit_cc');
      expect(() => StructOps.fromCollection(c, 'calls')).toThrow(/no struct_ops map 'calls'/);
    });

    it('struct_ops_link.bpf.o: both tables register through attachCollection (the .struct_ops.link one through a link, 6.4+) and leave on close', async (ctx) => {
      requireFeature(ctx, 'struct_ops programs', { probe });
      if (kernelOlderThan('6.4')) {
        const e = (() => {
          try {
            loadCollection(fixture('struct_ops_link.bpf.o')).close();
          } catch (err) {
            return err;
          }
        })();
        expect(e).toBeInstanceOf(NotSupportedError);
        expect(e).toMatchObject({
          since: '6.4',
          message: expect.stringMatching(/struct_ops links \(map 'bpfkit_cc_link'/),
        });
        return;
      }
      using net = vethPair();
      using c = loadCollection(fixture('struct_ops_link.bpf.o'));
      expect(c.map('bpfkit_cc_link').info.mapFlags).toBe(0x2000); // BPF_F_LINK
      const calls = c.map('calls', { key: u32, value: u64 });
      {
        using attached = attachCollection(c);
        expect(Object.keys(attached.attached).sort()).toEqual(['bpfkit_cc', 'bpfkit_cc_link']);
        expect((attached.attached.bpfkit_cc_link as StructOps).link?.info).toMatchObject({
          typeName: 'struct_ops',
        });
        expect(available()).toEqual(expect.arrayContaining(['bpfkit_cc', 'bpfkit_cc_link']));
        expect(await connectionWith(net.b, 'bpfkit_cc_link')).toBe(64 * 1024);
        expect(calls.get(0)).toBeGreaterThan(0n);
      }
      expect(available()).not.toContain('bpfkit_cc');
      expect(available()).not.toContain('bpfkit_cc_link');
    });

    it('struct_ops_link.bpf.o with its .struct_ops.link map not created (autocreate: false): the .struct_ops table registers on any kernel', async (ctx) => {
      requireFeature(ctx, 'struct_ops programs', { probe });
      using net = vethPair();
      using c = loadCollection(fixture('struct_ops_link.bpf.o'), {
        mapOptions: { bpfkit_cc_link: { autocreate: false } },
      });
      expect(Object.keys(c.structOps)).toEqual(['bpfkit_cc']);
      const calls = c.map('calls', { key: u32, value: u64 });
      {
        using attached = attachCollection(c);
        expect(Object.keys(attached.attached)).toEqual(['bpfkit_cc']);
        expect(available()).toContain('bpfkit_cc');
        expect(available()).not.toContain('bpfkit_cc_link');
        expect(await connectionWith(net.b, 'bpfkit_cc')).toBe(64 * 1024);
        expect(calls.get(0)).toBeGreaterThan(0n);
      }
      expect(available()).not.toContain('bpfkit_cc');
    });
  },
);
