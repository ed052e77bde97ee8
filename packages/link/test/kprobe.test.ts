// kprobes, kretprobes, ksyscall and kprobe.multi on real kernel functions this test triggers
// itself, counted only for this process's main thread. The host has no kprobes (CONFIG_KPROBES
// off): there these tests are unsupported (requireFeature) and pass on the guests, and the attach's
// own NotSupportedError is checked.
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmdirSync,
  rmSync,
  unlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Builder, R0, R1, R2, R6, R7, R10, reg } from '@bpfkit/asm';
import {
  attachKprobe,
  attachKprobeMulti,
  attachKprobeSession,
  attachKsyscall,
  closeNames,
  explainRefusal,
  globPattern,
  kernelFunctions,
  refusalHint,
  removeLeftoverEvents,
  resolveKprobePattern,
  tracefsRoot,
  UnknownFunctionError,
} from '@bpfkit/link';
import { kallsyms, Program, syscallFunction } from '@bpfkit/loader';
import { BpfMap, u32, u64 } from '@bpfkit/maps';
import { BpfError } from '@bpfkit/sys';
import type { TestContext } from 'vitest';
import { describe, expect, it } from 'vitest';
import { errorOf, inGuest, requireFeature } from '../../../tools/testing/features.js';
import { addToSlot0, mainThreadOnly, storeToSlot } from '../../../tools/testing/programs.js';

/** pt_regs->ax on x86-64: a kretprobe's return value. */
const PT_REGS_AX = 80;
const missing = join(tmpdir(), `bpfkit-kprobe-missing-${process.pid}`);
/** unlink(2) of a path that does not exist: one call of do_unlinkat, returning -ENOENT. */
const unlinkMissing = (n: number) => {
  for (let i = 0; i < n; i++) expect(() => unlinkSync(missing)).toThrow(/ENOENT/);
};

/** Load a kprobe program (of `attachType`, when given) using map `counts`. */
function loadKprobe(b: Builder, counts: BpfMap<number, bigint>, attachType?: string): Program {
  return Program.load({
    type: 'kprobe',
    license: 'GPL',
    instructions: b,
    maps: { counts },
    ...(attachType ? { attachType: attachType as never } : {}),
  });
}

/** A kprobe program counting calls into slot 0 of `counts` and storing pt_regs->ax into slot 1. */
function counter(counts: BpfMap<number, bigint>, attachType?: string): Program {
  const b = mainThreadOnly();
  addToSlot0(b, 'counts', 1);
  b.ldx('dw', R7, R6, PT_REGS_AX);
  storeToSlot(b, 'counts', 1, R7);
  b.label('out').mov64(R0, 0).exit();
  return loadKprobe(b, counts, attachType);
}

/** A kprobe program adding 1 at key bpf_get_attach_cookie() of `counts` (main thread only). */
function countByCookie(counts: BpfMap<number, bigint>, attachType?: string): Program {
  const b = mainThreadOnly()
    .mov64(R1, reg(R6))
    .call('get_attach_cookie')
    .stx('w', R10, -4, R0)
    .ldMap(R1, 'counts')
    .mov64(R2, reg(R10))
    .add64(R2, -4)
    .call('map_lookup_elem')
    .jeq(R0, 0, 'out')
    .mov64(R1, 1)
    .atomic('add', 'dw', R0, 0, R1)
    .label('out')
    .mov64(R0, 0)
    .exit();
  return loadKprobe(b, counts, attachType);
}

/** The host demonstrably lacks kprobes (config): unsupported there; the guests have them. */
function needKprobes(ctx: TestContext): void {
  requireFeature(ctx, 'kprobes', { config: ['CONFIG_KPROBES', 'CONFIG_KPROBE_EVENTS'] });
}

/**
 * kprobe.multi needs fprobe. On the host a config without it marks the test unsupported; a guest
 * without it (6.1) answers with the library's NotSupportedError, and 6.12 runs the test.
 */
function needFprobe(ctx: TestContext): void {
  if (!inGuest) requireFeature(ctx, 'kprobe.multi (fprobe)', { config: ['CONFIG_FPROBE'] });
}

const ownEvents = () =>
  readFileSync(join(tracefsRoot(), 'kprobe_events'), 'utf8')
    .split('\n')
    .filter((l) => l.includes(`/bpfkit_${process.pid}_`));

describe('kernel function names', () => {
  it('suggests close names for one that does not exist; globs match whole names', () => {
    const names = kernelFunctions();
    expect(names.has('do_unlinkat')).toBe(true);
    expect(closeNames('do_unlinkatt', names)).toContain('do_unlinkat');
    expect(closeNames('do_unlnkat', ['do_unlinkat', 'vfs_read', 'do_rmdir'])).toEqual(['do_unlinkat']);
    expect(globPattern('do_*dir?').test('do_rmdirx')).toBe(true);
    expect(globPattern('do_*dir').test('xdo_rmdir')).toBe(false);
    expect(globPattern('a.b').test('aXb')).toBe(false);
    expect(resolveKprobePattern('vfs_*', ['vfs_write', 'do_x', 'vfs_read'])).toEqual([
      'vfs_read',
      'vfs_write',
    ]);
    expect(() => resolveKprobePattern('nothing_*', ['vfs_read'])).toThrow(UnknownFunctionError);
  });

  it('ksyscall names the syscall wrapper, as libbpf does', () => {
    // x86-64 kernels since 4.17 wrap syscalls; the wrapper is in kallsyms
    const fn = syscallFunction('getppid');
    expect(fn).toBe('__x64_sys_getppid');
    expect(kallsyms(new Set([fn])).has(fn)).toBe(true);
    expect(() => syscallFunction('get ppid')).toThrow(TypeError);
  });

  it('a refusal names the missing capability, or the environment when none is missing', () => {
    const CAP_PERFMON = 1n << 38n;
    const CAP_SYS_ADMIN = 1n << 21n;
    const needs = [['CAP_PERFMON', 'CAP_SYS_ADMIN']] as const;
    expect(refusalHint(needs, 0n)).toMatch(/lacks CAP_PERFMON or CAP_SYS_ADMIN/);
    expect(refusalHint(needs, CAP_PERFMON)).toMatch(
      /has CAP_PERFMON, CAP_SYS_ADMIN, so the kernel or its environment refused/,
    );
    expect(refusalHint(needs, CAP_SYS_ADMIN)).toMatch(/environment refused/);
    const e = explainRefusal(new BpfError('perf_event_open', 1), 'kprobe x', needs, 0n) as BpfError;
    expect(e).toBeInstanceOf(BpfError);
    expect(e.code).toBe('EPERM');
    expect(e.message).toMatch(/perf_event_open \(kprobe x\) failed: EPERM .*lacks CAP_PERFMON/);
    const other = new BpfError('perf_event_open', 2);
    expect(explainRefusal(other, 'x', needs, 0n)).toBe(other);
  });
});

describe('kprobes', () => {
  it('a kprobe and a kretprobe on do_unlinkat count exactly this thread’s calls; the kretprobe reads -ENOENT', (ctx) => {
    needKprobes(ctx);
    using entries = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 2 });
    using returns = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 2 });
    using onEntry = counter(entries);
    using onReturn = counter(returns);
    {
      using k = attachKprobe(onEntry, 'do_unlinkat');
      using r = attachKprobe(onReturn, 'do_unlinkat', { retprobe: true });
      expect(k.via).toBe('pmu');
      expect(r.event).toBeUndefined();
      unlinkMissing(7);
      expect(entries.get(0)).toBe(7n);
      expect(returns.get(0)).toBe(7n);
      expect(BigInt.asIntN(32, returns.get(1)!)).toBe(-2n); // -ENOENT (an int: the low 32 bits of ax)
      if (k.mode === 'link') expect(k.link!.info.typeName).toBe('perf_event');
    }
    unlinkMissing(3); // detached: no more counts
    expect(entries.get(0)).toBe(7n);
    expect(returns.get(0)).toBe(7n);
  });

  it('by address, and symbol + offset, through the PMU; cookies in link mode', (ctx) => {
    needKprobes(ctx);
    using counts = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 4 });
    using prog = countByCookie(counts);
    const addr = kallsyms(new Set(['do_unlinkat'])).get('do_unlinkat')!;
    {
      using _a = attachKprobe(prog, undefined, { address: addr, cookie: 1n, mode: 'link' });
      // offset 0 is the function's first instruction: the same place, a second probe
      using _b = attachKprobe(prog, 'do_unlinkat', { offset: 0, cookie: 2n, mode: 'link' });
      unlinkMissing(5);
    }
    expect([counts.get(1), counts.get(2), counts.get(0)]).toEqual([5n, 5n, 0n]);
  });

  it('through tracefs: kprobe_events entries named for this process, maxactive, removed on close', (ctx) => {
    needKprobes(ctx);
    using counts = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 2 });
    using rets = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 2 });
    using onEntry = counter(counts);
    using onReturn = counter(rets);
    {
      using k = attachKprobe(onEntry, 'do_unlinkat', { via: 'tracefs' });
      using r = attachKprobe(onReturn, 'do_unlinkat', { retprobe: true, maxactive: 4 }); // auto: tracefs
      expect([k.via, r.via]).toEqual(['tracefs', 'tracefs']);
      const lines = ownEvents();
      expect(lines).toHaveLength(2);
      expect(lines.some((l) => /^p:kprobes\/bpfkit_\d+_\d+_do_unlinkat do_unlinkat/.test(l))).toBe(true);
      expect(lines.some((l) => /^r4:kprobes\/bpfkit_\d+_\d+_do_unlinkat do_unlinkat/.test(l))).toBe(true);
      unlinkMissing(4);
      expect([counts.get(0), rets.get(0)]).toEqual([4n, 4n]);
      expect(BigInt.asIntN(32, rets.get(1)!)).toBe(-2n);
    }
    expect(ownEvents()).toEqual([]);
    expect(() => attachKprobe(onEntry, 'do_unlinkat', { maxactive: 2 })).toThrow(
      /maxactive is for kretprobes/,
    );
  });

  it('removes the kprobe_events entries of a run whose process is gone, and no others', (ctx) => {
    needKprobes(ctx);
    // a process that has exited: its pid is free (reuse before the sweep would keep the entry)
    const dead = spawnSync('true').pid!;
    using counts = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 2 });
    using prog = counter(counts);
    using live = attachKprobe(prog, 'do_unlinkat', { via: 'tracefs' }); // ours, pid alive: kept
    const file = join(tracefsRoot(), 'kprobe_events');
    appendFileSync(file, `p:kprobes/bpfkit_${dead}_0_leftover do_unlinkat\n`);
    const removed = removeLeftoverEvents('kprobe_events');
    expect(removed).toEqual([`kprobes/bpfkit_${dead}_0_leftover`]);
    const now = readFileSync(file, 'utf8');
    expect(now).not.toContain(`bpfkit_${dead}_`);
    expect(now).toContain(live.event!.event);
  });

  it('an unknown function is named with close names from kallsyms', (ctx) => {
    needKprobes(ctx);
    using counts = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 2 });
    using prog = counter(counts);
    for (const via of ['pmu', 'tracefs'] as const) {
      const err = errorOf(() => attachKprobe(prog, 'do_unlinkatt', { via }).detach());
      expect(err).toBeInstanceOf(UnknownFunctionError);
      expect(err.message).toMatch(/no kernel function 'do_unlinkatt'.*did you mean .*do_unlinkat/);
    }
    expect(ownEvents()).toEqual([]);
  });

  it('a kernel without kprobes is told so, naming CONFIG_KPROBES; one with them attaches', () => {
    using counts = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 2 });
    using prog = counter(counts);
    const has =
      existsSync('/sys/bus/event_source/devices/kprobe') || existsSync(join(tracefsRoot(), 'kprobe_events'));
    if (has) attachKprobe(prog, 'do_unlinkat').close();
    else
      expect(() => attachKprobe(prog, 'do_unlinkat')).toThrow(
        expect.objectContaining({
          name: 'NotSupportedError',
          message: expect.stringMatching(/kprobes \(CONFIG_KPROBES/),
        }),
      );
  });

  it('a ksyscall probe sees this process’s getppid', (ctx) => {
    needKprobes(ctx);
    using counts = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 2 });
    const b = new Builder()
      .call('get_current_pid_tgid')
      .mov64(R7, reg(R0))
      .rsh64(R0, 32)
      .jne(R0, process.pid, 'out');
    addToSlot0(b, 'counts', 1);
    storeToSlot(b, 'counts', 1, R7);
    b.label('out').mov64(R0, 0).exit();
    using prog = Program.load({ type: 'kprobe', license: 'GPL', instructions: b, maps: { counts } });
    {
      using _s = attachKsyscall(prog, 'getppid');
      for (let i = 0; i < 6; i++) expect(process.ppid).toBeGreaterThan(0);
    }
    expect(counts.get(0)).toBe(6n); // only the main thread calls getppid
    expect(Number(counts.get(1)! & 0xffffffffn)).toBe(process.pid); // the main thread's tid
  });
});

describe('kprobe.multi', () => {
  it('over a glob pattern: per-function cookies count mkdir and rmdir calls; kretprobe.multi too', (ctx) => {
    needFprobe(ctx);
    const dir = mkdtempSync(join(tmpdir(), 'bpfkit-kmulti-'));
    using returns = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 2 });
    using onReturn = countByCookie(returns, 'trace_kprobe_multi');
    try {
      let fns: string[];
      let entries: BpfMap<number, bigint>;
      {
        const symbols = ['do_mkdirat', 'do_rmdir'];
        using _r = attachKprobeMulti(onReturn, { symbols, cookies: [0n, 1n], retprobe: true });
        fns = resolveKprobePattern('do_*dir*');
        expect(fns).toEqual(expect.arrayContaining(symbols));
        entries = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: fns.length });
        using onEntry = countByCookie(entries, 'trace_kprobe_multi');
        using link = attachKprobeMulti(onEntry, {
          pattern: 'do_*dir*',
          cookies: fns.map((_, i) => BigInt(i)),
        });
        expect(link.info.typeName).toBe('kprobe_multi');
        for (let i = 0; i < 3; i++) {
          mkdirSync(join(dir, 'd'));
          rmdirSync(join(dir, 'd'));
        }
      }
      using _entries = entries;
      mkdirSync(join(dir, 'after')); // detached: not counted
      expect([entries.get(fns.indexOf('do_mkdirat')), entries.get(fns.indexOf('do_rmdir'))]).toEqual([
        3n,
        3n,
      ]);
      expect([returns.get(0), returns.get(1)]).toEqual([3n, 3n]);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('names an unknown function; a kprobe.session needs 6.10', (ctx) => {
    needFprobe(ctx);
    using counts = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 2 });
    using prog = countByCookie(counts, 'trace_kprobe_multi');
    expect(errorOf(() => attachKprobeMulti(prog, { symbols: ['do_mkdirat', 'do_rmdirr'] })).message).toMatch(
      /no kernel function 'do_rmdirr'.*did you mean .*do_rmdir/,
    );
    expect(() => attachKprobeMulti(prog, { symbols: ['a'], cookies: [1n, 2n] })).toThrow(RangeError);
    using session = countByCookie(counts, 'trace_kprobe_session');
    {
      using _s = attachKprobeSession(session, { symbols: ['do_rmdir'], cookies: [1n] });
      expect(() => rmdirSync(missing)).toThrow(/ENOENT/);
    }
    expect(counts.get(1)).toBe(2n); // at entry and at return
  });
});
