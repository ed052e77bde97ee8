// Compiling a `.bpf.c` for `bpfkit gen`: the system's clang, with the flags and include paths a
// libbpf-style program needs chosen for the user (-O2 -g -target bpf, __TARGET_ARCH_*, the
// multiarch include directory for <asm/types.h>), and a vmlinux.h written by bpfkit itself
// from the running kernel's BTF when the source includes one.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Btf } from '@bpfkit/btf';
import { CliError } from '../commands/objects.js';
import { btfToC } from './c.js';

const ARCH: Partial<Record<string, { target: string; multiarch: string }>> = {
  x64: { target: 'x86', multiarch: 'x86_64-linux-gnu' },
  arm64: { target: 'arm64', multiarch: 'aarch64-linux-gnu' },
  s390x: { target: 's390', multiarch: 's390x-linux-gnu' },
  ppc64: { target: 'powerpc', multiarch: 'powerpc64le-linux-gnu' },
  riscv64: { target: 'riscv', multiarch: 'riscv64-linux-gnu' },
};

export interface CompileOptions {
  /** The compiler (default: `$BPF_CLANG`, else `clang`). */
  clang?: string;
  /** More flags, after ours (`-DNAME`, `-I dir`, ...). */
  cflags?: readonly string[];
}

/** The clang arguments bpfkit uses for `source`, with `include` holding a generated vmlinux.h. */
export function clangArgs(
  source: string,
  out: string,
  include: string | undefined,
  extra: readonly string[] = [],
): string[] {
  const arch = ARCH[process.arch];
  const args = ['-O2', '-g', '-target', 'bpf', '-mcpu=v3'];
  if (arch) {
    args.push(`-D__TARGET_ARCH_${arch.target}`);
    if (existsSync(`/usr/include/${arch.multiarch}`)) args.push(`-I/usr/include/${arch.multiarch}`);
  }
  if (include) args.push(`-I${include}`);
  args.push(...extra, '-c', source, '-o', out);
  return args;
}

/** Compile a BPF C source; returns the object's bytes. A missing clang or a compile error is a CliError. */
export function compileBpf(source: string, opts: CompileOptions = {}): Uint8Array {
  let text: string;
  try {
    text = readFileSync(source, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${source}: ${(e as Error).message}`, 2);
  }
  const dir = mkdtempSync(join(tmpdir(), 'bpfkit-cc-'));
  try {
    let include: string | undefined;
    if (/^\s*#\s*include\s*[<"]vmlinux\.h[>"]/m.test(text)) {
      include = join(dir, 'include');
      mkdirSync(include);
      writeFileSync(join(include, 'vmlinux.h'), btfToC(Btf.fromFile('/sys/kernel/btf/vmlinux')));
    }
    const out = join(dir, 'out.o');
    const clang = opts.clang ?? process.env.BPF_CLANG ?? 'clang';
    const r = spawnSync(clang, clangArgs(source, out, include, opts.cflags), { encoding: 'utf8' });
    if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new CliError(
        `${clang} not found: compiling ${source} needs clang with the BPF target (apt-get install clang libbpf-dev), or give a .o`,
      );
    if (r.status !== 0) throw new CliError(`${clang} failed to compile ${source}:\n${r.stderr.trimEnd()}`);
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
