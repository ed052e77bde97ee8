// BTF-typed tracing programs built in TypeScript and loaded against a target by name
// (`Program.load({ attachTo })`): fentry/fexit on bpf_fentry_test1 and fmod_ret on
// bpf_modify_return_test, both driven by BPF_PROG_TEST_RUN (which calls those functions); tp_btf
// on sys_enter; an LSM hook denying a child process a file. This host refuses fentry, fmod_ret
// and LSM loads (EPERM, the environment): those are unsupported here and pass on the guests.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Builder, R0, R1, R6, R7, reg } from '@bpfkit/asm';
import { attachFreplace, attachTracing } from '@bpfkit/link';
import { Program } from '@bpfkit/loader';
import { BpfMap, u32, u64 } from '@bpfkit/maps';
import type { TestContext } from 'vitest';
import { describe, expect, it } from 'vitest';
import { requireFeature } from '../../../tools/testing/features.js';
import { addToSlot0, storeToSlot } from '../../../tools/testing/programs.js';

/** r6 = ctx; skip to `out` unless this is the test's main thread. */
function mainThreadOnly(): Builder {
  return new Builder()
    .mov64(R6, reg(R1))
    .call('get_current_pid_tgid')
    .mov32(R0, reg(R0))
    .jne(R0, process.pid, 'out');
}

/** A program of `attachType` on `attachTo` that counts runs in slot 0 and stores ctx[argIndex] in slot 1. */
function recorder(
  type: 'tracing' | 'lsm',
  attachType: string,
  attachTo: string,
  slots: BpfMap<number, bigint>,
  argIndex: number,
  ret = 0,
): Program {
  const b = mainThreadOnly();
  addToSlot0(b, 'slots', 1);
  b.ldx('dw', R7, R6, 8 * argIndex);
  storeToSlot(b, 'slots', 1, R7);
  b.mov64(R0, ret).exit(); // ours: `ret`; any other thread: 0
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

/** Skip (unsupported) on the host, where the environment refuses this kind of load with EPERM. */
function needs(ctx: TestContext, feature: string, config: string, load: () => Program): void {
  requireFeature(ctx, feature, { config: [config], probe: () => load().close() });
}

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
    // a kernel without CONFIG_FUNCTION_ERROR_INJECTION refuses it: a NotSupportedError naming it
    const load = () => recorder('tracing', 'modify_return', 'bpf_modify_return_test', slots, 0, 42);
    needs(ctx, 'fmod_ret', 'CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS', load);
    using prog = load();
    // the kernel's test run: ret = bpf_modify_return_test(1, &b) with b = 2; retval = side effect << 16 | ret
    const untouched = prog.testRun().retval;
    expect(untouched).toBe((1 << 16) | 4); // the body ran: b became 3, 1 + 3
    {
      using _l = attachTracing(prog);
      expect(prog.testRun().retval).toBe(42); // skipped: no side effect, our value
    }
    expect(slots.get(0)).toBe(1n);
    expect(slots.get(1)).toBe(1n); // a
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
    // file_open(struct file *): -EPERM when the opener's tgid is the one in `target`
    const b = new Builder()
      .call('get_current_pid_tgid')
      .rsh64(R0, 32)
      .mov64(R7, reg(R0))
      .st('w', 10, -4, 0)
      .ldMap(R1, 'target')
      .mov64(2, reg(10))
      .add64(2, -4)
      .call('map_lookup_elem')
      .jeq(R0, 0, 'allow')
      .ldx('w', R1, R0, 0)
      .jne(R1, reg(R7), 'allow')
      .mov64(R0, -1)
      .exit()
      .label('allow')
      .mov64(R0, 0)
      .exit();
    const load = () =>
      Program.load({
        type: 'lsm',
        attachType: 'lsm_mac',
        attachTo: 'file_open',
        license: 'GPL',
        instructions: b,
        maps: { target },
      });
    needs(ctx, 'BPF LSM', 'CONFIG_BPF_LSM', load);
    using prog = load();
    using _link = attachTracing(prog);
    // the child waits for a line, then becomes cat (same pid) and opens the file
    const child = spawn('sh', ['-c', 'read go; exec cat /etc/hostname'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const done = new Promise<{ code: number | null; err: string }>((resolve) => {
      let err = '';
      child.stderr.on('data', (d) => {
        err += d;
      });
      child.on('close', (code) => resolve({ code, err }));
    });
    target.set(0, child.pid!);
    child.stdin.end('go\n');
    const { code, err } = await done;
    expect(code).not.toBe(0);
    expect(err).toMatch(/Operation not permitted/);
    expect(readFileSync('/etc/hostname', 'utf8').length).toBeGreaterThan(0); // this process still may
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
