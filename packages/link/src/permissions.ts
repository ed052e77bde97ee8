// Why an attach was refused: EPERM/EACCES from perf_event_open, tracefs or bpf(2) becomes an
// error that names the capability this process lacks, or, when it has every one the call needs,
// says that the kernel or its environment refused (lockdown, a seccomp or LSM sandbox, sysctls).
import { readFileSync } from 'node:fs';
import { BpfError } from '@bpfkit/sys';

/** The capabilities the attach paths check (linux/capability.h numbers). */
export const CAPABILITIES = { CAP_SYS_ADMIN: 21, CAP_PERFMON: 38, CAP_BPF: 39 } as const;
export type CapabilityName = keyof typeof CAPABILITIES;
/** What a bpf_link over perf-style probes (kprobe.multi, uprobe.multi) needs: BPF and perfmon, or admin. */
export const MULTI_PROBE_NEEDS: readonly (readonly CapabilityName[])[] = [
  ['CAP_BPF', 'CAP_SYS_ADMIN'],
  ['CAP_PERFMON', 'CAP_SYS_ADMIN'],
];

/** This process's effective capability set (CapEff of /proc/self/status). */
export function effectiveCapabilities(status = '/proc/self/status'): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync(status, 'utf8'));
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

const has = (caps: bigint, name: CapabilityName) => (caps >> BigInt(CAPABILITIES[name])) & 1n;

/**
 * The hint for a refused call. `needs` lists what the call requires: each entry is a set of
 * alternatives (`['CAP_PERFMON', 'CAP_SYS_ADMIN']`: either will do).
 */
export function refusalHint(needs: readonly (readonly CapabilityName[])[], caps: bigint): string {
  const missing = needs.filter((any) => !any.some((c) => has(caps, c)));
  if (missing.length)
    return `this process lacks ${missing.map((any) => any.join(' or ')).join(', and ')}; run as root or grant it`;
  const held = [...new Set(needs.flat())].join(', ');
  return `this process has ${held}, so the kernel or its environment refused (kernel lockdown, a seccomp or LSM sandbox, or a sysctl such as kernel.perf_event_paranoid)`;
}

/** Whether `e` is a permission refusal (EPERM or EACCES). */
export function isRefusal(e: unknown): e is BpfError {
  return e instanceof BpfError && (e.code === 'EPERM' || e.code === 'EACCES');
}

/** `e` with the refusal hint when it is EPERM/EACCES; `e` unchanged otherwise. */
export function explainRefusal(
  e: unknown,
  detail: string,
  needs: readonly (readonly CapabilityName[])[],
  caps: bigint = effectiveCapabilities(),
): unknown {
  if (!isRefusal(e)) return e;
  const out = new BpfError(e.cmd, e.errno, detail, refusalHint(needs, caps));
  (out as { cause?: unknown }).cause = e;
  return out;
}
