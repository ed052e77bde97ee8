// The VM runner against a real guest: a hung guest is killed at its time limit, a panicking one
// is reported as such, each with the tail of its console. (Excluded inside the guests themselves:
// QEMU under QEMU would only measure TCG.)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildInitramfs } from '../vmtest/initramfs.mjs';
import { cacheDir, ensureKernel } from '../vmtest/kernels.mjs';
import { runInVm } from '../vmtest/vm.mjs';

describe('a real guest (Debian 6.1 under QEMU)', () => {
  let kernel: { vmlinuz: string; release: string };
  let initrd: string;
  let outDir: string;
  beforeAll(() => {
    kernel = ensureKernel('6.1', () => {}) as { vmlinuz: string; release: string };
    initrd = join(cacheDir, `initrd-${kernel.release}-test.cpio`);
    writeFileSync(initrd, buildInitramfs(kernel as never));
    outDir = mkdtempSync('/tmp/bpfkit-vmtest-boot-');
  }, 300_000);
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  const boot = (script: string, timeoutMs: number) =>
    runInVm({ kernel: kernel.vmlinuz, initrd, outDir, cwd: '/', script, timeoutMs });

  it('runs a script on that kernel and returns its status and output', async () => {
    const r = await boot('uname -r; mount | grep -c " type bpf "; exit 3', 120_000);
    expect(r).toMatchObject({ status: 3, timedOut: false, panicked: false });
    expect(r.console).toContain(kernel.release);
    expect(r.console).toContain('1'); // bpffs mounted once
  }, 150_000);

  it('kills a guest that hangs at the limit and keeps its last words', async () => {
    const r = await boot('echo about to hang; sleep 600', 25_000);
    expect(r).toMatchObject({ status: null, timedOut: true });
    expect(r.console).toContain('about to hang');
  }, 60_000);

  it('reports a kernel panic', async () => {
    const r = await boot('echo 1 > /proc/sys/kernel/sysrq; echo c > /proc/sysrq-trigger', 120_000);
    expect(r).toMatchObject({ status: null, panicked: true, timedOut: false });
    expect(r.console.join('\n')).toMatch(/Kernel panic|sysrq/i);
  }, 150_000);
});
