// What the vmtest guests are built to have, so that tests of kprobes, fentry, BPF LSM and
// networking programs run there for real: each check runs on every leg. On a guest
// (BPFKIT_VMTEST_GUEST=1) a missing capability fails here — a broken guest setup, never a quiet
// "unsupported". On the host a capability may be missing only where the host demonstrably lacks
// it (tools/testing/features.js), and then the test must pass on a guest leg of the same run.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { Builder, R0 } from '@bpfkit/asm';
import { Btf } from '@bpfkit/btf';
import { Program, resolveAttachTarget } from '@bpfkit/loader';
import { AttachType, NativeBuffer, ProgType, perfEventOpen } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';
import { kernelConfigFile, requireFeature } from '../testing/features.js';

const ret0 = () => new Builder().mov64(R0, 0).exit();

/** A program of `type` loaded against the kernel function that `section` names, as the loader resolves it. */
function loadAgainstKernel(type: ProgType, attachType: AttachType, section: string) {
  const target = resolveAttachTarget(
    { name: 'capability', section, type, attachType, attachTo: section.slice(section.indexOf('/') + 1) },
    { kernel: Btf.kernel() },
  );
  if (target?.kind !== 'kernel') throw new Error(`${section}: no kernel attach target`);
  return Program.load({
    type,
    attachType,
    attachBtfId: target.btfId,
    license: 'GPL',
    instructions: ret0(),
  });
}

describe('guest capabilities', () => {
  it('kprobes: perf_event_open on the kprobe PMU for a kernel function', (ctx) => {
    requireFeature(ctx, 'the kprobe PMU', { config: ['CONFIG_KPROBES', 'CONFIG_KPROBE_EVENTS'] });
    const type = Number.parseInt(readFileSync('/sys/bus/event_source/devices/kprobe/type', 'utf8'), 10);
    using func = NativeBuffer.from('do_unlinkat');
    using fd = perfEventOpen({ type, config: 0n, config1: func.ptr, config2: 0n, samplePeriod: 1n }, -1, 0);
    expect(fd.value).toBeGreaterThan(0);
  });

  it('fentry: a tracing program loads with the attach_btf_id of a vmlinux function', (ctx) => {
    const load = () => loadAgainstKernel(ProgType.TRACING, AttachType.TRACE_FENTRY, 'fentry/do_unlinkat');
    requireFeature(ctx, 'fentry', {
      config: ['CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS'],
      probe: () => load().close(),
    });
    using prog = load();
    expect(prog.fd.value).toBeGreaterThan(0);
  });

  it('BPF LSM: an lsm program loads for bpf_lsm_file_open and the kernel lists the bpf LSM', (ctx) => {
    const load = () => loadAgainstKernel(ProgType.LSM, AttachType.LSM_MAC, 'lsm/file_open');
    requireFeature(ctx, 'BPF LSM', { config: ['CONFIG_BPF_LSM'], probe: () => load().close() });
    using prog = load();
    expect(prog.fd.value).toBeGreaterThan(0);
    expect(readFileSync('/sys/kernel/security/lsm', 'utf8').split(',')).toContain('bpf');
  });

  it('networking: the modules of tc, veth and netfilter programs are loaded or built in', (ctx) => {
    requireFeature(ctx, 'each networking module (veth, sch_ingress, cls_bpf, act_bpf, nf_tables)', {
      config: [
        'CONFIG_VETH',
        'CONFIG_NET_SCH_INGRESS',
        'CONFIG_NET_CLS_BPF',
        'CONFIG_NET_ACT_BPF',
        'CONFIG_NF_TABLES',
      ],
    });
    const builtin = (m: string) => existsSync(`/sys/module/${m}`);
    // a built-in without parameters has no /sys/module entry: its config says =y then
    for (const [m, option] of [
      ['veth', 'CONFIG_VETH'],
      ['sch_ingress', 'CONFIG_NET_SCH_INGRESS'],
      ['cls_bpf', 'CONFIG_NET_CLS_BPF'],
      ['act_bpf', 'CONFIG_NET_ACT_BPF'],
      ['nf_tables', 'CONFIG_NF_TABLES'],
    ] as const)
      expect(builtin(m) || kernelConfigFile()?.options.get(option) === 'y', `${m} (${option})`).toBe(true);
  });

  it('networking: ip from the root makes a veth pair with a clsact qdisc, then deletes it', () => {
    const name = `bpfkit-cap${process.pid % 10000}`;
    const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
    ip('link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`);
    try {
      execFileSync('tc', ['qdisc', 'add', 'dev', name, 'clsact']);
      expect(execFileSync('tc', ['qdisc', 'show', 'dev', name], { encoding: 'utf8' })).toMatch(/clsact/);
    } finally {
      ip('link', 'del', name);
    }
    expect(ip('link', 'show').includes(name)).toBe(false);
  });
});
