// vmtest: host only: it boots QEMU guests itself; QEMU inside a TCG guest would only measure TCG
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
  }, 600_000);
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  const boot = (
    script: string,
    timeoutMs: number,
    more: { signal?: AbortSignal; onLine?: (line: string) => void } = {},
  ) => runInVm({ kernel: kernel.vmlinuz, initrd, outDir, cwd: '/', script, timeoutMs, ...more });

  // Limits in these tests only catch a runner that is broken: a guest under TCG on a busy machine
  // may take minutes to boot, so nothing waits for a time to pass that the guest must beat.
  it('runs a script on that kernel and returns its status and output', async () => {
    const r = await boot('uname -r; mount | grep -c " type bpf "; exit 3', 600_000);
    expect(r).toMatchObject({ status: 3, timedOut: false, aborted: false, panicked: false });
    expect(r.console).toContain(kernel.release);
    expect(r.console).toContain('1'); // bpffs mounted once
  }, 660_000);

  it('kills a hanging guest when asked, keeping its last words', async () => {
    const ac = new AbortController();
    const onLine = (line: string) => {
      if (line === 'about to hang') ac.abort();
    };
    const r = await boot('echo about to hang; sleep 600', 600_000, { signal: ac.signal, onLine });
    expect(r).toMatchObject({ status: null, aborted: true, timedOut: false });
    expect(r.console).toContain('about to hang');
  }, 660_000);

  it('kills a guest at its time limit', async () => {
    const r = await boot('sleep 600', 1);
    expect(r).toMatchObject({ status: null, timedOut: true, panicked: false });
    expect(r.seconds).toBeLessThan(600);
  }, 600_000);

  it('reports a kernel panic', async () => {
    const r = await boot('echo 1 > /proc/sys/kernel/sysrq; echo c > /proc/sysrq-trigger', 600_000);
    expect(r).toMatchObject({ status: null, panicked: true, timedOut: false });
    expect(r.console.join('\n')).toMatch(/Kernel panic|sysrq/i);
  }, 660_000);
});
