// /proc/kallsyms: the addresses of kernel symbols, for typeless `__ksym` externs (the address is
// the extern's value), and the probe of the syscall wrapper libbpf names LINUX_HAS_SYSCALL_WRAPPER.
import { readFileSync } from 'node:fs';
import { cachedProbe } from '@bpfkit/sys';

/**
 * The addresses of `names` in /proc/kallsyms (absent names are missing from the result). A name
 * listed twice at different addresses is ambiguous, as libbpf says, and throws.
 */
export function kallsyms(names: ReadonlySet<string>, path = '/proc/kallsyms'): Map<string, bigint> {
  const out = new Map<string, bigint>();
  if (names.size === 0) return out;
  const text = readFileSync(path, 'latin1');
  for (const line of text.split('\n')) {
    // "<address> <type> <name>[\t[module]]"
    const s1 = line.indexOf(' ');
    const s2 = s1 < 0 ? -1 : line.indexOf(' ', s1 + 1);
    if (s2 < 0) continue;
    const tab = line.indexOf('\t', s2 + 1);
    const name = tab < 0 ? line.slice(s2 + 1) : line.slice(s2 + 1, tab);
    if (!names.has(name)) continue;
    const addr = BigInt(`0x${line.slice(0, s1)}`);
    const had = out.get(name);
    if (had !== undefined && had !== addr)
      throw new TypeError(
        `kernel symbol '${name}' is ambiguous in ${path}: 0x${had.toString(16)} or 0x${addr.toString(16)}`,
      );
    out.set(name, addr);
  }
  return out;
}

/**
 * The names of the kernel symbols at `addresses` in /proc/kallsyms (the first name listed at an
 * address; addresses without a symbol are missing from the result): what a translated program's
 * calls point at. Addresses read as zero without CAP_SYSLOG, so nothing matches then.
 */
export function kallsymsAt(addresses: ReadonlySet<bigint>, path = '/proc/kallsyms'): Map<bigint, string> {
  const out = new Map<bigint, string>();
  if (addresses.size === 0) return out;
  for (const line of readFileSync(path, 'latin1').split('\n')) {
    const s1 = line.indexOf(' ');
    const s2 = s1 < 0 ? -1 : line.indexOf(' ', s1 + 1);
    if (s2 < 0) continue;
    const addr = BigInt(`0x${line.slice(0, s1)}`);
    if (addr === 0n || !addresses.has(addr) || out.has(addr)) continue;
    const tab = line.indexOf('\t', s2 + 1);
    out.set(addr, tab < 0 ? line.slice(s2 + 1) : line.slice(s2 + 1, tab));
  }
  return out;
}

/** The `__<arch>_sys_` prefix of syscall wrappers, as libbpf names them per architecture. */
const SYSCALL_PREFIX: Partial<Record<string, string>> = {
  x64: 'x64',
  ia32: 'ia32',
  arm64: 'arm64',
  arm: 'arm',
  s390x: 's390x',
  s390: 's390',
  riscv64: 'riscv',
  ppc64: 'powerpc64',
  ppc: 'powerpc',
  mips: 'mips',
  mipsel: 'mips',
  loong64: 'loongarch',
};

/**
 * The kernel function of syscall `name` as libbpf's ksyscall names it: `__<arch>_sys_<name>`
 * where the kernel wraps syscalls ({@link haveSyscallWrapper}; x86-64: `__x64_sys_getppid`),
 * `sys_<name>` otherwise.
 */
export function syscallFunction(name: string): string {
  if (!/^\w+$/.test(name)) throw new TypeError(`bad syscall name '${name}'`);
  const prefix = SYSCALL_PREFIX[process.arch];
  return prefix && haveSyscallWrapper() ? `__${prefix}_sys_${name}` : `sys_${name}`;
}

/**
 * Whether this kernel wraps syscalls (`__x64_sys_bpf` rather than `sys_bpf`), so that a
 * syscall kprobe reads its arguments through the inner `pt_regs`: the value of
 * `LINUX_HAS_SYSCALL_WRAPPER`. Probed by the wrapper's symbol in /proc/kallsyms. Cached.
 */
export function haveSyscallWrapper(): boolean {
  return cachedProbe('kallsyms:syscall_wrapper', () => {
    const prefix = SYSCALL_PREFIX[process.arch];
    if (!prefix) return false;
    const name = `__${prefix}_sys_bpf`;
    try {
      return kallsyms(new Set([name])).has(name);
    } catch {
      return false;
    }
  });
}
