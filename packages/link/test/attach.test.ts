import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Builder, R0, R1, R2, R3, R6, R7, reg } from '@bpfkit/asm';
import {
  attachRawTracepoint,
  attachSocketFilter,
  attachTracepoint,
  attachTracing,
  attachUprobe,
  Link,
  tracefsRoot,
  tracepointId,
} from '@bpfkit/link';
import { Program } from '@bpfkit/loader';
import { BpfMap, u32, u64 } from '@bpfkit/maps';
import { AttachType, BpfError, linkCreate, progQuery } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';
import { tempCgroup } from '../../../tools/testing/kernel.js';
import { addToSlot0, storeToSlot } from '../../../tools/testing/programs.js';
import { receive, udpPair } from '../../../tools/testing/udp.js';

describe('socket filter', () => {
  it('drops chosen datagrams on a real UDP socket', async () => {
    // The filter sees the datagram from its UDP header: payload starts at byte 8.
    const b = new Builder()
      .mov64(R6, reg(R1))
      .ldAbs('b', 8)
      .jeq(R0, 'X'.charCodeAt(0), 'drop')
      .mov64(R0, 0xffff)
      .exit()
      .label('drop')
      .mov64(R0, 0)
      .exit();
    using prog = Program.load({ type: 'socket_filter', license: 'GPL', instructions: b });
    await using net = await udpPair();
    const both = async () => {
      await net.send('Xdrop-me');
      await net.send('keep-me');
    };
    const before = await receive(net.rx, net.port, both, { passed: 2 });
    expect(before.got.sort()).toEqual(['Xdrop-me', 'keep-me']);
    {
      using _filter = attachSocketFilter(prog, net.rx as never);
      const filtered = await receive(
        net.rx,
        net.port,
        async () => {
          await both();
          await net.send('Xagain');
        },
        { passed: 1, dropped: 2 },
      );
      expect(filtered).toEqual({ got: ['keep-me'], dropped: 2 }); // the kernel counted both drops
    }
    const after = await receive(net.rx, net.port, () => net.send('Xback'), { passed: 1 });
    expect(after).toEqual({ got: ['Xback'], dropped: 0 });
    expect(() => attachSocketFilter(prog, {} as never)).toThrow(TypeError);
  });
});

describe('raw tracepoint', () => {
  it('counts this thread’s syscalls into a map', async () => {
    using counts = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 1 });
    // The main thread only (its tid is the pid): another thread of the process may be inside a
    // syscall while the link goes, and a run already under way finishes after the detach.
    const b = new Builder().call('get_current_pid_tgid').mov32(R0, reg(R0)).jne(R0, process.pid, 'out');
    addToSlot0(b, 'counts', 1).label('out').mov64(R0, 0).exit();
    using prog = Program.load({ type: 'raw_tracepoint', license: 'GPL', instructions: b, maps: { counts } });
    {
      using link = attachRawTracepoint(prog, 'sys_enter');
      expect(link.info).toMatchObject({
        typeName: 'raw_tracepoint',
        progId: prog.info.id,
        rawTracepointTpName: 'sys_enter',
      });
      for (let i = 0; i < 50; i++) closeSync(openSync('/proc/self/stat', 'r'));
      const n = counts.get(0)!;
      expect(n).toBeGreaterThanOrEqual(100n); // 50 × (openat + close)
    }
    const settled = counts.get(0)!;
    closeSync(openSync('/proc/self/stat', 'r'));
    expect(counts.get(0)).toBe(settled + 0n); // detached: no more counting (the lookup itself is bpf(2), not counted either)
    expect(() => attachRawTracepoint(prog, 'no_such_tp')).toThrow(
      expect.objectContaining({ code: 'ENOENT' }),
    );
  });

  it('attachTracing needs a BTF-typed program', () => {
    using prog = Program.load({
      type: 'raw_tracepoint',
      license: 'GPL',
      instructions: new Builder().mov64(R0, 0).exit(),
    });
    expect(() => attachTracing(prog)).toThrow(/needs a program loaded with an attachType/);
  });
});

describe('stack_trace map', () => {
  it('bpf_get_stackid stores this process’s user and kernel stacks; the map decodes them to addresses', () => {
    // many buckets, and BPF_F_REUSE_STACKID: two stacks hashing alike must not fail get_stackid
    using stacks = BpfMap.create({ type: 'stack_trace', key: u32, value: 8 * 127, maxEntries: 1 << 14 });
    using ids = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 2 });
    const BPF_F_USER_STACK = 1 << 8;
    const BPF_F_REUSE_STACKID = 1 << 10;
    const b = new Builder()
      .mov64(R6, reg(R1))
      .call('get_current_pid_tgid')
      .rsh64(R0, 32)
      .jne(R0, process.pid, 'out');
    for (const [slot, flags] of [
      [0, BPF_F_USER_STACK | BPF_F_REUSE_STACKID],
      [1, BPF_F_REUSE_STACKID],
    ] as const) {
      b.mov64(R1, reg(R6)).ldMap(R2, 'stacks').mov64(R3, flags).call('get_stackid').jslt(R0, 0, 'out');
      b.add64(R0, 1).mov64(R7, reg(R0)); // store id + 1: 0 means "never ran"
      storeToSlot(b, 'ids', slot, R7);
    }
    b.label('out').mov64(R0, 0).exit();
    using prog = Program.load({
      type: 'raw_tracepoint',
      license: 'GPL',
      instructions: b,
      maps: { stacks, ids },
    });
    let maps: string;
    {
      using _link = attachRawTracepoint(prog, 'sys_enter');
      maps = readFileSync('/proc/self/maps', 'utf8');
    }
    const userId = Number(ids.get(0)) - 1;
    const kernelId = Number(ids.get(1)) - 1;
    expect(userId).toBeGreaterThanOrEqual(0);
    const user = stacks.get(userId)!;
    const kernel = stacks.get(kernelId)!;
    expect(user.length).toBeGreaterThan(0);
    // the innermost user frame is the syscall instruction, inside an executable mapping of ours
    const exec = maps
      .split('\n')
      .filter((l) => / r-xp /.test(l))
      .map(
        (l) =>
          l
            .split(' ')[0]!
            .split('-')
            .map((h) => BigInt(`0x${h}`)) as [bigint, bigint],
      );
    expect(exec.some(([lo, hi]) => user[0]! >= lo && user[0]! < hi)).toBe(true);
    expect(kernel.length).toBeGreaterThan(0);
    for (const ip of kernel) expect(ip >= 0xffff800000000000n).toBe(true);
    expect([...stacks.keys()]).toEqual(expect.arrayContaining([userId, kernelId])); // one per distinct stack seen
    expect(stacks.delete(kernelId)).toBe(true);
    expect(stacks.has(kernelId)).toBe(false);
    expect(stacks.get(userId)).toEqual(user);
    // lookup-and-delete of a stack trace arrived after 6.1: a NotSupportedError names it there
    expect(stacks.getAndDelete(userId)).toEqual(user);
    expect(stacks.has(userId)).toBe(false);
  });
});

describe('tail calls', () => {
  it('a chain runs through a program array', () => {
    using jumps = BpfMap.create({ type: 'prog_array', key: u32, value: u32, maxEntries: 4 });
    const tail = (idx: number) =>
      new Builder()
        .mov64(R6, reg(R1))
        .ldMap(R2, 'jumps')
        .mov64(R3, idx)
        .call('tail_call')
        .mov64(R0, 1000 + idx) // only when the slot is empty
        .exit();
    using last = Program.load({
      type: 'socket_filter',
      license: 'GPL',
      instructions: new Builder().mov64(R0, 42).exit(),
    });
    using middle = Program.load({
      type: 'socket_filter',
      license: 'GPL',
      instructions: tail(2),
      maps: { jumps },
    });
    using first = Program.load({
      type: 'socket_filter',
      license: 'GPL',
      instructions: tail(1),
      maps: { jumps },
    });
    expect(first.testRun({ data: new Uint8Array(20) }).retval).toBe(1001);
    jumps.set(1, middle);
    expect(first.testRun({ data: new Uint8Array(20) }).retval).toBe(1002);
    jumps.set(2, last);
    expect(first.testRun({ data: new Uint8Array(20) }).retval).toBe(42);
    expect(jumps.get(2)).toBe(last.info.id);
    jumps.delete(2);
    expect(first.testRun({ data: new Uint8Array(20) }).retval).toBe(1002);
  });
});

describe('Link', () => {
  it('updates atomically, refuses a stale replace, detaches', () => {
    using cg = tempCgroup();
    const cgFd = openSync(cg.path, 'r');
    try {
      const load = (ret: number) =>
        Program.load({
          type: 'cgroup_skb',
          license: 'GPL',
          attachType: 'cgroup_inet_egress',
          instructions: new Builder().mov64(R0, ret).exit(),
        });
      using a = load(1);
      using b = load(1);
      using link = new Link(
        linkCreate({ progFd: a.fd.value, targetFd: cgFd, attachType: AttachType.CGROUP_INET_EGRESS }),
      );
      expect(link.info.progId).toBe(a.info.id);
      link.update(b, { expected: a });
      expect(link.info.progId).toBe(b.info.id);
      expect(() => link.update(a, { expected: a })).toThrow(BpfError);
      using again = Link.fromId(link.info.id);
      expect(again.info.progId).toBe(b.info.id);
      link.detach();
      expect(progQuery({ targetFd: cgFd, attachType: AttachType.CGROUP_INET_EGRESS }).progCnt).toBe(0);
      using notALink = a.fd.dup();
      expect(() => Link.fromFd(notALink)).toThrow(/is a BPF prog, not a link/);
    } finally {
      closeSync(cgFd);
    }
  });
});

describe('tracepoint names', () => {
  it('a tracefs this process cannot read is not "no tracepoint in this kernel"', () => {
    const file = join(tracefsRoot(), 'events', 'syscalls', 'sys_enter_getppid', 'id');
    // can "other" (nobody) reach and read it? Recent kernels make tracefs root's (0700).
    const dirs = file
      .split('/')
      .slice(1, -1)
      .map((_, i, a) => `/${a.slice(0, i + 1).join('/')}`);
    const readable = dirs.every((d) => statSync(d).mode & 0o001) && statSync(file).mode & 0o004;
    const script = `
      process.setgid(65534); process.setuid(65534);
      const { tracepointId } = await import('@bpfkit/link');
      try { tracepointId('syscalls', 'sys_enter_getppid'); console.log(JSON.stringify('ok')); }
      catch (e) { console.log(JSON.stringify(e.message)); }
    `;
    const asNobody = JSON.parse(
      execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        cwd: new URL('..', import.meta.url),
        encoding: 'utf8',
      }),
    );
    if (readable) expect(asNobody).toBe('ok');
    else
      expect(asNobody).toMatch(
        /^cannot read tracepoint 'syscalls\/sys_enter_getppid' from tracefs: .*EACCES/,
      );
    // as root, a missing one is named as missing
    expect(() => tracepointId('syscalls', 'no_such_tp')).toThrow(
      /no tracepoint 'syscalls\/no_such_tp' in this kernel/,
    );
  });
});

describe('program type per hook', () => {
  it('a program of the wrong type is named before anything is opened, not an EINVAL from an ioctl', () => {
    using filter = Program.load({
      type: 'socket_filter',
      license: 'GPL',
      name: 'not_a_tp',
      instructions: new Builder().mov64(R0, 0).exit(),
    });
    const fds = readdirSync('/proc/self/fd').length;
    expect(() => attachTracepoint(filter, 'syscalls', 'sys_enter_getppid')).toThrow(
      "tracepoint syscalls/sys_enter_getppid runs tracepoint programs, not socket_filter ('not_a_tp')",
    );
    expect(() => attachUprobe(filter, process.execPath, 'main')).toThrow(
      /^uprobe .* runs kprobe programs, not socket_filter/,
    );
    expect(readdirSync('/proc/self/fd').length).toBe(fds); // no perf event left open
  });
});
