// Map-type probes: does this kernel create maps of a type? Each creates the smallest map of the
// type that the kernel accepts (some need BTF, an inner map or particular flags), closes it, and
// keeps the answer in @bpfkit/sys's probe cache.
import { encodeBtf, intType, loadBtf } from '@bpfkit/btf';
import {
  BpfError,
  cachedProbe,
  type Fd,
  MapFlags,
  MapType,
  type MapTypeName,
  mapCreate,
  mapTypes,
  NOT_SUPPORTED_CODES,
  NotSupportedError,
  pageSize,
} from '@bpfkit/sys';

/** The first Linux release with each map type (as documented by the kernel and libbpf). */
const MAP_SINCE: Partial<Record<string, string>> = {
  hash: '3.19',
  array: '3.19',
  prog_array: '4.2',
  perf_event_array: '4.3',
  percpu_hash: '4.6',
  percpu_array: '4.6',
  stack_trace: '4.6',
  cgroup_array: '4.8',
  lru_hash: '4.10',
  lru_percpu_hash: '4.10',
  lpm_trie: '4.11',
  array_of_maps: '4.12',
  hash_of_maps: '4.12',
  devmap: '4.14',
  sockmap: '4.14',
  cpumap: '4.15',
  xskmap: '4.18',
  sockhash: '4.18',
  cgroup_storage: '4.19',
  reuseport_sockarray: '4.19',
  percpu_cgroup_storage: '4.20',
  queue: '4.20',
  stack: '4.20',
  sk_storage: '5.2',
  devmap_hash: '5.4',
  struct_ops: '5.6',
  ringbuf: '5.8',
  inode_storage: '5.10',
  task_storage: '5.11',
  bloom_filter: '5.16',
  user_ringbuf: '6.1',
  cgrp_storage: '6.2',
  arena: '6.9',
};
/** A BTF blob with one type, `int` (id 1): enough for the storage maps, which insist on BTF. */
function intBtf(): Fd {
  return loadBtf(encodeBtf([intType()]));
}

function tryCreate(args: Parameters<typeof mapCreate>[0]): boolean {
  try {
    mapCreate(args).close();
    return true;
  } catch (e) {
    if (e instanceof BpfError && NOT_SUPPORTED_CODES.has(e.code)) return false;
    throw e;
  }
}

/** Whether this kernel can create maps of `type`. Cached. */
export function haveMapType(type: MapType | MapTypeName): boolean {
  const t = mapTypes.toValue(type);
  return cachedProbe(`map:${t}`, () => {
    const base = { mapType: t, keySize: 4, valueSize: 4, maxEntries: 1 };
    switch (t) {
      case MapType.STACK_TRACE:
        return tryCreate({ ...base, valueSize: 8 });
      case MapType.LPM_TRIE:
        return tryCreate({ ...base, keySize: 8, mapFlags: MapFlags.NO_PREALLOC });
      case MapType.QUEUE:
      case MapType.STACK:
      case MapType.BLOOM_FILTER:
        return tryCreate({ ...base, keySize: 0 });
      case MapType.RINGBUF:
      case MapType.USER_RINGBUF:
        return tryCreate({ ...base, keySize: 0, valueSize: 0, maxEntries: pageSize });
      case MapType.ARENA:
        return tryCreate({ ...base, keySize: 0, valueSize: 0, mapFlags: MapFlags.MMAPABLE });
      case MapType.CGROUP_STORAGE:
      case MapType.PERCPU_CGROUP_STORAGE:
        return tryCreate({ ...base, keySize: 8, maxEntries: 0 });
      case MapType.ARRAY_OF_MAPS:
      case MapType.HASH_OF_MAPS: {
        using inner = mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 });
        return tryCreate({ ...base, innerMapFd: inner.value });
      }
      case MapType.SK_STORAGE:
      case MapType.INODE_STORAGE:
      case MapType.TASK_STORAGE:
      case MapType.CGRP_STORAGE: {
        using btf = intBtf();
        return tryCreate({
          ...base,
          maxEntries: 0,
          mapFlags: MapFlags.NO_PREALLOC,
          btfFd: btf.value,
          btfKeyTypeId: 1,
          btfValueTypeId: 1,
        });
      }
      case MapType.STRUCT_OPS:
        // Needs a struct_ops type from vmlinux BTF; the kernel knows the map type when it
        // complains about the value type (EINVAL/ENOTSUPP) rather than the map type. Without
        // BTF, a kernel that knows struct_ops answers ENOTSUPP, one that does not answers EINVAL.
        try {
          mapCreate({ ...base, btfVmlinuxValueTypeId: 1 }).close();
          return true;
        } catch (e) {
          if (e instanceof BpfError && e.code === 'ENOTSUPP') return true;
          if (e instanceof BpfError && NOT_SUPPORTED_CODES.has(e.code)) return false;
          throw e;
        }
      default:
        return tryCreate(base);
    }
  });
}

/** Throws {@link NotSupportedError} naming the map type unless the kernel has it. */
export function requireMapType(type: MapType | MapTypeName): void {
  const t = mapTypes.toValue(type);
  const name = mapTypes.toName(t);
  if (!haveMapType(t)) throw new NotSupportedError(`map type ${name}`, MAP_SINCE[name]);
}

/** Whether this kernel creates mmap-able array maps (BPF_F_MMAPABLE, Linux 5.5). Cached. */
export function haveMmapableArrays(): boolean {
  return cachedProbe('map-flag:mmapable', () =>
    tryCreate({
      mapType: MapType.ARRAY,
      keySize: 4,
      valueSize: 4,
      maxEntries: 1,
      mapFlags: MapFlags.MMAPABLE,
    }),
  );
}

/** The first Linux release with map type `type` (by name or number), where known. */
export function mapTypeSince(type: MapType | MapTypeName): string | undefined {
  return MAP_SINCE[typeof type === 'number' ? mapTypes.toName(type) : type];
}
