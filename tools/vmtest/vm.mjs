// Boots a kernel under QEMU (TCG: KVM is not assumed) with the host's root shared read-only and
// a results directory shared writable; the guest runs `<out>/run.sh` and powers off.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { EXIT_MARK } from './initramfs.mjs';

/** Splits a byte stream into lines (a character may span two reads), calling `onLine` for each. */
function lineSplitter(onLine) {
  const utf8 = new StringDecoder('utf8');
  let partial = '';
  return {
    write(chunk) {
      partial += utf8.write(chunk).replaceAll('\r', '');
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) onLine(line);
    },
    end() {
      if (partial) onLine(partial);
      partial = '';
    },
  };
}

/**
 * Run `script` (sh) in a guest booted from `kernel` and `initrd` (paths), in directory `cwd`
 * of the host's tree. The script's output goes to `<outDir>/output.log` on the writable share,
 * which is followed here (the serial console carries the kernel's own messages); `append` adds to
 * the kernel command line. Resolves
 * `{ status, timedOut, aborted, panicked, console, seconds }`; `status` is the script's exit
 * status, or null when the guest died, was killed at `timeoutMs` (`timedOut`) or when `signal`
 * aborted (`aborted`); `console` is the last lines of both.
 * @param {{ kernel: string, initrd: string, outDir: string, cwd: string, script: string,
 *   timeoutMs: number, cpus?: number, memory?: string, append?: string, onLine?: (line: string) => void,
 *   signal?: AbortSignal }} opts
 */
export function runInVm({
  kernel,
  initrd,
  outDir,
  cwd,
  script,
  timeoutMs,
  cpus = 2,
  memory = '4G',
  append = '',
  onLine = undefined,
  signal = undefined,
}) {
  const output = join(outDir, 'output.log');
  writeFileSync(output, '');
  writeFileSync(join(outDir, 'run.sh'), `#!/bin/sh\nexec >${output} 2>&1\n${script}\n`, { mode: 0o755 });
  const args = [
    '-nodefaults',
    '-nographic',
    '-no-reboot',
    '-machine',
    'q35',
    '-cpu',
    'max',
    '-accel',
    'tcg,thread=multi,tb-size=1024',
    '-smp',
    String(cpus),
    '-m',
    memory,
    '-kernel',
    kernel,
    '-initrd',
    initrd,
    '-append',
    `console=ttyS0 panic=-1 quiet loglevel=4 nosoftlockup rcupdate.rcu_cpu_stall_suppress=1 vmtest.out=${outDir} vmtest.cwd=${cwd}${append ? ` ${append}` : ''}`,
    '-serial',
    'stdio',
    '-virtfs',
    'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
    '-virtfs',
    `local,path=${outDir},mount_tag=results,security_model=none`,
  ];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = [];
    let status = null;
    let panicked = false;
    const keep = (line) => {
      lines.push(line);
      if (lines.length > 400) lines.shift();
      onLine?.(line);
    };
    const serial = lineSplitter((line) => {
      const mark = line.indexOf(EXIT_MARK);
      if (mark >= 0) status = Number.parseInt(line.slice(mark + EXIT_MARK.length), 10);
      else {
        // a panic or an oops is the kernel failing; soft-lockup and RCU-stall warnings are TCG
        // being slow on a busy host (and are switched off on the command line)
        if (/Kernel panic|Oops: |BUG: (?!soft lockup)/.test(line)) panicked = true;
        keep(line);
      }
    });
    qemu.stdout.on('data', (d) => serial.write(d));
    qemu.stderr.on('data', (d) => serial.write(d));
    // follow the script's output file as the guest writes it
    const fd = openSync(output, 'r');
    const buf = Buffer.alloc(1 << 16);
    const out = lineSplitter(keep);
    const follow = () => {
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n <= 0) return;
        out.write(buf.subarray(0, n));
      }
    };
    const poll = setInterval(follow, 250);
    let timedOut = false;
    let aborted = false;
    const timer = setTimeout(() => {
      timedOut = true;
      qemu.kill('SIGKILL');
    }, timeoutMs);
    const abort = () => {
      aborted = true;
      qemu.kill('SIGKILL');
    };
    if (signal?.aborted) abort();
    else signal?.addEventListener('abort', abort, { once: true });
    const stop = () => {
      clearTimeout(timer);
      clearInterval(poll);
      signal?.removeEventListener('abort', abort);
    };
    qemu.on('error', (e) => {
      stop();
      reject(
        new Error(`vmtest: cannot start qemu-system-x86_64 (${e.message}); apt-get install qemu-system-x86`),
      );
    });
    qemu.on('close', () => {
      stop();
      follow();
      out.end();
      serial.end();
      closeSync(fd);
      resolve({
        status,
        timedOut,
        aborted,
        panicked,
        console: lines,
        seconds: (Date.now() - started) / 1000,
      });
    });
  });
}
