// Attach targets that need the kernel's objects at load: the BTF object of a kernel module, and
// a function's BTF id in a loaded program's BTF (freplace). Shared by `Program.load({ attachTo })`
// and `loadCollection`.
import { Btf, btfFromKernel, kernelModuleBtfs, vmlinuxBtfId } from '@bpfkit/btf';
import { type AttachType, BpfError, btfFdById, Fd, type HasFd, type ProgType, progInfo } from '@bpfkit/sys';
import { resolveAttachTarget } from './linker/targets.js';

/**
 * An fd of the kernel's BTF object `id` (a module's, as `kernelModuleBtfs()` lists it), or
 * undefined when it is gone (the module unloaded meanwhile). The one way the loader opens a
 * module's BTF object: for attach targets (attach_btf_obj_fd) and for kfuncs and ksyms (fd_array).
 */
export function kernelBtfFdById(id: number): Fd | undefined {
  try {
    return btfFdById(id);
  } catch (e) {
    if (e instanceof BpfError && e.code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * An fd of the kernel's own BTF object named `name` (`vmlinux`, or a module's); undefined when
 * the kernel lists no module of that name. Kernels before 5.11 list no vmlinux object:
 * `NotSupportedError`.
 */
export function kernelBtfFd(name: string): Fd | undefined {
  if (name === 'vmlinux') return kernelBtfFdById(vmlinuxBtfId());
  const m = kernelModuleBtfs().find((x) => x.name === name);
  return m && kernelBtfFdById(m.id);
}

/** The BTF id of function `func` in loaded program `program`'s BTF, or why there is none. */
export function programFuncBtfId(
  program: HasFd | Fd,
  func: string,
): { id: number; progFd: Fd } | { reason: string } {
  const progFd = program instanceof Fd ? program : program.fd;
  const { btfId } = progInfo(progFd);
  if (!btfId) return { reason: 'is in a target program that was loaded without BTF' };
  const f = btfFromKernel(btfId).findAll(func, 'func')[0];
  if (!f) return { reason: 'is not a function of the target program (no BTF func of that name)' };
  return { id: f.id, progFd };
}

/** Load attributes for `attachTo`: the target's BTF id and the fd it lives in (a module's BTF, or the target program). */
export interface AttachToAttrs {
  attachBtfId: number;
  /** A module's BTF object this load opened (closed by the caller after the load). */
  moduleFd?: Fd;
  attachProgFd?: Fd;
}

/**
 * Resolve `attachTo` for a program of `type` and `attachType` the way the loader resolves a
 * section's target (`fentry/<func>`, `lsm/<hook>`, `tp_btf/<tp>`, `iter/<target>`,
 * `module:func`), or as a function of `program` (freplace).
 */
export function attachToAttrs(
  type: ProgType,
  attachType: AttachType | undefined,
  attachTo: string,
  program: HasFd | Fd | undefined,
  name: string,
): AttachToAttrs {
  const section = `attachTo ${attachTo}`;
  const target = resolveAttachTarget(
    { name, section, type, attachType, attachTo },
    { kernel: Btf.kernel(), modules: () => kernelModuleBtfs(), ...(program ? { target: { program } } : {}) },
  );
  if (!target)
    throw new TypeError(`program '${name}': its type takes no attach target (attachTo '${attachTo}')`);
  if (target.kind === 'program') {
    const r = programFuncBtfId(target.program, target.func);
    if ('reason' in r) throw new TypeError(`program '${name}': attach target '${attachTo}' ${r.reason}`);
    return { attachBtfId: r.id, attachProgFd: r.progFd };
  }
  if (target.module === undefined) return { attachBtfId: target.btfId };
  const moduleFd = kernelBtfFdById(target.moduleId!);
  if (!moduleFd)
    throw new TypeError(
      `program '${name}': attach target '${attachTo}' is in module '${target.module}', whose BTF object the kernel does not list`,
    );
  return { attachBtfId: target.btfId, moduleFd };
}
