import { MapType } from './abi.generated.js';
import { mapCreate } from './commands.js';
import { BpfError } from './errors.js';
import { getrlimit, RLIM_INFINITY, RLIMIT_MEMLOCK, setrlimit } from './os.js';

let decided: boolean | undefined;
let probing = false;
let auto = true;

/**
 * Before the first map, program or BTF object of the process: raise RLIMIT_MEMLOCK where the
 * kernel still charges it (before 5.11), as libbpf 1.0 does, so the default 64 KiB (or 8 MiB)
 * limit does not turn map creation into EPERM. Off with {@link setAutoMemlock}(false).
 */
export function autoMemlock(): void {
  if (decided !== undefined || probing || !auto) return;
  try {
    removeMemlockLimit();
  } catch {
    decided = false; // no privileges to probe or raise it: the call itself will say why
  }
}

/** Whether bpfkit raises RLIMIT_MEMLOCK on its own where the kernel charges it (the default: yes). */
export function setAutoMemlock(enabled: boolean): void {
  auto = enabled;
}

/**
 * Kernels before 5.11 charge BPF memory against RLIMIT_MEMLOCK; newer ones use memcg. This
 * probes which one runs (a tiny map under a zero limit) and raises the limit only when it is
 * still charged. Returns true when it raised the limit. Cached per process.
 */
export function removeMemlockLimit(): boolean {
  if (decided !== undefined) return decided;
  const old = getrlimit(RLIMIT_MEMLOCK);
  let charged = false;
  probing = true;
  try {
    setrlimit(RLIMIT_MEMLOCK, 0n, old.max);
    try {
      mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 }).close();
    } catch (e) {
      if (!(e instanceof BpfError) || e.code !== 'EPERM') throw e;
      charged = true;
    }
  } finally {
    probing = false;
    setrlimit(RLIMIT_MEMLOCK, old.cur, old.max);
  }
  if (charged) setrlimit(RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY);
  decided = charged;
  return charged;
}
