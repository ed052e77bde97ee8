// uprobes on binaries named the way libbpf resolves them: a program name on PATH, a library name
// through /etc/ld.so.cache. A uprobe on libc's getppid counts this thread's calls of it.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { Builder, R0 } from '@bpfkit/asm';
import { attachUprobe, fileOffset, ldSoCache, resolveBinary, symbolOffset } from '@bpfkit/link';
import { Program, parseElf } from '@bpfkit/loader';
import { BpfMap, u32, u64 } from '@bpfkit/maps';
import { describe, expect, it } from 'vitest';
import { addToSlot0, mainThreadOnly } from '../../../tools/testing/programs.js';

describe('uprobe binaries by name', () => {
  it('finds programs on PATH and libraries in the ld.so cache', () => {
    const sh = resolveBinary('sh');
    expect(sh).toMatch(/\/sh$/);
    accessSync(sh, constants.X_OK);
    expect(resolveBinary('sh', { PATH: '/nonexistent' + ':/bin' })).toBe('/bin/sh');
    expect(() => resolveBinary('sh', { PATH: '/nonexistent' })).toThrow(/no program 'sh' on PATH/);
    const libc = resolveBinary('libc.so.6');
    expect(libc).toMatch(/\/libc\.so\.6$/);
    expect(existsSync(libc)).toBe(true);
    expect(ldSoCache().get('libc.so.6')).toBe(libc);
    expect(() => resolveBinary('libnothing-here.so.9')).toThrow(/no library 'libnothing-here.so.9'/);
    expect(resolveBinary('/opt/x/y')).toBe('/opt/x/y');
  });

  it('fileOffset: an address as a file offset, by the section holding it or the one a symbol names', () => {
    // libc's getppid: the symbol's section and the section found by address agree, and the
    // bytes there are the function's (a file offset, not the address, when they differ)
    const libc = resolveBinary('libc.so.6');
    const elf = parseElf(readFileSync(libc), { anyMachine: true });
    const sym = elf.dynamicSymbols.find((s) => s.name === 'getppid' && s.value !== 0)!;
    expect(sym).toBeDefined();
    const off = fileOffset(elf.sections, sym.value, sym.shndx);
    expect(fileOffset(elf.sections, BigInt(sym.value))).toBe(off);
    expect(symbolOffset(libc, 'getppid')).toBe(off);
    const text = elf.sections[sym.shndx]!;
    expect(off - text.offset).toBe(sym.value - text.addr);
    expect(() => fileOffset(elf.sections, 1)).toThrow(/address 0x1 lies in no section of the file/);
    expect(() => fileOffset(elf.sections, sym.value, 9999)).toThrow(
      /points at section 9999, which does not exist/,
    );
  });

  it('a uprobe on getppid in libc.so.6, named so, counts this thread’s calls', () => {
    using counts = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 1 });
    const b: Builder = mainThreadOnly();
    addToSlot0(b, 'counts', 1).label('out').mov64(R0, 0).exit();
    using prog = Program.load({ type: 'kprobe', license: 'GPL', instructions: b, maps: { counts } });
    {
      using _u = attachUprobe(prog, 'libc.so.6', 'getppid', { pid: process.pid });
      for (let i = 0; i < 5; i++) expect(process.ppid).toBeGreaterThan(0); // uv_os_getppid → getppid(3)
    }
    expect(counts.get(0)).toBe(5n);
    expect(process.ppid).toBeGreaterThan(0);
    expect(counts.get(0)).toBe(5n);
  });
  it('refCtrOffset: the kernel raises a USDT-style semaphore while the probe is attached', () => {
    const target = new URL('./fixtures/semaphore_target', import.meta.url).pathname;
    const run = (n: number) =>
      Number(
        spawnSync(target, [String(n)])
          .stdout.toString()
          .trim(),
      );
    expect(run(4)).toBe(0); // no probe: the semaphore is 0, bpfkit_traced is never called
    expect(symbolOffset(target, 'bpfkit_semaphore', 'object')).toBeGreaterThan(0);
    using counts = BpfMap.create({ type: 'array', key: u32, value: u64, maxEntries: 1 });
    const b = new Builder();
    addToSlot0(b, 'counts', 1).label('out').mov64(R0, 0).exit();
    using prog = Program.load({ type: 'kprobe', license: 'GPL', instructions: b, maps: { counts } });
    {
      using _u = attachUprobe(prog, target, 'bpfkit_traced', { refCtrOffset: 'bpfkit_semaphore' });
      expect(run(4)).toBe(4); // the semaphore was raised for the new process
    }
    expect(counts.get(0)).toBe(4n); // and the probe saw each call
    expect(run(2)).toBe(0);
  });
});
