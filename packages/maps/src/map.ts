import {
  BpfError,
  ClosedError,
  ElemOps,
  type Fd,
  fdNumber,
  type HasFd,
  intOption,
  MAP_SHARED,
  MapFlags,
  type MapInfo,
  MapType,
  type MapTypeName,
  mapCreate,
  mapDeleteBatch,
  mapFdById,
  mapFreeze,
  mapInfo,
  mapLookupAndDeleteBatch,
  mapLookupBatch,
  mapTypes,
  mapUpdateBatch,
  mmapCollected,
  NativeBuffer,
  NotSupportedError,
  PROT_READ,
  PROT_WRITE,
  pageSize,
  UpdateFlags,
} from '@bpfkit/sys';
import { bytes, type Codec, perCpu, stackAddresses } from './codec.js';
import { possibleCpus } from './cpus.js';
import {
  checkCreateFlags,
  denied,
  FD_VALUE_MAP_TYPES,
  type MapFlagName,
  type MapOperation,
  mapFlagsValue,
  operationsOf,
  PER_CPU_MAP_TYPES,
} from './kinds.js';
import { MapMemory } from './memory.js';
import { requireMapType } from './probes.js';

export type UpdateFlag = 'any' | 'noexist' | 'exist';
export interface SetOptions {
  /** `any` (default) creates or replaces, `noexist` only creates, `exist` only replaces. */
  flag?: UpdateFlag;
  /** Take the value's bpf_spin_lock while writing (BPF_F_LOCK). */
  lock?: boolean;
}

export interface MapSpec<K, V> {
  type: MapType | MapTypeName;
  /** Key codec, or a size in bytes (keys are then `Uint8Array`). Queues, stacks, ring buffers: 0. */
  key: Codec<K> | number;
  /** Value codec, or a size in bytes. For per-CPU maps this is one CPU's value. */
  value: Codec<V> | number;
  maxEntries: number;
  /** `BPF_F_*` map flags: the kernel's number, or names such as `['no_prealloc', 'rdonly_prog']`. */
  flags?: number | readonly MapFlagName[];
  /** Up to 15 characters, shown by bpftool. */
  name?: string;
  /** For `array_of_maps` / `hash_of_maps`: a map (or spec) every inner map must match. */
  innerMap?: BpfMap<unknown, unknown> | MapSpec<unknown, unknown>;
  numaNode?: number;
  mapExtra?: bigint;
  /**
   * BTF for the key and value, as a loader supplies it; for a struct_ops map, `vmlinuxValueTypeId`
   * is the kernel's `bpf_struct_ops_<type>` (its BTF id in vmlinux) and `fd` the object's BTF.
   */
  btf?: { fd: Fd; keyTypeId: number; valueTypeId: number; vmlinuxValueTypeId?: number };
}

/** Maps indexed by a u32 below maxEntries: an index past the end is E2BIG from the kernel. */
const ARRAYS = new Set<number>([
  MapType.ARRAY,
  MapType.PERCPU_ARRAY,
  MapType.PROG_ARRAY,
  MapType.PERF_EVENT_ARRAY,
  MapType.CGROUP_ARRAY,
  MapType.ARRAY_OF_MAPS,
]);
const FLAGS: Record<UpdateFlag, number> = {
  any: UpdateFlags.ANY,
  noexist: UpdateFlags.NOEXIST,
  exist: UpdateFlags.EXIST,
};
/** The kernel's update flags for `opts`; an unknown flag is a TypeError, never a silent 'any'. */
function updateFlags(opts: SetOptions): number {
  const f = FLAGS[opts.flag ?? 'any'];
  if (typeof f !== 'number')
    throw new TypeError(`flag must be 'any', 'noexist' or 'exist', got ${String(opts.flag)}`);
  return f | (opts.lock ? UpdateFlags.F_LOCK : 0);
}
const BATCH = 1024;
/** The default options, shared: a default `{}` would allocate on every call of a hot method. */
const NO_OPTIONS: SetOptions = Object.freeze({});
/** Map types whose batch commands failed with EINVAL here (kernels before 5.6, arrays before 5.7). */
const noBatch = new Set<number>();

/** A codec, or a size in bytes for raw `Uint8Array` keys/values; anything else is a TypeError. */
function asCodec<T>(c: Codec<T> | number, what: string): Codec<T> {
  if (typeof c === 'number') return bytes(c) as unknown as Codec<T>;
  if (
    c === null ||
    typeof c !== 'object' ||
    typeof c.encode !== 'function' ||
    typeof c.decode !== 'function' ||
    !Number.isInteger(c.size) ||
    c.size < 0
  )
    throw new TypeError(
      `${what} must be a codec (u32, struct({...}), …) or a size in bytes, got ${typeof c} ${String(c)}`,
    );
  return c;
}

/** Names of the per-CPU map types: their values are arrays with one element per possible CPU. */
export type PerCpuTypeName = 'percpu_hash' | 'percpu_array' | 'lru_percpu_hash' | 'percpu_cgroup_storage';
/** The per-CPU map types by name or by their `MapType` number: `create()` types their values as arrays. */
export type PerCpuType =
  | PerCpuTypeName
  | typeof MapType.PERCPU_HASH
  | typeof MapType.PERCPU_ARRAY
  | typeof MapType.LRU_PERCPU_HASH
  | typeof MapType.PERCPU_CGROUP_STORAGE;

/** Per-CPU maps read and write one value per possible CPU. */
export type MapValue<V, PerCpu extends boolean> = PerCpu extends true ? V[] : V;

/**
 * A BPF map with a JavaScript `Map`-like API. Keys and values go through codecs; per-CPU maps
 * take and give arrays with one value per possible CPU. Single-element operations allocate
 * nothing beyond the decoded value.
 */
export class BpfMap<K = Uint8Array, V = Uint8Array> implements Iterable<[K, V]> {
  readonly fd: Fd;
  readonly type: MapType;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  readonly name: string;
  readonly keyCodec: Codec<K>;
  readonly valueCodec: Codec<V>;
  /** True for per-CPU maps: values are arrays, one per possible CPU. */
  readonly perCpu: boolean;
  /** Values are fds on write and ids on read (program arrays, map-in-maps, ...). */
  readonly #fdValues: boolean;
  /** Keys are u32 indexes below maxEntries (array-like types). */
  readonly #array: boolean;
  readonly #allowed: ReadonlySet<MapOperation>;
  readonly #canGet: boolean;
  readonly #canSet: boolean;
  readonly #canDelete: boolean;
  readonly #ops: ElemOps;
  /** The whole stored value: {@link valueCodec}, or for per-CPU maps one of it per possible CPU. */
  readonly #value: Codec<unknown>;

  private constructor(
    fd: Fd,
    info: Pick<MapInfo, 'type' | 'keySize' | 'valueSize' | 'maxEntries' | 'mapFlags' | 'name'>,
    key?: Codec<K> | number,
    value?: Codec<V> | number,
  ) {
    this.fd = fd;
    this.type = info.type as MapType;
    this.keySize = info.keySize;
    this.valueSize = info.valueSize;
    this.maxEntries = info.maxEntries;
    this.flags = info.mapFlags;
    this.name = info.name;
    this.keyCodec = asCodec(key ?? info.keySize, 'key');
    this.valueCodec =
      value === undefined && this.type === MapType.STACK_TRACE
        ? (stackAddresses(info.valueSize / 8) as unknown as Codec<V>)
        : asCodec(value ?? info.valueSize, 'value');
    this.#allowed = operationsOf(this.type);
    this.#canGet = this.#allowed.has('get');
    this.#canSet = this.#allowed.has('set');
    this.#canDelete = this.#allowed.has('delete');
    this.perCpu = PER_CPU_MAP_TYPES.has(this.type);
    this.#fdValues = FD_VALUE_MAP_TYPES.has(this.type);
    this.#array = ARRAYS.has(this.type) && info.keySize === 4;
    this.#value = this.perCpu ? perCpu(this.valueCodec, possibleCpus()) : this.valueCodec;
    // The ops check `fd` before every syscall: closing it (map.close(), or fd.close() by whoever
    // holds it) closes the map, and its cached fd number is never used again.
    this.#ops = new ElemOps(
      fd,
      info.keySize,
      this.#value.size,
      `map '${this.name || mapTypes.toName(this.type)}'`,
    );
  }

  /** Create a map. Sizes and kinds are checked before the syscall. Per-CPU maps hold `V[]`. */
  static create<K = Uint8Array, V = Uint8Array, T extends MapType | MapTypeName = MapType | MapTypeName>(
    spec: MapSpec<K, V> & { type: T },
  ): BpfMap<K, T extends PerCpuType ? V[] : V> {
    const type = mapTypes.toValue(spec.type);
    const key = asCodec(spec.key, 'key');
    const value =
      type === MapType.STACK_TRACE && typeof spec.value === 'number' && spec.value > 0 && spec.value % 8 === 0
        ? (stackAddresses(spec.value / 8) as unknown as Codec<V>)
        : asCodec(spec.value, 'value');
    const flags = mapFlagsValue(spec.flags);
    checkCreateFlags(type, flags, value.size);
    const isFdMap = FD_VALUE_MAP_TYPES.has(type);
    if (!Number.isInteger(spec.maxEntries) || spec.maxEntries < 0 || spec.maxEntries > 0xffffffff)
      throw new RangeError(
        `maxEntries must be a whole number in 0..4294967295 (a u32), got ${spec.maxEntries}`,
      );
    if (isFdMap && value.size !== 4)
      throw new RangeError(
        `${mapTypes.toName(type)} values are 4-byte fds, got a ${value.size}-byte value codec`,
      );
    if (spec.name !== undefined && (Buffer.byteLength(spec.name) > 15 || !/^[\w.]*$/.test(spec.name)))
      throw new RangeError(`map name '${spec.name}' must be at most 15 characters of [A-Za-z0-9_.]`);
    let inner: BpfMap<unknown, unknown> | undefined;
    let ownInner = false;
    if (type === MapType.ARRAY_OF_MAPS || type === MapType.HASH_OF_MAPS) {
      if (!spec.innerMap)
        throw new TypeError(`${mapTypes.toName(type)} needs innerMap (a map or spec the inner maps match)`);
      inner =
        spec.innerMap instanceof BpfMap
          ? spec.innerMap
          : (BpfMap.create(spec.innerMap) as BpfMap<unknown, unknown>);
      ownInner = !(spec.innerMap instanceof BpfMap);
    }
    try {
      const fd = mapCreate(
        {
          mapType: type,
          keySize: key.size,
          valueSize: value.size,
          maxEntries: spec.maxEntries,
          mapFlags: flags,
          mapName: spec.name ?? '',
          innerMapFd: inner?.fd.value ?? 0,
          numaNode: spec.numaNode ?? 0,
          mapExtra: spec.mapExtra ?? 0n,
          btfFd: spec.btf?.fd.value ?? 0,
          btfKeyTypeId: spec.btf?.keyTypeId ?? 0,
          btfValueTypeId: spec.btf?.valueTypeId ?? 0,
          btfVmlinuxValueTypeId: spec.btf?.vmlinuxValueTypeId ?? 0,
        },
        `${mapTypes.toName(type)}${spec.name ? ` '${spec.name}'` : ''}, key ${key.size}, value ${value.size}, max ${spec.maxEntries}`,
      );
      // A program array empties when its last fd closes: never let the collector do that.
      if (type === MapType.PROG_ARRAY) fd.persistent();
      return new BpfMap<K, T extends PerCpuType ? V[] : V>(
        fd,
        {
          type,
          keySize: key.size,
          valueSize: value.size,
          maxEntries: spec.maxEntries,
          mapFlags: flags,
          name: spec.name ?? '',
        },
        key,
        value as never,
      );
    } catch (e) {
      // EINVAL may mean an unknown map type: say so only when the probe plainly answers that,
      // never with a probe's own failure (EPERM, ...) in place of the create's error
      if (e instanceof BpfError && e.code === 'EINVAL') {
        try {
          requireMapType(type);
        } catch (ns) {
          if (ns instanceof NotSupportedError)
            throw new NotSupportedError(ns.feature, ns.since, { cause: e });
        }
      }
      throw e;
    } finally {
      if (ownInner) inner?.close();
    }
  }

  /**
   * Wrap an fd of an existing map; its shape is read from the kernel. Ownership moves to the map:
   * the same `Fd` becomes {@link fd}, so closing it — through the map or directly — closes the
   * map (every later op throws ClosedError). Pass `fd.dup()` to keep an fd of your own.
   */
  static fromFd<K = Uint8Array, V = Uint8Array>(
    fd: Fd,
    codecs: { key?: Codec<K>; value?: Codec<V> } = {},
  ): BpfMap<K, V> {
    const info = mapInfo(fd);
    if (codecs.key && codecs.key.size !== info.keySize)
      throw new RangeError(
        `key codec ${codecs.key.name} is ${codecs.key.size} bytes; map '${info.name}' has ${info.keySize}-byte keys`,
      );
    if (codecs.value && codecs.value.size !== info.valueSize)
      throw new RangeError(
        `value codec ${codecs.value.name} is ${codecs.value.size} bytes; map '${info.name}' has ${info.valueSize}-byte values`,
      );
    return new BpfMap<K, V>(fd, info, codecs.key, codecs.value);
  }

  /** Open the map with this id (needs CAP_SYS_ADMIN). */
  static fromId<K = Uint8Array, V = Uint8Array>(
    id: number,
    codecs: { key?: Codec<K>; value?: Codec<V> } = {},
  ): BpfMap<K, V> {
    const fd = mapFdById(id);
    try {
      return BpfMap.fromFd(fd, codecs);
    } catch (e) {
      fd.close();
      throw e;
    }
  }

  /** The kernel's view of this map (id, name, sizes, flags, BTF ids). */
  get info(): MapInfo {
    this.#live();
    return mapInfo(this.fd);
  }

  get typeName(): string {
    return mapTypes.toName(this.type);
  }

  /** True once the map or its {@link fd} is closed (closing either closes both). */
  get closed(): boolean {
    return this.#ops.closed;
  }

  #live(): void {
    if (this.#ops.closed) throw new ClosedError(`map '${this.name || mapTypes.toName(this.type)}'`);
  }

  /** Throws unless the map is open and its type allows `op`. */
  #need(op: MapOperation, allowed = this.#allowed.has(op)): void {
    this.#live();
    if (!allowed) throw denied(op, this.type);
  }

  /** Whether this map's type allows `op` from user space (see {@link MapOperation}). */
  supports(op: MapOperation): boolean {
    return this.#allowed.has(op);
  }

  #encodeKey(key: K): void {
    this.keyCodec.encode(this.#ops.keyView, 0, key);
  }

  #decodeValue(): V {
    return this.#value.decode(this.#ops.valueView, 0) as V;
  }

  #encodeValue(value: V | V[] | HasFd | Fd | number): void {
    const view = this.#ops.valueView;
    if (this.#fdValues) {
      view.setUint32(0, fdNumber(value as HasFd | Fd | number, `${this.typeName} values`), true);
      return;
    }
    this.#value.encode(view, 0, value);
  }

  /** The value at `key`, or undefined. Per-CPU maps return one value per CPU; fd maps return the object id. */
  get(key: K): V | undefined {
    if (this.#ops.closed || !this.#canGet) this.#need('get', this.#canGet);
    this.#encodeKey(key);
    if (!this.#ops.lookup(0)) return undefined;
    if (this.#fdValues) return this.#ops.valueView.getUint32(0, true) as V;
    return this.#decodeValue();
  }

  has(key: K): boolean {
    if (this.#ops.closed || !this.#canGet) this.#need('get', this.#canGet);
    this.#encodeKey(key);
    return this.#ops.lookup(0);
  }

  /** Write `value` at `key`. For prog arrays and map-in-maps, the value is a program, map or fd. */
  set(key: K, value: V | HasFd | Fd, opts: SetOptions = NO_OPTIONS): this {
    if (this.#ops.closed || !this.#canSet) this.#need('set', this.#canSet);
    this.#encodeKey(key);
    if (this.#array && this.#ops.keyView.getUint32(0, true) >= this.maxEntries) throw this.#outside();
    this.#encodeValue(value);
    this.#update(opts);
    return this;
  }

  #update(opts: SetOptions): void {
    const flag = opts.flag ?? 'any';
    try {
      this.#ops.update(updateFlags(opts));
    } catch (e) {
      // an array is never full: E2BIG is an index past its end
      if (this.#array && e instanceof BpfError && e.code === 'E2BIG') throw this.#outside(e);
      throw explainUpdate(e, flag, this.name || this.typeName);
    }
  }

  /** An array index (the encoded key) past the array's end. */
  #outside(cause?: unknown): RangeError {
    const index = this.#ops.keyView.getUint32(0, true);
    return new RangeError(
      `index ${index} is outside ${this.name ? `${this.typeName} '${this.name}'` : `the ${this.typeName}`} (maxEntries ${this.maxEntries}: indexes 0..${this.maxEntries - 1})`,
      cause === undefined ? undefined : { cause },
    );
  }

  /** Raw access: the value bytes at the key bytes (copied), whatever the codecs. */
  getBytes(key: Uint8Array): Uint8Array | undefined {
    this.#live();
    this.#rawKey(key);
    if (!this.#ops.lookup(0)) return undefined;
    return this.#ops.value.slice();
  }

  /** Raw access: write value bytes at key bytes, whatever the codecs. Sizes must match exactly. */
  setBytes(key: Uint8Array, value: Uint8Array, opts: SetOptions = NO_OPTIONS): this {
    this.#live();
    this.#rawKey(key);
    if (value.length !== this.#ops.value.length)
      throw new RangeError(
        `map '${this.name}' takes ${this.#ops.value.length}-byte values here, got ${value.length}`,
      );
    this.#ops.value.set(value);
    this.#update(opts);
    return this;
  }

  /** Raw access: delete the key bytes; false when absent. */
  deleteBytes(key: Uint8Array): boolean {
    this.#live();
    this.#rawKey(key);
    return this.#ops.delete();
  }

  #rawKey(key: Uint8Array): void {
    if (key.length !== this.keySize)
      throw new RangeError(`map '${this.name}' has ${this.keySize}-byte keys, got ${key.length}`);
    this.#ops.key.set(key);
  }

  /** Remove `key`; false when it was absent. */
  delete(key: K): boolean {
    if (this.#ops.closed || !this.#canDelete) this.#need('delete', this.#canDelete);
    this.#encodeKey(key);
    return this.#ops.delete();
  }

  /** Look up and remove `key` in one step (hash maps on 5.14+). */
  getAndDelete(key: K): V | undefined {
    this.#need('getAndDelete');
    this.#encodeKey(key);
    try {
      if (!this.#ops.lookupAndDelete(0)) return undefined;
    } catch (e) {
      // hash maps have it since 5.14; other types later or never
      if (e instanceof BpfError && (e.code === 'ENOTSUPP' || e.code === 'EINVAL'))
        throw new NotSupportedError(
          `getAndDelete (BPF_MAP_LOOKUP_AND_DELETE_ELEM) on ${this.typeName} maps`,
          HASHES.has(this.type) ? '5.14' : undefined,
          { cause: e },
        );
      throw e;
    }
    return this.#decodeValue();
  }

  /** Walk the keys with MAP_GET_NEXT_KEY, leaving each in the key buffer; yields nothing for keyless maps. */
  /**
   * The next key of a walk into the key buffer (the first when `cursor` is undefined), from the
   * walk's own copy of where it is: the loop body may use the key buffer for other keys.
   */
  #step(cursor: Uint8Array, first: boolean): boolean {
    this.#live();
    if (!first) this.#ops.key.set(cursor);
    if (!this.#ops.next(first)) return false;
    cursor.set(this.#ops.nextKey);
    this.#ops.key.set(cursor);
    return true;
  }

  /**
   * Every key, by BPF_MAP_GET_NEXT_KEY. The kernel continues from the key just yielded; when that
   * key was deleted meanwhile, a hash map's walk restarts from its first key (so keys may repeat).
   */
  keys(): IterableIterator<K> {
    this.#need('keys');
    return this.#keys();
  }

  *#keys(): IterableIterator<K> {
    const cursor = new Uint8Array(this.keySize);
    for (let first = true; this.#step(cursor, first); first = false)
      yield this.keyCodec.decode(this.#ops.keyView, 0);
  }

  *values(): IterableIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  /**
   * Every [key, value] pair. Hash and array maps are read with BPF_MAP_LOOKUP_BATCH, a chunk of
   * entries per syscall (a bucket at a time, so a concurrent delete never restarts the walk);
   * other maps, and kernels without batch commands, walk the keys and look each one up, skipping
   * keys that vanish between the two.
   */
  entries(opts: { chunk?: number } = {}): IterableIterator<[K, V]> {
    this.#need('entries');
    if (opts.chunk !== undefined) checkChunk(opts.chunk);
    if (this.#allowed.has('batch') && !noBatch.has(this.type)) return this.#batchEntries(opts.chunk);
    return this.#walkEntries();
  }

  #batchEntries(chunk = BATCH): IterableIterator<[K, V]> {
    const chunks = this.#batches(mapLookupBatch, chunk);
    const first = chunks.next();
    if (!first.done && first.value === undefined) {
      chunks.return(undefined);
      return this.#walkEntries(); // no batch commands on this kernel for this map type
    }
    return new BatchEntries<K, V>(
      first.done ? undefined : first.value,
      chunks,
      this.keyCodec,
      this.#value.decode as (view: DataView, offset: number) => V,
      this.keySize,
      this.#value.size,
    );
  }

  *#walkEntries(): IterableIterator<[K, V]> {
    const cursor = new Uint8Array(this.keySize);
    for (let first = true; this.#step(cursor, first); first = false) {
      const k = this.keyCodec.decode(this.#ops.keyView, 0);
      if (!this.#ops.lookup(0)) continue;
      const v = this.#fdValues ? (this.#ops.valueView.getUint32(0, true) as V) : this.#decodeValue();
      yield [k, v];
    }
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  /** Delete every key (maps that allow delete). */
  clear(): void {
    if (this.#ops.closed || !this.#canDelete) this.#need('delete', this.#canDelete);
    for (const k of [...this.keys()]) this.delete(k);
  }

  // ---- batch operations: one syscall per chunk ------------------------------------------------

  /**
   * Runs a lookup batch command chunk by chunk, yielding the filled buffers after each call; the
   * buffers are reused, so read them before the next step. Yields `undefined` once if the kernel
   * has no batch command for this map type. A hash bucket bigger than the chunk (ENOSPC) grows it.
   */
  *#batches(
    cmd: typeof mapLookupBatch,
    chunk: number,
  ): Generator<{ keys: NativeBuffer; values: NativeBuffer; count: number } | undefined> {
    checkChunk(chunk);
    const tokenSize = Math.max(this.keySize, 8);
    let n = chunk;
    let keys = new NativeBuffer(this.keySize * n);
    let values = new NativeBuffer(this.#value.size * n);
    const tokens = new NativeBuffer(2 * tokenSize);
    try {
      let first = true;
      for (;;) {
        this.#live();
        let res: { count: number; done: boolean };
        try {
          res = cmd({
            inBatch: first ? 0n : tokens.ptr,
            outBatch: tokens.at(tokenSize),
            keys: keys.ptr,
            values: values.ptr,
            count: n,
            mapFd: this.fd.value,
          });
        } catch (e) {
          if (e instanceof BpfError && e.code === 'ENOSPC') {
            n *= 2;
            keys.free();
            values.free();
            keys = new NativeBuffer(this.keySize * n);
            values = new NativeBuffer(this.#value.size * n);
            continue;
          }
          if (first && (e instanceof NotSupportedError || (e instanceof BpfError && e.code === 'EINVAL'))) {
            noBatch.add(this.type);
            yield undefined;
            return;
          }
          throw e;
        }
        if (res.count > 0) yield { keys, values, count: res.count };
        if (res.done) return;
        tokens.bytes.copyWithin(0, tokenSize, 2 * tokenSize);
        first = false;
      }
    } finally {
      keys.free();
      values.free();
      tokens.free();
    }
  }

  /**
   * Read every entry with BPF_MAP_LOOKUP_BATCH (or LOOKUP_AND_DELETE_BATCH with `{ delete: true }`),
   * `chunk` entries per syscall. Throws NotSupportedError on kernels without batch commands.
   */
  getBatch(opts: { chunk?: number; delete?: boolean } = {}): [K, V][] {
    this.#need(opts.delete ? 'deleteBatch' : 'batch');
    checkChunk(opts.chunk ?? BATCH);
    const out: [K, V][] = [];
    const kv = this.keySize;
    const vv = this.#value.size;
    for (const b of this.#batches(
      opts.delete ? mapLookupAndDeleteBatch : mapLookupBatch,
      opts.chunk ?? BATCH,
    )) {
      if (b === undefined) throw batchNotSupported(this.type);
      const keys = b.keys.view;
      const values = b.values.view;
      for (let i = 0; i < b.count; i++)
        out.push([this.keyCodec.decode(keys, i * kv), this.#value.decode(values, i * vv) as V]);
    }
    return out;
  }

  /**
   * Read the whole map into caller-owned typed arrays, one chunk per step, with no per-entry
   * allocation: each step fills `keys` and `values` from the start and yields how many entries it
   * wrote (entry i is at key offset `i * keySize`, value offset `i * valueSize`; per-CPU maps put
   * one value per possible CPU, each 8-byte aligned). The chunk is the arrays' capacity. The fast
   * path for large maps, as cilium/ebpf's BatchLookup into slices.
   *
   * ```ts
   * const keys = new Uint32Array(4096), values = new BigUint64Array(4096);
   * for (const n of counts.readBatches(keys, values)) for (let i = 0; i < n; i++) total += values[i];
   * ```
   */
  *readBatches(
    keys: ArrayBufferView,
    values: ArrayBufferView,
    opts: { delete?: boolean } = {},
  ): Generator<number> {
    this.#need(opts.delete ? 'deleteBatch' : 'batch');
    const vv = this.#value.size;
    const n = this.#capacity(keys, values, vv);
    const kOut = new Uint8Array(keys.buffer, keys.byteOffset, n * this.keySize);
    const vOut = new Uint8Array(values.buffer, values.byteOffset, n * vv);
    for (const b of this.#batches(opts.delete ? mapLookupAndDeleteBatch : mapLookupBatch, n)) {
      if (b === undefined) throw batchNotSupported(this.type);
      if (b.count > n) throw new RangeError(`a hash bucket holds more than ${n} entries: pass bigger arrays`);
      kOut.set(b.keys.bytes.subarray(0, b.count * this.keySize));
      vOut.set(b.values.bytes.subarray(0, b.count * vv));
      yield b.count;
    }
  }

  /** How many whole entries fit in both arrays. */
  #capacity(keys: ArrayBufferView, values: ArrayBufferView, vv: number): number {
    if (!ArrayBuffer.isView(keys) || !ArrayBuffer.isView(values))
      throw new TypeError('keys and values must be typed arrays or DataViews');
    if (keys.byteLength % this.keySize !== 0)
      throw new RangeError(
        `keys are ${this.keySize} bytes each; ${keys.byteLength} bytes is not a whole number of keys`,
      );
    const n = keys.byteLength / this.keySize;
    if (values.byteLength < n * vv)
      throw new RangeError(
        `${n} keys need ${n * vv} bytes of values (${vv} per entry), got ${values.byteLength}`,
      );
    if (n === 0) throw new RangeError('keys must hold at least one key');
    return n;
  }

  /**
   * Write the entries held in typed arrays (as {@link readBatches} lays them out) with
   * BPF_MAP_UPDATE_BATCH: one syscall, no per-entry encoding. Returns how many were written.
   */
  setBatchFrom(keys: ArrayBufferView, values: ArrayBufferView, opts: SetOptions = NO_OPTIONS): number {
    this.#need('batch');
    const vv = this.#value.size;
    const n = this.#capacity(keys, values, vv);
    using k = NativeBuffer.from(new Uint8Array(keys.buffer, keys.byteOffset, n * this.keySize));
    using v = NativeBuffer.from(new Uint8Array(values.buffer, values.byteOffset, n * vv));
    try {
      return mapUpdateBatch({
        keys: k.ptr,
        values: v.ptr,
        count: n,
        mapFd: this.fd.value,
        elemFlags: updateFlags(opts),
      }).count;
    } catch (e) {
      if (isMissingCommand(e) && !this.#batchWorks()) throw batchNotSupported(this.type, e);
      throw explainUpdate(e, opts.flag ?? 'any', this.name || this.typeName);
    }
  }

  /** Write many entries with BPF_MAP_UPDATE_BATCH, `chunk` per syscall. Returns how many were written. */
  setBatch(entries: Iterable<[K, V]>, opts: SetOptions & { chunk?: number } = {}): number {
    this.#need('batch');
    checkChunk(opts.chunk ?? BATCH);
    const all = [...entries];
    const n = Math.min(opts.chunk ?? BATCH, Math.max(all.length, 1));
    const vv = this.#value.size;
    using keys = new NativeBuffer(this.keySize * n);
    using values = new NativeBuffer(vv * n);
    let written = 0;
    for (let start = 0; start < all.length; start += n) {
      const part = all.slice(start, start + n);
      part.forEach(([k, v], i) => {
        this.keyCodec.encode(keys.view, i * this.keySize, k);
        this.#value.encode(values.view, i * vv, v);
      });
      try {
        written += mapUpdateBatch({
          keys: keys.ptr,
          values: values.ptr,
          count: part.length,
          mapFd: this.fd.value,
          elemFlags: updateFlags(opts),
        }).count;
      } catch (e) {
        if (written === 0 && isMissingCommand(e) && !this.#batchWorks())
          throw batchNotSupported(this.type, e);
        throw explainUpdate(e, opts.flag ?? 'any', this.name || this.typeName);
      }
    }
    return written;
  }

  /** Delete many keys with BPF_MAP_DELETE_BATCH (hash maps). Returns how many were deleted. */
  deleteBatch(keys: Iterable<K>, opts: { chunk?: number } = {}): number {
    this.#need('deleteBatch');
    checkChunk(opts.chunk ?? BATCH);
    const all = [...keys];
    const n = Math.min(opts.chunk ?? BATCH, Math.max(all.length, 1));
    using buf = new NativeBuffer(this.keySize * n);
    let deleted = 0;
    for (let start = 0; start < all.length; start += n) {
      const part = all.slice(start, start + n);
      part.forEach((k, i) => {
        this.keyCodec.encode(buf.view, i * this.keySize, k);
      });
      try {
        deleted += mapDeleteBatch({ keys: buf.ptr, count: part.length, mapFd: this.fd.value }).count;
      } catch (e) {
        if (deleted === 0 && isMissingCommand(e) && !this.#batchWorks())
          throw batchNotSupported(this.type, e);
        throw e;
      }
    }
    return deleted;
  }

  /** Whether a lookup batch works on this map (it fails with EINVAL only where the command is missing). */
  #batchWorks(): boolean {
    if (noBatch.has(this.type)) return false;
    for (const b of this.#batches(mapLookupBatch, 1)) return b !== undefined;
    return true;
  }

  // ---- queue, stack, bloom filter -------------------------------------------------------------

  /** Queue/stack: add a value (`flag: 'exist'` overwrites the oldest when full). Bloom filter: add. */
  push(value: V, opts: { flag?: 'any' | 'exist' } = {}): void {
    this.#need('push');
    this.valueCodec.encode(this.#ops.valueView, 0, value);
    this.#update(opts);
  }

  /** Queue/stack: remove and return the next value, or undefined when empty. */
  pop(): V | undefined {
    this.#need('pop');
    if (!this.#ops.lookupAndDelete(0)) return undefined;
    return this.valueCodec.decode(this.#ops.valueView, 0);
  }

  /** Queue/stack: the next value without removing it. Bloom filter: use {@link mayContain}. */
  peek(): V | undefined {
    this.#need('pop');
    if (!this.#ops.lookup(0)) return undefined;
    return this.valueCodec.decode(this.#ops.valueView, 0);
  }

  /** Bloom filter: false means certainly absent, true means probably present. */
  mayContain(value: V): boolean {
    this.#need('mayContain');
    this.valueCodec.encode(this.#ops.valueView, 0, value);
    return this.#ops.lookup(0);
  }

  /** Make the map read-only for user space (programs can still write unless BPF_F_RDONLY_PROG). */
  freeze(): void {
    this.#live();
    mapFreeze({ mapFd: this.fd.value }, `map '${this.name}'`);
  }

  /**
   * The values of an array map created with `flags: ['mmapable']`, mapped into this process:
   * reads and writes go straight to the map's memory, which programs see at once. The mapping
   * stays valid for as long as the returned object (or any view of its bytes) is reachable, even
   * after `close()`; the garbage collector unmaps it. `writable: false` maps it read-only (a frozen
   * map can only be mapped so).
   */
  mmap(opts: { writable?: boolean } = {}): MapMemory<V> {
    this.#need('mmap', this.#allowed.has('mmap') && (this.flags & MapFlags.MMAPABLE) !== 0);
    const writable = opts.writable ?? true;
    const stride = (this.valueSize + 7) & ~7; // array elements are 8-byte aligned
    const bytes = Math.ceil((stride * this.maxEntries) / pageSize) * pageSize;
    const buffer = mmapCollected(
      this.fd,
      Math.max(bytes, pageSize),
      writable ? PROT_READ | PROT_WRITE : PROT_READ,
      MAP_SHARED,
    );
    return new MapMemory(buffer, this.valueCodec, this.maxEntries, stride, writable);
  }

  /** Close the map's fd (idempotent); every later op throws ClosedError. Same as `map.fd.close()`. */
  close(): void {
    this.#ops.free();
    this.fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** A batch chunk is a whole number of entries ≥ 1 (0, negative or NaN would never advance). */
function checkChunk(chunk: unknown): void {
  intOption(chunk, 'chunk (entries per batch)', 1, 0xffffffff);
}

const updateHints: Record<string, Partial<Record<UpdateFlag, string>>> = {
  EEXIST: { noexist: "the key already exists and flag 'noexist' only creates" },
  ENOENT: { exist: "the key does not exist and flag 'exist' only replaces" },
  E2BIG: {
    any: "the map is full (maxEntries reached); delete entries, or push with flag 'exist' to overwrite the oldest of a queue or stack",
    noexist: 'the map is full (maxEntries reached)',
  },
};

/** A failed update with the reason its flag implies, or the error unchanged. */
function explainUpdate(e: unknown, flag: UpdateFlag, what: string): unknown {
  if (!(e instanceof BpfError)) return e;
  const hint = updateHints[e.code]?.[flag];
  return hint ? new BpfError(e.cmd, e.errno, `map '${what}', flag '${flag}'`, hint) : e;
}

/** A batch command the kernel does not have: NotSupportedError already, or EINVAL from the kernel. */
function isMissingCommand(e: unknown): boolean {
  return e instanceof NotSupportedError || (e instanceof BpfError && e.code === 'EINVAL');
}

const HASHES = new Set<number>([
  MapType.HASH,
  MapType.PERCPU_HASH,
  MapType.LRU_HASH,
  MapType.LRU_PERCPU_HASH,
]);

function batchNotSupported(type: number, cause?: unknown): NotSupportedError {
  return new NotSupportedError(`batch operations on ${mapTypes.toName(type)} maps`, '5.6', { cause });
}

type Chunk = { keys: NativeBuffer; values: NativeBuffer; count: number };

/**
 * The iterator behind batched `entries()`: decodes one entry per `next()` from the current chunk
 * and fetches the next chunk when it runs out. Hand-written rather than a generator, and reusing
 * its result object, because this loop runs once per entry of maps with millions of them.
 */
class BatchEntries<K, V> implements IterableIterator<[K, V]> {
  #chunk: Chunk | undefined;
  #started = false;
  readonly #pairs: [K, V][] = [];
  #i = 0;
  #n = 0;
  readonly #result: IteratorResult<[K, V]> = { done: false, value: undefined as unknown as [K, V] };
  constructor(
    first: Chunk | undefined,
    readonly chunks: Generator<Chunk | undefined>,
    readonly keyCodec: Codec<K>,
    readonly decodeValue: (view: DataView, offset: number) => V,
    readonly keySize: number,
    readonly valueSize: number,
  ) {
    this.#chunk = first;
  }

  next(): IteratorResult<[K, V]> {
    const res = this.#result;
    while (this.#i >= this.#n) {
      if (!this.#fill()) {
        res.done = true;
        res.value = undefined;
        return res;
      }
    }
    res.value = this.#pairs[this.#i++] as [K, V];
    return res;
  }

  /** Decode the next chunk into pairs in one tight loop. False at the end. */
  #fill(): boolean {
    let c = this.#chunk;
    if (this.#started || c === undefined) {
      const r = this.chunks.next();
      c = this.#chunk = r.done ? undefined : r.value;
    }
    this.#started = true;
    if (c === undefined) return false;
    const { keyCodec, decodeValue, keySize, valueSize } = this;
    const kv = c.keys.view;
    const vv = c.values.view;
    const pairs = this.#pairs;
    for (let i = 0; i < c.count; i++)
      pairs[i] = [keyCodec.decode(kv, i * keySize), decodeValue(vv, i * valueSize)];
    this.#i = 0;
    this.#n = c.count;
    return true;
  }

  return(): IteratorResult<[K, V]> {
    this.chunks.return(undefined);
    this.#chunk = undefined;
    return { done: true, value: undefined };
  }

  [Symbol.iterator](): this {
    return this;
  }
}
