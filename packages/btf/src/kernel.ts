// The two syscalls BTF needs: load a blob into the kernel (with its own log), and read a
// loaded BTF object back by id.
import {
  BpfError,
  btfFdById,
  btfIds,
  btfInfo,
  btfLoad,
  cString,
  type Fd,
  NativeBuffer,
  NotSupportedError,
  objGetInfoByFd,
  structLayout,
} from '@bpfkit/sys';
import { encodeBtf } from './encode.js';
import { Btf } from './spec.js';

/** The kernel rejected a BTF blob; `log` is the kernel's BTF verifier log. */
export class BtfLoadError extends BpfError {
  override name = 'BtfLoadError';
  constructor(
    cause: BpfError,
    detail: string,
    readonly log: string,
  ) {
    const tail = log.trim().split('\n').slice(-3).join(' | ');
    super('BPF_BTF_LOAD', cause.errno, detail, tail ? `BTF log: ${tail}` : undefined);
  }
}

/** Load BTF into the kernel (BPF_BTF_LOAD). On rejection the log is fetched and carried by {@link BtfLoadError}. */
export function loadBtf(btf: Btf | Uint8Array, opts: { name?: string; logSize?: number } = {}): Fd {
  const blob = btf instanceof Btf ? encodeBtf([...btf.types()], btf.raw.strings) : btf;
  using b = NativeBuffer.from(blob);
  const detail = opts.name ? `BTF of ${opts.name}` : `${blob.length}-byte BTF`;
  try {
    return btfLoad({ btf: b.ptr, btfSize: b.size }, detail);
  } catch (e) {
    if (!(e instanceof BpfError) || e.code === 'EPERM') throw e;
    using log = new NativeBuffer(opts.logSize ?? 1 << 20);
    try {
      return btfLoad(
        { btf: b.ptr, btfSize: b.size, btfLogBuf: log.ptr, btfLogSize: log.size, btfLogLevel: 1 },
        detail,
      );
    } catch (again) {
      if (!(again instanceof BpfError)) throw again;
      throw new BtfLoadError(again, detail, cString(log.bytes));
    }
  }
}

/** Read the BTF object with this id from the kernel (vmlinux is id 1; modules are split on it). */
export function btfFromKernel(id: number, base?: Btf, opts: { lazy?: boolean } = {}): Btf {
  using fd = btfFdById(id);
  const info = btfInfo(fd);
  using data = new NativeBuffer(info.btfSize);
  using buf = new NativeBuffer(structLayout.btfInfo.$size[1]);
  buf.view.setBigUint64(structLayout.btfInfo.btf[0], data.ptr, true);
  buf.view.setUint32(structLayout.btfInfo.btf_size[0], info.btfSize, true);
  objGetInfoByFd({ bpfFd: fd.value, infoLen: buf.size, info: buf.ptr });
  return Btf.parse(data.bytes.slice(), info.kernelBtf && id !== 1 ? (base ?? Btf.kernel()) : base, opts);
}

let vmlinuxId: number | undefined;
/**
 * The BTF object id of the kernel's own BTF (vmlinux), found among the loaded BTF objects by
 * their info. Kernels before 5.11 do not list their BTF as an object: `NotSupportedError`.
 */
export function vmlinuxBtfId(): number {
  if (vmlinuxId !== undefined) return vmlinuxId;
  for (const id of btfIds()) {
    try {
      using fd = btfFdById(id);
      const info = btfInfo(fd);
      if (info.kernelBtf && info.name === 'vmlinux') {
        vmlinuxId = id;
        return id;
      }
    } catch (e) {
      if (e instanceof BpfError && e.code === 'ENOENT') continue; // unloaded meanwhile
      throw e;
    }
  }
  throw new NotSupportedError('the kernel’s BTF as a BTF object with an id (vmlinux)', '5.11');
}

/** A kernel module's BTF (split on vmlinux's), its name and BTF object id (for `attach_btf_obj_fd`, `fd_array`). */
export interface ModuleBtf {
  readonly name: string;
  readonly id: number;
  readonly btf: Btf;
}

let modules: readonly ModuleBtf[] | undefined;
/**
 * The BTF of every loaded kernel module (each split on vmlinux's and indexed lazily), with its
 * name and BTF object id, as libbpf finds them to resolve kfuncs, ksyms and attach targets that
 * vmlinux does not have. Read once per process for the running kernel (a `base` other than
 * `Btf.kernel()` reads them again). Without the privilege to iterate BTF objects (EPERM) there
 * are none, as in libbpf.
 */
export function kernelModuleBtfs(base?: Btf): readonly ModuleBtf[] {
  const shared = base === undefined || base === Btf.kernel();
  if (shared && modules) return modules;
  const out: ModuleBtf[] = [];
  try {
    for (const id of btfIds()) {
      let name: string;
      let kernel: boolean;
      try {
        using fd = btfFdById(id);
        const info = btfInfo(fd);
        name = info.name;
        kernel = Boolean(info.kernelBtf);
      } catch (e) {
        if (e instanceof BpfError && e.code === 'ENOENT') continue; // unloaded meanwhile
        throw e;
      }
      if (!kernel || name === 'vmlinux') continue;
      out.push({ name, id, btf: btfFromKernel(id, base ?? Btf.kernel(), { lazy: true }) });
    }
  } catch (e) {
    if (!(e instanceof BpfError && e.code === 'EPERM')) throw e;
  }
  if (shared) modules = out;
  return out;
}
