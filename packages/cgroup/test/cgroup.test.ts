import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Builder, R0, R1, R2, R3, R4, R6, R10, reg } from '@bpfkit/asm';
import { Btf } from '@bpfkit/btf';
import { Cgroup, cgroup2Mount } from '@bpfkit/cgroup';
import { attachCgroup, attachRawTracepoint, CgroupAttachment, Link, queryCgroup } from '@bpfkit/link';
import { Program } from '@bpfkit/loader';
import { BpfMap, u32, u64 } from '@bpfkit/maps';
import { NativeBuffer, objPin } from '@bpfkit/sys';
import { afterAll, describe, expect, it } from 'vitest';
import { tempBpffs } from '../../../tools/testing/kernel.js';
import { addToSlot0, storeToSlot } from '../../../tools/testing/programs.js';
import { receive, udpPair } from '../../../tools/testing/udp.js';

afterAll(() => {
  // nothing of ours is left in the cgroup tree
  expect(readdirSync(cgroup2Mount()).filter((d) => d.startsWith(`bpfkit-test-${process.pid}-`))).toEqual([]);
});

const htons = (p: number) => ((p & 0xff) << 8) | (p >> 8);
const uniq = () => `bpfkit-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

/**
 * Start `script` (an async ES module body; `print(x)` reports a line) in a node child that is
 * moved into `cg` before it runs. `next()` resolves each printed value; `done` the exit.
 */
function inCgroup(cg: Cgroup, script: string) {
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const print = (x) => process.stdout.write(JSON.stringify(x) + '\\n');
       process.stdin.once('data', async () => { try { ${script} } catch (e) { print({ error: e.code ?? e.message }); } process.exit(0); });`,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  cg.addProcess(child.pid!);
  child.stdin.end('go\n');
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const done = once(child, 'close'); // exited, and its stdio pipes are closed
  return {
    next: async () => JSON.parse((await lines.next()).value as string) as unknown,
    done,
    all: async () => {
      const out: unknown[] = [];
      for (;;) {
        const r = await lines.next();
        if (r.done) {
          await done;
          return out;
        }
        out.push(JSON.parse(r.value));
      }
    },
  };
}

function load(
  type: string,
  attachType: string,
  b: Builder,
  maps?: Record<string, BpfMap<unknown, unknown>>,
): Program {
  return Program.load({
    type: type as never,
    attachType: attachType as never,
    license: 'GPL',
    instructions: b,
    ...(maps ? { maps } : {}),
  });
}
const returns = (v: number) => new Builder().mov64(R0, v).exit();

describe('cgroups', () => {
  it('finds the v2 hierarchy, creates a child, moves a process in, removes it', async () => {
    expect(cgroup2Mount()).toMatch(/^\/sys\/fs\/cgroup/);
    const name = uniq();
    {
      using cg = Cgroup.create(name);
      expect(cg.id).toBeGreaterThan(0n);
      const c = inCgroup(cg, `print((await import('node:fs')).readFileSync('/proc/self/cgroup', 'utf8'))`);
      expect(await c.next()).toContain(`0::${cg.name}`);
      await c.done;
      expect(Cgroup.ofProcess().name).not.toBe(cg.name);
    }
    expect(() => Cgroup.open(name)).toThrow();
    expect(() => Cgroup.open('/tmp')).toThrow(/not a cgroup v2 directory/);
    expect(() => Cgroup.create('a/b')).toThrow(/bad cgroup name/);
  });
});

describe('Cgroup.spawn', () => {
  it('starts the command already inside the cgroup', async () => {
    using cg = Cgroup.create(uniq());
    const child = cg.spawn('cat', ['/proc/self/cgroup'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
    });
    const [code] = await once(child, 'close');
    expect(code).toBe(0);
    expect(out).toContain(`0::${cg.name}\n`); // cat itself read it: it never ran outside
    expect(cg.processes()).toEqual([]);
    expect(() => cg.spawn('true', [], { shell: true } as never)).toThrow(/shell/);
  });

  it('does not run the command when the move fails', async () => {
    const cg = Cgroup.create(uniq());
    cg.remove();
    const child = cg.spawn('touch', ['/nonexistent-dir/x'], { stdio: 'ignore' });
    const [code] = await once(child, 'close');
    expect(code).toBe(126);
  });
});

describe('cleanup of created cgroups', () => {
  const dist = new URL('../dist/index.bundle.js', import.meta.url).href;
  /**
   * A node child that creates a cgroup (not disposed) and prints its path; once told (a line on
   * its stdin, after the test saw the cgroup) it runs `then` and says so. Nothing races the clock.
   */
  async function childMaking(then: string, signal?: NodeJS.Signals) {
    const name = uniq();
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { Cgroup } = await import(${JSON.stringify(dist)});
         const cg = Cgroup.create(${JSON.stringify(name)}); cg.child('inner');
         process.stdout.write(cg.path + '\\n');
         process.stdin.once('data', () => { process.stdin.destroy(); ${then}; process.stdout.write('ran\\n'); });`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const rl = createInterface({ input: child.stdout! });
    const lines = rl[Symbol.asyncIterator]();
    try {
      const path = (await lines.next()).value as string;
      expect(existsSync(join(path, 'inner'))).toBe(true);
      child.stdin!.end('go\n');
      expect((await lines.next()).value).toBe('ran');
      if (signal) child.kill(signal);
      const [code, sig] = await once(child, 'close');
      return { path, code, sig };
    } finally {
      rl.close();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }

  it('removes them on normal exit, children first', async () => {
    const r = await childMaking('');
    expect(r.code).toBe(0);
    expect(existsSync(r.path)).toBe(false);
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('removes them on %s and still dies of the signal', async (s) => {
    const r = await childMaking('setInterval(() => {}, 1000);', s);
    expect(r.sig).toBe(s);
    expect(existsSync(r.path)).toBe(false);
  });

  it('leaves the signal to a listener of its own, and still removes them at exit', async () => {
    const r = await childMaking(
      `process.on('SIGTERM', () => { process.stdout.write('handled\\n'); process.exit(3); }); setInterval(() => {}, 1000);`,
      'SIGTERM',
    );
    expect(r.code).toBe(3);
    expect(existsSync(r.path)).toBe(false);
  });
});

describe('cgroup_array', () => {
  it('tells a program whether the current task is under the cgroup in a slot', () => {
    using cgs = BpfMap.create({ type: 'cgroup_array', key: u32, value: u32, maxEntries: 2 });
    using out = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 2 });
    using child = Cgroup.create(uniq());
    using rootFd = Cgroup.root().open();
    using childFd = child.open();
    cgs.set(0, rootFd); // every task is under the root
    cgs.set(1, childFd); // this process is not in the new child
    const b = new Builder().call('get_current_pid_tgid').rsh64(R0, 32).jne(R0, process.pid, 'out');
    for (const slot of [0, 1]) {
      b.ldMap(R1, 'cgs').mov64(R2, slot).call('current_task_under_cgroup').add64(R0, 100).mov64(R6, reg(R0));
      storeToSlot(b, 'out', slot, R6);
    }
    b.label('out').mov64(R0, 0).exit();
    using prog = Program.load({
      type: 'raw_tracepoint',
      license: 'GPL',
      instructions: b,
      maps: { cgs, out },
    });
    {
      using _link = attachRawTracepoint(prog, 'sys_enter');
      readdirSync('/proc/self');
    }
    expect([out.get(0), out.get(1)]).toEqual([101n, 100n]); // 1: under it, 0: not
    cgs.delete(1);
  });
});

describe('effects on loopback', () => {
  it('an egress skb program drops a UDP datagram sent from inside the cgroup; outside is unaffected', async () => {
    await using net = await udpPair();
    const port = net.port;
    // drop datagrams to `port`: the IPv4 header comes first, the UDP destination port is at 22
    const b = new Builder()
      .mov64(R6, reg(R1))
      .mov64(R1, reg(R6))
      .mov64(R2, 22)
      .mov64(R3, reg(R10))
      .add64(R3, -4)
      .mov64(R4, 2)
      .call('skb_load_bytes')
      .jne(R0, 0, 'allow')
      .ldx('h', R1, R10, -4)
      .jeq(R1, htons(port), 'drop')
      .label('allow')
      .mov64(R0, 1)
      .exit()
      .label('drop')
      .mov64(R0, 0)
      .exit();
    using prog = load('cgroup_skb', 'cgroup_inet_egress', b);
    using cg = Cgroup.create(uniq());
    using _att = attachCgroup(prog, cg, 'cgroup_inet_egress');
    const c = inCgroup(
      cg,
      `const s = (await import('node:dgram')).createSocket('udp4');
       print(await new Promise((res) => s.send('from-inside', ${port}, '127.0.0.1', (e) => res(e ? e.code : 'sent'))));
       s.close();`,
    );
    expect(await c.all()).toEqual(['EPERM']); // refused on its way out: it never reached the socket
    const outside = await receive(net.rx, port, () => net.send('from-outside'), { passed: 1 });
    expect(outside).toEqual({ got: ['from-outside'], dropped: 0 });
  });

  it('a counting ingress program counts the bytes a process in the cgroup receives', async () => {
    using counts = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 1 });
    const b = addToSlot0(new Builder().ldx('w', R6, R1, 0), 'counts', reg(R6))
      .label('out')
      .mov64(R0, 1)
      .exit();
    using prog = load('cgroup_skb', 'cgroup_inet_ingress', b, { counts });
    using cg = Cgroup.create(uniq());
    using _att = attachCgroup(prog, cg, 'cgroup_inet_ingress');
    const c = inCgroup(
      cg,
      `const s = (await import('node:dgram')).createSocket('udp4');
       s.bind(0, '127.0.0.1'); await new Promise((r) => s.once('listening', r)); print(s.address().port);
       let n = 0; await new Promise((r) => s.on('message', () => { if (++n === 5) r(); })); print(n); s.close();`,
    );
    const port = (await c.next()) as number;
    const tx = createSocket('udp4');
    for (let i = 0; i < 5; i++)
      await new Promise<void>((res) => tx.send(Buffer.alloc(100, i), port, '127.0.0.1', () => res()));
    expect(await c.next()).toBe(5);
    await c.done;
    tx.close();
    expect(counts.get(0)).toBe(5n * (20n + 8n + 100n)); // IPv4 + UDP headers + payload, per datagram
  });

  it('a connect4 program rejects connects to a chosen port', async () => {
    const server = createServer((s) => s.end());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const open = (server.address() as { port: number }).port;
    const banned = open === 65535 ? open - 1 : open + 1;
    const btf = Btf.kernel();
    const userPort = btf.member(btf.find('bpf_sock_addr', 'struct').id, 'user_port').bitOffset / 8;
    const b = new Builder()
      .ldx('w', R2, R1, userPort)
      .mov64(R0, 1)
      .jne(R2, htons(banned), 'out')
      .mov64(R0, 0)
      .label('out')
      .exit();
    using prog = load('cgroup_sock_addr', 'cgroup_inet4_connect', b);
    using cg = Cgroup.create(uniq());
    using _att = attachCgroup(prog, cg, 'cgroup_inet4_connect');
    const tryConnect = (port: number) =>
      `print(await new Promise((res) => { const s = (globalThis.net).connect(${port}, '127.0.0.1');
         s.on('connect', () => { s.destroy(); res('connected'); }); s.on('error', (e) => res(e.code)); }));`;
    const c = inCgroup(
      cg,
      `globalThis.net = await import('node:net'); ${tryConnect(banned)} ${tryConnect(open)}`,
    );
    expect(await c.all()).toEqual(['EPERM', 'connected']);
    server.close();
  });

  it('a device program denies opening /dev/null', async () => {
    // struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }: /dev/null is 1:3
    const b = new Builder()
      .ldx('w', R2, R1, 4)
      .ldx('w', R3, R1, 8)
      .mov64(R0, 1)
      .jne(R2, 1, 'out')
      .jne(R3, 3, 'out')
      .mov64(R0, 0)
      .label('out')
      .exit();
    using prog = load('cgroup_device', 'cgroup_device', b);
    using cg = Cgroup.create(uniq());
    using _att = attachCgroup(prog, cg, 'cgroup_device');
    const c = inCgroup(
      cg,
      `const fs = await import('node:fs');
       for (const dev of ['/dev/null', '/dev/zero']) { try { fs.closeSync(fs.openSync(dev, 'r')); print('opened'); } catch (e) { print(e.code); } }`,
    );
    expect(await c.all()).toEqual(['EPERM', 'opened']);
  });

  it('a sysctl program denies a write but not a read', async () => {
    // struct bpf_sysctl { u32 write; ... }
    const b = new Builder()
      .ldx('w', R2, R1, 0)
      .mov64(R0, 1)
      .jeq(R2, 0, 'out')
      .mov64(R0, 0)
      .label('out')
      .exit();
    using prog = load('cgroup_sysctl', 'cgroup_sysctl', b);
    using cg = Cgroup.create(uniq());
    using _att = attachCgroup(prog, cg, 'cgroup_sysctl');
    const c = inCgroup(
      cg,
      `const fs = await import('node:fs'); const f = '/proc/sys/kernel/hostname';
       const v = fs.readFileSync(f, 'utf8'); print('read');
       try { fs.writeFileSync(f, v); print('written'); } catch (e) { print(e.code); }`,
    );
    expect(await c.all()).toEqual(['read', 'EPERM']);
  });
});

describe('attach modes, order, replace, query', () => {
  it('legacy multi-attach runs in order; replace swaps one atomically; detach removes', () => {
    using cg = Cgroup.create(uniq());
    using a = load('cgroup_skb', 'cgroup_inet_egress', returns(1));
    using b = load('cgroup_skb', 'cgroup_inet_egress', returns(1));
    using c = load('cgroup_skb', 'cgroup_inet_egress', returns(1));
    const A = attachCgroup(a, cg, 'cgroup_inet_egress', { flags: 'multi' }) as CgroupAttachment;
    using B = attachCgroup(b, cg, 'cgroup_inet_egress', { flags: 'multi' });
    expect(A).toBeInstanceOf(CgroupAttachment);
    expect(queryCgroup(cg, 'cgroup_inet_egress')).toMatchObject({
      progIds: [a.info.id, b.info.id],
      attachFlags: 2,
    });
    using C = attachCgroup(c, cg, 'cgroup_inet_egress', { flags: 'multi', replace: a });
    expect(queryCgroup(cg, 'cgroup_inet_egress').progIds).toEqual([c.info.id, b.info.id]);
    // A was replaced: detaching it now finds nothing
    expect(() => A.detach()).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    B.detach();
    C.detach();
    expect(queryCgroup(cg, 'cgroup_inet_egress').progIds).toEqual([]);
  });

  it('override: a child cgroup’s program replaces its parent’s in effect', () => {
    using parent = Cgroup.create(uniq());
    using child = parent.child('child');
    using p = load('cgroup_skb', 'cgroup_inet_ingress', returns(1));
    using q = load('cgroup_skb', 'cgroup_inet_ingress', returns(1));
    using _pa = attachCgroup(p, parent, 'cgroup_inet_ingress', { flags: 'override' });
    expect(queryCgroup(child, 'cgroup_inet_ingress', { effective: true }).progIds).toEqual([p.info.id]);
    using _qa = attachCgroup(q, child, 'cgroup_inet_ingress', { flags: 'override' });
    expect(queryCgroup(child, 'cgroup_inet_ingress', { effective: true }).progIds).toEqual([q.info.id]);
    expect(queryCgroup(child, 'cgroup_inet_ingress').progIds).toEqual([q.info.id]);
  });

  it('links: auto picks BPF_LINK_CREATE; links update atomically, pin, and stack with effective programs', () => {
    using fs = tempBpffs();
    using parent = Cgroup.create(uniq());
    using child = parent.child('c');
    using a = load('cgroup_skb', 'cgroup_inet_egress', returns(1));
    using b = load('cgroup_skb', 'cgroup_inet_egress', returns(1));
    using link = attachCgroup(a, parent, 'cgroup_inet_egress') as Link;
    expect(link).toBeInstanceOf(Link);
    expect(link.info).toMatchObject({ typeName: 'cgroup', progId: a.info.id });
    using childLink = attachCgroup(b, child, 'cgroup_inet_egress', { mode: 'link' }) as Link;
    expect(queryCgroup(child, 'cgroup_inet_egress', { effective: true }).progIds.sort()).toEqual(
      [a.info.id, b.info.id].sort(),
    );
    link.update(b);
    expect(queryCgroup(parent, 'cgroup_inet_egress').progIds).toEqual([b.info.id]);
    using path = NativeBuffer.from(join(fs.path, 'cg_link'));
    objPin({ pathname: path.ptr, bpfFd: link.fd.value });
    link.close();
    expect(queryCgroup(parent, 'cgroup_inet_egress').progIds).toEqual([b.info.id]); // the pin keeps it attached
    childLink.detach();
    expect(queryCgroup(child, 'cgroup_inet_egress').progIds).toEqual([]);
    expect(() => attachCgroup(a, parent, 'cgroup_inet_egress', { mode: 'link', flags: 'override' })).toThrow(
      /legacy attach/,
    );
    expect(() => attachCgroup(a, parent, 'xdp')).toThrow(/does not target a cgroup/);
    // the wrong program type for the hook is named before the syscall (not the kernel's EINVAL)
    expect(() => attachCgroup(a, parent, 'cgroup_inet4_connect')).toThrow(
      new TypeError('attach type cgroup_inet4_connect runs cgroup_sock_addr programs, not cgroup_skb'),
    );
    expect(() => attachCgroup(a, parent, 'cgroup_sock_ops', { mode: 'legacy' })).toThrow(
      /runs sock_ops programs/,
    );
    // unknown options are refused, and nothing is attached by the refused calls
    expect(() => attachCgroup(a, parent, 'cgroup_inet_egress', { mode: 'bogus' as never })).toThrow(
      "attach mode must be one of 'auto', 'link', 'legacy', got 'bogus'",
    );
    expect(() => attachCgroup(a, parent, 'cgroup_inet_egress', { flags: 'multiple' as never })).toThrow(
      TypeError,
    );
    expect(() => attachCgroup(a, parent, 'cgroup_inet_egress', { flags: 2 ** 32 })).toThrow(RangeError);
    expect(queryCgroup(parent, 'cgroup_inet_egress').progIds).toEqual([b.info.id]);
  });
});
