import { MapType } from './abi.generated.js';
import { mapCreate } from './commands.js';
import { BpfError } from './errors.js';
import { getrlimit, RLIM_INFINITY, RLIMIT_MEMLOCK, setrlimit } from './os.js';

let decided: boolean | undefined;

/**
 * Kernels before 5.11 charge BPF memory against RLIMIT_MEMLOCK; newer ones use memcg. This
 * probes which one runs (a tiny map under a zero limit) and raises the limit only when it is
 * still charged. Returns true when it raised the limit. Cached per process.
 */
export function removeMemlockLimit(): boolean {
  if (decided !== undefined) return decided;
  const old = getrlimit(RLIMIT_MEMLOCK);
  let charged = false;
  setrlimit(RLIMIT_MEMLOCK, 0n, old.max);
  try {
    mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 }).close();
  } catch (e) {
    if (!(e instanceof BpfError) || e.code !== 'EPERM') {
      setrlimit(RLIMIT_MEMLOCK, old.cur, old.max);
      throw e;
    }
    charged = true;
  }
  if (charged) setrlimit(RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY);
  else setrlimit(RLIMIT_MEMLOCK, old.cur, old.max);
  decided = charged;
  return charged;
}
