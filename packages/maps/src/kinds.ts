// What each map type allows from user space. The kernel answers EINVAL or ENOTSUPP for an
// operation a map type lacks; checking first gives the caller a message that says what to use.
import { MapFlags, MapType, mapTypes } from '@bpfkit/sys';

/** The user-space operations of a map; each map type allows a subset. */
export type MapOperation =
  | 'get'
  | 'set'
  | 'delete'
  | 'getAndDelete'
  | 'keys'
  | 'entries'
  | 'batch'
  | 'deleteBatch'
  | 'push'
  | 'pop'
  | 'mayContain'
  | 'mmap';

/** An operation this map type does not allow, refused before any syscall. */
export class MapOperationError extends TypeError {
  override name = 'MapOperationError';
  constructor(
    readonly operation: MapOperation,
    readonly mapType: string,
    reason: string,
  ) {
    super(`${operation}() is not allowed on ${mapType} maps: ${reason}`);
  }
}

const KEYED: MapOperation[] = ['get', 'set', 'delete', 'keys', 'entries'];
const HASH: MapOperation[] = [...KEYED, 'getAndDelete', 'batch', 'deleteBatch'];
const ARRAY: MapOperation[] = ['get', 'set', 'keys', 'entries', 'batch'];
const FD_ARRAY: MapOperation[] = ['set', 'delete', 'keys'];

const allowed = new Map<number, readonly MapOperation[]>([
  [MapType.HASH, HASH],
  [MapType.PERCPU_HASH, HASH],
  [MapType.LRU_HASH, HASH],
  [MapType.LRU_PERCPU_HASH, HASH],
  [MapType.ARRAY, [...ARRAY, 'mmap']],
  [MapType.PERCPU_ARRAY, ARRAY],
  [MapType.PROG_ARRAY, KEYED],
  [MapType.ARRAY_OF_MAPS, KEYED],
  [MapType.HASH_OF_MAPS, KEYED],
  [MapType.PERF_EVENT_ARRAY, FD_ARRAY],
  [MapType.CGROUP_ARRAY, FD_ARRAY],
  [MapType.STACK_TRACE, ['get', 'delete', 'getAndDelete', 'keys', 'entries']],
  [MapType.QUEUE, ['push', 'pop']],
  [MapType.STACK, ['push', 'pop']],
  [MapType.BLOOM_FILTER, ['push', 'mayContain']],
  [MapType.RINGBUF, []],
  [MapType.USER_RINGBUF, []],
]);

const reasons: Partial<Record<MapOperation, (type: number) => string>> = {
  get: (t) =>
    t === MapType.QUEUE || t === MapType.STACK
      ? 'use peek() or pop()'
      : t === MapType.BLOOM_FILTER
        ? 'use mayContain()'
        : 'the kernel keeps its values (perf event or cgroup fds) out of user space',
  set: (t) =>
    t === MapType.QUEUE || t === MapType.STACK || t === MapType.BLOOM_FILTER
      ? 'use push()'
      : 'only programs write it (bpf_get_stackid)',
  delete: (t) =>
    t === MapType.ARRAY || t === MapType.PERCPU_ARRAY
      ? 'array elements always exist; write a zero value instead'
      : 'it has no keys to delete',
  getAndDelete: (t) =>
    t === MapType.QUEUE || t === MapType.STACK ? 'use pop()' : 'only hash maps and stack traces have it',
  entries: () => 'the kernel keeps its values (perf event or cgroup fds) out of user space; use keys()',
  batch: () => 'the kernel has batch commands only for hash and array maps',
  deleteBatch: () => 'the kernel deletes in batches only from hash maps',
  push: () => 'only queues, stacks and bloom filters take push(); use set()',
  pop: () => 'only queues and stacks pop; use getAndDelete()',
  mayContain: () => 'only bloom filters answer mayContain(); use has()',
  mmap: () => 'only array maps created with BPF_F_MMAPABLE can be mapped',
};

/**
 * Map types created without key/value BTF, as libbpf creates them (`bpf_object__create_map`):
 * the kernel checks BTF for these with `map_check_no_btf` (ENOTSUPP) on some or all releases, and
 * their values are fds, stack addresses or nothing a type could describe. Object files still
 * declare their keys and values with `__type`, so a loader drops the BTF instead of failing.
 */
const WITHOUT_KEY_VALUE_BTF = new Set<number>([
  MapType.PERF_EVENT_ARRAY,
  MapType.CGROUP_ARRAY,
  MapType.STACK_TRACE,
  MapType.ARRAY_OF_MAPS,
  MapType.HASH_OF_MAPS,
  MapType.DEVMAP,
  MapType.DEVMAP_HASH,
  MapType.CPUMAP,
  MapType.XSKMAP,
  MapType.SOCKMAP,
  MapType.SOCKHASH,
  MapType.QUEUE,
  MapType.STACK,
  MapType.ARENA,
]);

/** Whether maps of this type are created with key/value BTF when an object declares it (libbpf's rule). */
export function takesKeyValueBtf(type: number): boolean {
  return !WITHOUT_KEY_VALUE_BTF.has(type);
}

/** The operations a map type allows; unknown (newer) types get the keyed ones and let the kernel decide. */
export function operationsOf(type: number): ReadonlySet<MapOperation> {
  return new Set(allowed.get(type) ?? KEYED);
}

export function denied(op: MapOperation, type: number): MapOperationError {
  const reason =
    type === MapType.RINGBUF || type === MapType.USER_RINGBUF
      ? 'ring buffers are read and written through @bpfkit/perf'
      : (reasons[op]?.(type) ?? 'the map type does not support it');
  return new MapOperationError(op, mapTypes.toName(type), reason);
}

/** `BPF_F_*` map creation flags by name: `'no_prealloc'`, `'rdonly_prog'`, `'mmapable'`, ... */
export type MapFlagName = Lowercase<keyof typeof MapFlags>;

/** Flags as the kernel's number, or as names that are OR-ed together. */
export function mapFlagsValue(flags: number | readonly MapFlagName[] | undefined): number {
  if (flags === undefined) return 0;
  if (typeof flags === 'number') {
    if (!Number.isInteger(flags) || flags < 0 || flags > 0xffffffff)
      throw new RangeError(`map flags must be a u32, got ${flags}`);
    return flags;
  }
  let out = 0;
  for (const name of flags) {
    const bit = (MapFlags as Record<string, number>)[String(name).toUpperCase()];
    if (bit === undefined)
      throw new RangeError(
        `unknown map flag '${name}'; known: ${Object.keys(MapFlags)
          .map((k) => k.toLowerCase())
          .join(', ')}`,
      );
    out |= bit;
  }
  return out;
}

/** Checks a spec's flags against its type before the syscall, naming the flag that is missing. */
export function checkCreateFlags(type: number, flags: number, valueSize: number): void {
  const name = mapTypes.toName(type);
  if (type === MapType.LPM_TRIE && !(flags & MapFlags.NO_PREALLOC))
    throw new RangeError(`${name} maps need flags to include BPF_F_NO_PREALLOC ('no_prealloc')`);
  if (flags & MapFlags.MMAPABLE && type !== MapType.ARRAY)
    throw new RangeError(`BPF_F_MMAPABLE ('mmapable') needs an array map, not ${name}`);
  if (type === MapType.STACK_TRACE && (valueSize === 0 || valueSize % 8 !== 0))
    throw new RangeError(`stack_trace values are arrays of 8-byte addresses, got a ${valueSize}-byte value`);
}

/** Map types whose values are one per possible CPU (read and written as arrays). */
export const PER_CPU_MAP_TYPES: ReadonlySet<number> = new Set<number>([
  MapType.PERCPU_HASH,
  MapType.PERCPU_ARRAY,
  MapType.LRU_PERCPU_HASH,
  MapType.PERCPU_CGROUP_STORAGE,
]);

/** Map types whose values are fds on write and object ids on read. */
export const FD_VALUE_MAP_TYPES: ReadonlySet<number> = new Set<number>([
  MapType.PROG_ARRAY,
  MapType.ARRAY_OF_MAPS,
  MapType.HASH_OF_MAPS,
  MapType.PERF_EVENT_ARRAY,
  MapType.CGROUP_ARRAY,
]);
