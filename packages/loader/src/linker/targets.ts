// Attach targets resolved before load, named the way libbpf names them: programs that the kernel
// verifies against one kernel function or hook (tp_btf/, fentry/, fexit/, fmod_ret/, lsm/,
// lsm_cgroup/, iter/ and their sleepable forms) carry the BTF id of that target, and freplace/
// programs (or any of them given a target program) that of a function in another program's BTF.
// Kernel targets are looked up in vmlinux, then in module BTF (`/sys/kernel/btf/<module>`, split
// over vmlinux); `module:function` names one module. Pure but for reading sysfs: the fds a load
// needs (the module's BTF object, the target program) are the collection's business.
import { type Btf, BtfLookupError, type ModuleBtf } from '@bpfkit/btf';
import { AttachType, type Fd, type HasFd, NotSupportedError, ProgType } from '@bpfkit/sys';
import type { ObjectProgram } from '../object/object.js';

/** An attach target that does not exist: names the program, its section and the symbol looked up. */
export class AttachTargetError extends BtfLookupError {
  override name = 'AttachTargetError';
  constructor(
    readonly program: string,
    readonly section: string,
    /** The target as written (`sched_switch`, `nf_conntrack:nf_confirm`, a function of the target program). */
    readonly target: string,
    reason: string,
  ) {
    super(`program '${program}' (section '${section}'): attach target '${target}' ${reason}`);
  }
}

/** Where a program attaches, as its load needs it. */
export type AttachTarget =
  /**
   * A kernel function, hook or tracepoint: its BTF id in vmlinux (module undefined) or in that
   * module's BTF (`moduleId`: the module's BTF object id, which the load opens).
   */
  | { kind: 'kernel'; btfId: number; module: string | undefined; moduleId?: number; typeName: string }
  /** A function of a loaded program: its BTF id is read from that program's BTF at load. */
  | { kind: 'program'; func: string; program: HasFd | Fd };

/** What the caller may set per program (libbpf's `bpf_program__set_attach_target`). */
export interface AttachTargetOption {
  /** Attach to a function of this loaded program (required for freplace/). */
  program?: HasFd | Fd;
  /** The function (or tracepoint, hook, iterator) to attach to, instead of the section's. */
  func?: string;
}

/** A module's BTF, split over vmlinux. */

const TRACING_TARGETS = new Set<number>([
  AttachType.TRACE_RAW_TP,
  AttachType.TRACE_FENTRY,
  AttachType.TRACE_FEXIT,
  AttachType.MODIFY_RETURN,
  AttachType.TRACE_ITER,
]);

/** Whether programs of this type and attach type are loaded with a BTF attach target. */
export function needsAttachTarget(type: ProgType, attachType: number | undefined): boolean {
  if (type === ProgType.EXT) return true;
  if (type === ProgType.LSM) return attachType === AttachType.LSM_MAC || attachType === AttachType.LSM_CGROUP;
  return type === ProgType.TRACING && attachType !== undefined && TRACING_TARGETS.has(attachType);
}

/**
 * The kernel BTF type libbpf looks a target up as: `btf_trace_<tp>` (a typedef) for tp_btf,
 * `bpf_lsm_<hook>` for LSM, `bpf_iter_<target>` for iterators, the function itself otherwise.
 */
export function kernelTargetType(
  attachType: number | undefined,
  name: string,
): { name: string; kind: 'typedef' | 'func' } {
  switch (attachType) {
    case AttachType.TRACE_RAW_TP:
      return { name: `btf_trace_${name}`, kind: 'typedef' };
    case AttachType.LSM_MAC:
    case AttachType.LSM_CGROUP:
      return { name: `bpf_lsm_${name}`, kind: 'func' };
    case AttachType.TRACE_ITER:
      return { name: `bpf_iter_${name}`, kind: 'func' };
    default:
      return { name, kind: 'func' };
  }
}

export interface ResolveTargetOptions {
  /** The kernel's BTF (vmlinux). */
  kernel: Btf;
  /** Module BTF to search after vmlinux (default: none). Called only when vmlinux lacks the target. */
  modules?: () => readonly ModuleBtf[];
  /** The caller's choice for this program. */
  target?: AttachTargetOption;
}

/** A chosen program: its type is known (an unknown section fails before targets are resolved). */
type TargetProgram = Pick<ObjectProgram, 'name' | 'section' | 'attachType' | 'attachTo'> & { type: ProgType };

/**
 * The attach target of a program, or undefined for programs that need none. Throws
 * {@link AttachTargetError} when the target is not named or does not exist.
 */
export function resolveAttachTarget(
  prog: TargetProgram,
  opts: ResolveTargetOptions,
): AttachTarget | undefined {
  if (!needsAttachTarget(prog.type, prog.attachType)) return undefined;
  const name = opts.target?.func ?? prog.attachTo;
  if (!name)
    throw new AttachTargetError(
      prog.name,
      prog.section,
      '',
      'is not named: give it after the section prefix (SEC("fentry/<function>")) or as attachTargets.func',
    );
  if (opts.target?.program) return { kind: 'program', func: name, program: opts.target.program };
  if (prog.type === ProgType.EXT)
    throw new AttachTargetError(
      prog.name,
      prog.section,
      name,
      'is a function of another program: freplace programs need attachTargets.program (the loaded program to extend)',
    );
  const colon = name.indexOf(':');
  const module = colon >= 0 ? name.slice(0, colon) : undefined;
  const symbol = colon >= 0 ? name.slice(colon + 1) : name;
  const want = kernelTargetType(prog.attachType, symbol);
  if (module === undefined || module === 'vmlinux') {
    const t = opts.kernel.findAll(want.name, want.kind)[0];
    if (t) return { kind: 'kernel', btfId: t.id, module: undefined, typeName: want.name };
    if (module === 'vmlinux')
      throw new AttachTargetError(
        prog.name,
        prog.section,
        name,
        `is not in vmlinux BTF (no ${want.kind} '${want.name}')`,
      );
  }
  const modules = opts.modules?.() ?? [];
  for (const m of modules) {
    if (module !== undefined && m.name !== module) continue;
    // only the module's own types: a split BTF's lookups also reach vmlinux, searched already
    const t = m.btf.findAll(want.name, want.kind).find((x) => x.id >= m.btf.raw.firstId || !m.btf.base);
    if (t) return { kind: 'kernel', btfId: t.id, module: m.name, moduleId: m.id, typeName: want.name };
  }
  if (module !== undefined && !modules.some((m) => m.name === module))
    throw new AttachTargetError(
      prog.name,
      prog.section,
      name,
      `names module '${module}', which has no BTF loaded`,
    );
  const since = prog.attachType === AttachType.TRACE_ITER ? ITER_SINCE[symbol] : undefined;
  // a known iterator missing from the kernel's BTF: the kernel lacks it (from the BTF alone, so
  // the linking stage stays pure)
  if (module === undefined && since)
    throw new NotSupportedError(`the ${symbol} iterator (${want.name})`, since);
  throw new AttachTargetError(
    prog.name,
    prog.section,
    name,
    `does not exist: no ${want.kind} '${want.name}' in ${module ? `module '${module}'` : 'vmlinux or module'} BTF`,
  );
}

/** The first Linux release with each iterator target that came after BPF iterators (5.8). */
const ITER_SINCE: Partial<Record<string, string>> = {
  bpf_map_elem: '5.9',
  bpf_sk_storage_map: '5.9',
  tcp: '5.9',
  udp: '5.9',
  sockmap: '5.10',
  task_vma: '5.12',
  unix: '5.17',
  bpf_link: '5.19',
  ksym: '6.0',
  cgroup: '6.1',
  kmem_cache: '6.13',
};
