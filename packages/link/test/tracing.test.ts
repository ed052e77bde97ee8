// BTF-typed tracing programs built in TypeScript and loaded against a target by name
// (`Program.load({ attachTo })`): fentry/fexit on bpf_fentry_test1, driven by BPF_PROG_TEST_RUN
// (which calls it); tp_btf
// on sys_enter; an LSM hook and an fmod_ret on security_file_open denying a child process a file. This host refuses fentry, fmod_ret
// and LSM loads (EPERM, the environment): those are unsupported here and pass on the guests.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Builder, R0, R1, R2, R6, R7, R10, reg } from '@bpfkit/asm';
import { attachFreplace, attachTracing } from '@bpfkit/link';
import { type Collection, loadCollection, Program } from '@bpfkit/loader';
import { BpfMap, u32, u64 } from '@bpfkit/maps';
import type { TestContext } from 'vitest';
import { describe, expect, it } from 'vitest';
import { requireFeature } from '../../../tools/testing/features.js';
import { addToSlot0, mainThreadOnly, storeToSlot } from '../../../tools/testing/programs.js';

/** A program of `attachType` on `attachTo` that counts runs in slot 0 and stores ctx[argIndex] in slot 1. */
function recorder(
  type: 'tracing' | 'lsm',
  attachType: string,
  attachTo: string,
  slots: BpfMap<number, bigint>,
  argIndex: number,
): Program {
  const b = mainThreadOnly();
  addToSlot0(b, 'slots', 1);
  b.ldx('dw', R7, R6, 8 * argIndex);
  storeToSlot(b, 'slots', 1, R7);
  b.label('out').mov64(R0, 0).exit();
  return Program.load({
    type,
    attachType: attachType as never,
    attachTo,
    license: 'GPL',
    instructions: b,
    maps: { slots },
  });
}

/** A program returning -EPERM when the current tgid is the one in array map `target`, 0 otherwise. */
function denyFor(): Builder {
  return new Builder()
    .call('get_current_pid_tgid')
    .rsh64(R0, 32)
    .mov64(R7, reg(R0))
    .st('w', R10, -4, 0)
    .ldMap(R1, 'target')
    .mov64(R2, reg(R10))
    .add64(R2, -4)
    .call('map_lookup_elem')
    .jeq(R0, 0, 'allow')
    .ldx('w', R1, R0, 0)
    .jne(R1, reg(R7), 'allow')
    .mov64(R0, -1)
    .exit()
    .label('allow')
    .mov64(R0, 0)
    .exit();
}

/** Loads a program of `type`/`attachType` on `attachTo` that returns -EPERM for the tgid in `target`. */
function denier(
  type: 'lsm' | 'tracing',
  attachType: string,
  attachTo: string,
  target: BpfMap<number, number>,
) {
  return () =>
    Program.load({
      type,
      attachType: attachType as never,
      attachTo,
      license: 'GPL',
      instructions: denyFor(),
      maps: { target },
    });
}

/** A child opening /etc/hostname is refused (EPERM); this process still may open it. */
async function expectChildDenied(target: BpfMap<number, number>): Promise<void> {
  const { code, err } = await childOpens(target, '/etc/hostname');
  expect(code).not.toBe(0);
  expect(err).toMatch(/Operation not permitted/);
  expect(readFileSync('/etc/hostname', 'utf8').length).toBeGreaterThan(0);
}

/**
 * A child that waits for a line, then becomes `cat file` (same pid) and opens it; `target` is set
 * to its pid before the line is sent. Resolves with its exit code and stderr.
 */
async function childOpens(
  target: BpfMap<number, number>,
  file: string,
): Promise<{ code: number | null; err: string }> {
  const child = spawn('sh', ['-c', `read go; exec cat ${file}`], { stdio: ['pipe', 'ignore', 'pipe'] });
  const done = new Promise<{ code: number | null; err: string }>((resolve) => {
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('close', (code) => resolve({ code, err }));
  });
  target.set(0, child.pid!);
  child.stdin.end('go\n');
  return done;
}

/** Skip (unsupported) on the host, where the environment refuses this kind of load with EPERM. */
function needs(ctx: TestContext, feature: string, config: string, load: () => Program): void {
  requireFeature(ctx, feature, { config: [config], probe: () => load().close() });
}

const replaceTarget = new URL('./fixtures/replace_target.bpf.o', import.meta.url).pathname;
const replaceVerdict = new URL('./fixtures/replace_verdict.bpf.o', import.meta.url).pathname;

const slotMap = () => BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 2 });

describe('tracing programs by target name', () => {
  it('fentry and fexit on bpf_fentry_test1 see its argument and return value', (ctx) => {
    using entry = slotMap();
    using exit = slotMap();
    needs(ctx, 'fentry', 'CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS', () =>
      recorder('tracing', 'trace_fentry', 'bpf_fentry_test1', entry, 0),
    );
    using onEntry = recorder('tracing', 'trace_fentry', 'bpf_fentry_test1', entry, 0);
    using onExit = recorder('tracing', 'trace_fexit', 'bpf_fentry_test1', exit, 1); // ctx[1]: the return value
    {
      using l1 = attachTracing(onEntry);
      using _l2 = attachTracing(onExit, { cookie: 7n });
      expect(l1.info.typeName).toBe('tracing');
      // BPF_PROG_TEST_RUN of an fentry program calls bpf_fentry_test1(1) .. bpf_fentry_test8
      onEntry.testRun();
      onExit.testRun();
    }
    expect([entry.get(0), entry.get(1)]).toEqual([2n, 1n]); // bpf_fentry_test1(1)
    expect([exit.get(0), exit.get(1)]).toEqual([2n, 2n]); // returns a + 1
    onEntry.testRun(); // detached
    expect(entry.get(0)).toBe(2n);
  });

  it('fmod_ret changes bpf_modify_return_test’s return value', (ctx) => {
    using slots = slotMap();
    // returns 42 for this thread (the body is skipped), 0 otherwise (the body runs)
    const b = mainThreadOnly();
    addToSlot0(b, 'slots', 1);
    b.ldx('dw', R7, R6, 0);
    storeToSlot(b, 'slots', 1, R7);
    b.mov64(R0, 42).exit().label('out').mov64(R0, 0).exit();
    // kernels without CONFIG_FUNCTION_ERROR_INJECTION that do not list the function for fmod_ret
    // refuse it (6.1): a NotSupportedError naming the option
    const load = () =>
      Program.load({
        type: 'tracing',
        attachType: 'modify_return',
        attachTo: 'bpf_modify_return_test',
        license: 'GPL',
        instructions: b,
        maps: { slots },
      });
    needs(ctx, 'fmod_ret', 'CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS', load);
    using prog = load();
    // the kernel's test run calls bpf_modify_return_test(1, &b) with b = 2 (the body adds 1 to b
    // and returns 1 + b: 4), newer kernels a second function too; retval = side effects << 16 | sum
    const untouched = prog.testRun().retval;
    {
      using _l = attachTracing(prog);
      const modified = prog.testRun().retval;
      expect(modified >>> 16).toBe((untouched >>> 16) - 1); // one side effect fewer: the body was skipped
      expect(modified & 0xffff).toBe((untouched & 0xffff) - 4 + 42); // 42 in place of its 4
    }
    expect([slots.get(0), slots.get(1)]).toEqual([1n, 1n]); // ran once, saw a = 1
    expect(prog.testRun().retval).toBe(untouched);
  });

  it('tp_btf on sys_enter counts this thread’s getppid calls', () => {
    using slots = slotMap();
    // ctx[1] of btf_trace_sys_enter is the syscall number; count getppid (110 on x86-64)
    const b = mainThreadOnly().ldx('dw', R7, R6, 8).jne(R7, 110, 'out');
    addToSlot0(b, 'slots', 1).label('out').mov64(R0, 0).exit();
    using prog = Program.load({
      type: 'tracing',
      attachType: 'trace_raw_tp',
      attachTo: 'sys_enter',
      license: 'GPL',
      instructions: b,
      maps: { slots },
    });
    {
      using link = attachTracing(prog);
      // a tracing link where BPF_LINK_CREATE takes tp_btf, else BPF_RAW_TRACEPOINT_OPEN's
      expect(['tracing', 'raw_tracepoint']).toContain(link.info.typeName);
      for (let i = 0; i < 5; i++) expect(process.ppid).toBeGreaterThan(0);
    }
    expect(slots.get(0)).toBe(5n);
    expect(process.ppid).toBeGreaterThan(0);
    expect(slots.get(0)).toBe(5n);
    expect(() =>
      Program.load({
        type: 'tracing',
        attachType: 'trace_fentry',
        attachTo: 'no_such_function_here',
        license: 'GPL',
        instructions: new Builder().mov64(R0, 0).exit(),
      }),
    ).toThrow(/attach target 'no_such_function_here' does not exist/);
  });

  it('an LSM program denies a file open to a child process only', async (ctx) => {
    using target = BpfMap.create({ type: 'array', key: u32, value: u32, maxEntries: 1 });
    const load = denier('lsm', 'lsm_mac', 'file_open', target);
    needs(ctx, 'BPF LSM', 'CONFIG_BPF_LSM', load);
    using prog = load();
    using _link = attachTracing(prog);
    await expectChildDenied(target);
  });

  it('fmod_ret on security_file_open makes it fail for a child process only', async (ctx) => {
    // fmod_ret attaches to error-injectable functions and to security_*: without
    // CONFIG_FUNCTION_ERROR_INJECTION (the Debian kernels), only the latter
    using target = BpfMap.create({ type: 'array', key: u32, value: u32, maxEntries: 1 });
    const load = denier('tracing', 'modify_return', 'security_file_open', target);
    needs(ctx, 'fmod_ret', 'CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS', load);
    using prog = load();
    {
      using _link = attachTracing(prog);
      await expectChildDenied(target);
    }
    expect((await childOpens(target, '/etc/hostname')).code).toBe(0); // detached
  });

  it('freplace takes the place of a function of the program it was loaded against, or of another', (ctx) => {
    using a = loadCollection(replaceTarget);
    using b = loadCollection(replaceTarget);
    const run = (c: Collection) => c.program('by_length').testRun({ data: new Uint8Array(32) }).retval;
    expect([run(a), run(b)]).toEqual([3, 3]); // short packets: decide() says drop
    const load = () =>
      loadCollection(replaceVerdict, {
        attachTargets: { decide_always: { program: a.program('by_length') } },
      });
    requireFeature(ctx, 'freplace', { probe: () => load().close() });
    using ext = load();
    const prog = ext.program('decide_always');
    {
      using link = attachTracing(prog); // freplace: its load-time target
      expect(link.info.typeName).toBe('tracing');
      expect([run(a), run(b)]).toEqual([7, 3]);
    }
    expect(run(a)).toBe(3);
    {
      using _l = attachFreplace(prog, { target: b.program('by_length'), func: 'decide' });
      expect([run(a), run(b)]).toEqual([3, 7]);
    }
    expect(run(b)).toBe(3);
    expect(() => attachFreplace(prog, { target: b.program('by_length'), func: 'nope' })).toThrow(
      /not a function of the target program/,
    );
  });

  it('attachFreplace checks its arguments', () => {
    using prog = Program.load({
      type: 'socket_filter',
      license: 'GPL',
      instructions: new Builder().mov64(R0, 0).exit(),
    });
    expect(() => attachFreplace(prog)).toThrow(/takes a freplace \(ext\) program/);
  });
});
