import {
  BpfError,
  ClosedError,
  ElemOps,
  Fd,
  haveMapType,
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
  NativeBuffer,
  NotSupportedError,
  requireMapType,
  UpdateFlags,
} from '@bpfkit/sys';
import { bytes, type Codec } from './codec.js';
import { possibleCpus } from './cpus.js';

export type UpdateFlag = 'any' | 'noexist' | 'exist';
export interface SetOptions {
  /** `any` (default) creates or replaces, `noexist` only creates, `exist` only replaces. */
  flag?: UpdateFlag;
  /** Take the value's bpf_spin_lock while writing (BPF_F_LOCK). */
  lock?: boolean;
}

/** Anything that owns a BPF object fd: a map, a program, a link. */
export interface HasFd {
  readonly fd: Fd;
}

export interface MapSpec<K, V> {
  type: MapType | MapTypeName;
  /** Key codec, or a size in bytes (keys are then `Uint8Array`). Queues, stacks, ring buffers: 0. */
  key: Codec<K> | number;
  /** Value codec, or a size in bytes. For per-CPU maps this is one CPU's value. */
  value: Codec<V> | number;
  maxEntries: number;
  /** Numeric `BPF_F_*` map flags. */
  flags?: number;
  /** Up to 15 characters, shown by bpftool. */
  name?: string;
  /** For `array_of_maps` / `hash_of_maps`: a map (or spec) every inner map must match. */
  innerMap?: BpfMap<unknown, unknown> | MapSpec<unknown, unknown>;
  numaNode?: number;
  mapExtra?: bigint;
  /** BTF for the key and value, as a loader supplies it. */
  btf?: { fd: Fd; keyTypeId: number; valueTypeId: number };
}

const PERCPU = new Set<number>([
  MapType.PERCPU_HASH,
  MapType.PERCPU_ARRAY,
  MapType.LRU_PERCPU_HASH,
  MapType.PERCPU_CGROUP_STORAGE,
]);
/** Maps whose values are fds on write and ids on read. */
const FD_VALUES = new Set<number>([
  MapType.PROG_ARRAY,
  MapType.ARRAY_OF_MAPS,
  MapType.HASH_OF_MAPS,
  MapType.PERF_EVENT_ARRAY,
  MapType.CGROUP_ARRAY,
]);
const FLAGS: Record<UpdateFlag, number> = {
  any: UpdateFlags.ANY,
  noexist: UpdateFlags.NOEXIST,
  exist: UpdateFlags.EXIST,
};
const BATCH = 256;

const asCodec = <T>(c: Codec<T> | number): Codec<T> =>
  typeof c === 'number' ? (bytes(c) as unknown as Codec<T>) : c;

/** Names of the per-CPU map types: their values are arrays with one element per possible CPU. */
export type PerCpuTypeName = 'percpu_hash' | 'percpu_array' | 'lru_percpu_hash' | 'percpu_cgroup_storage';

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
  readonly #ops: ElemOps;
  readonly #stride: number;
  readonly #ncpu: number;
  #closed = false;

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
    this.keyCodec = asCodec(key ?? info.keySize);
    this.valueCodec = asCodec(value ?? info.valueSize);
    this.perCpu = PERCPU.has(this.type);
    this.#fdValues = FD_VALUES.has(this.type);
    this.#ncpu = this.perCpu ? possibleCpus() : 1;
    this.#stride = this.perCpu ? (info.valueSize + 7) & ~7 : info.valueSize;
    this.#ops = new ElemOps(fd.value, info.keySize, this.#stride * this.#ncpu);
  }

  /** Create a map. Sizes and kinds are checked before the syscall. Per-CPU maps hold `V[]`. */
  static create<K = Uint8Array, V = Uint8Array, T extends MapType | MapTypeName = MapType | MapTypeName>(
    spec: MapSpec<K, V> & { type: T },
  ): BpfMap<K, T extends PerCpuTypeName ? V[] : V> {
    const type = mapTypes.toValue(spec.type);
    const key = asCodec(spec.key);
    const value = asCodec(spec.value);
    const isFdMap = FD_VALUES.has(type);
    if (!Number.isInteger(spec.maxEntries) || spec.maxEntries < 0)
      throw new RangeError(`maxEntries must be a whole number ≥ 0, got ${spec.maxEntries}`);
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
          mapFlags: spec.flags ?? 0,
          mapName: spec.name ?? '',
          innerMapFd: inner?.fd.value ?? 0,
          numaNode: spec.numaNode ?? 0,
          mapExtra: spec.mapExtra ?? 0n,
          btfFd: spec.btf?.fd.value ?? 0,
          btfKeyTypeId: spec.btf?.keyTypeId ?? 0,
          btfValueTypeId: spec.btf?.valueTypeId ?? 0,
        },
        `${mapTypes.toName(type)}${spec.name ? ` '${spec.name}'` : ''}, key ${key.size}, value ${value.size}, max ${spec.maxEntries}`,
      );
      // A program array empties when its last fd closes: never let the collector do that.
      if (type === MapType.PROG_ARRAY) fd.persistent();
      return new BpfMap<K, T extends PerCpuTypeName ? V[] : V>(
        fd,
        {
          type,
          keySize: key.size,
          valueSize: value.size,
          maxEntries: spec.maxEntries,
          mapFlags: spec.flags ?? 0,
          name: spec.name ?? '',
        },
        key,
        value as never,
      );
    } catch (e) {
      if (e instanceof BpfError && e.code === 'EINVAL' && !haveMapType(type)) {
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

  /** Wrap an fd (ownership moves to the map) of an existing map; its shape is read from the kernel. */
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

  get closed(): boolean {
    return this.#closed;
  }

  #live(): void {
    if (this.#closed) throw new ClosedError(`map '${this.name || mapTypes.toName(this.type)}'`);
  }

  #encodeKey(key: K): void {
    this.keyCodec.encode(this.#ops.keyView, 0, key);
  }

  #decodeValue(): V | V[] {
    const view = this.#ops.valueView;
    if (!this.perCpu) return this.valueCodec.decode(view, 0);
    const out = new Array<V>(this.#ncpu);
    for (let c = 0; c < this.#ncpu; c++) out[c] = this.valueCodec.decode(view, c * this.#stride);
    return out;
  }

  #encodeValue(value: V | V[] | HasFd | Fd | number): void {
    const view = this.#ops.valueView;
    if (this.#fdValues) {
      const fd =
        typeof value === 'number' ? value : value instanceof Fd ? value.value : (value as HasFd).fd?.value;
      if (typeof fd !== 'number') throw new TypeError(`${this.typeName} values are maps, programs or fds`);
      view.setUint32(0, fd, true);
      return;
    }
    if (!this.perCpu) {
      this.valueCodec.encode(view, 0, value as V);
      return;
    }
    if (!Array.isArray(value) || value.length !== this.#ncpu)
      throw new RangeError(
        `per-CPU map '${this.name}' takes an array of ${this.#ncpu} values (one per possible CPU)`,
      );
    for (let c = 0; c < this.#ncpu; c++) this.valueCodec.encode(view, c * this.#stride, value[c] as V);
  }

  /** The value at `key`, or undefined. Per-CPU maps return one value per CPU; fd maps return the object id. */
  get(key: K): V | undefined {
    this.#live();
    this.#encodeKey(key);
    if (!this.#ops.lookup(0)) return undefined;
    if (this.#fdValues) return this.#ops.valueView.getUint32(0, true) as V;
    return this.#decodeValue() as V;
  }

  has(key: K): boolean {
    this.#live();
    this.#encodeKey(key);
    return this.#ops.lookup(0);
  }

  /** Write `value` at `key`. For prog arrays and map-in-maps, the value is a program, map or fd. */
  set(key: K, value: V | HasFd | Fd | number, opts: SetOptions = {}): this {
    this.#live();
    this.#encodeKey(key);
    this.#encodeValue(value);
    this.#ops.update(FLAGS[opts.flag ?? 'any'] | (opts.lock ? UpdateFlags.F_LOCK : 0));
    return this;
  }

  /** Raw access: the value bytes at the key bytes (copied), whatever the codecs. */
  getBytes(key: Uint8Array): Uint8Array | undefined {
    this.#live();
    this.#rawKey(key);
    if (!this.#ops.lookup(0)) return undefined;
    return this.#ops.value.slice();
  }

  /** Raw access: write value bytes at key bytes, whatever the codecs. Sizes must match exactly. */
  setBytes(key: Uint8Array, value: Uint8Array, opts: SetOptions = {}): this {
    this.#live();
    this.#rawKey(key);
    if (value.length !== this.#ops.value.length)
      throw new RangeError(
        `map '${this.name}' takes ${this.#ops.value.length}-byte values here, got ${value.length}`,
      );
    this.#ops.value.set(value);
    this.#ops.update(FLAGS[opts.flag ?? 'any'] | (opts.lock ? UpdateFlags.F_LOCK : 0));
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
    this.#live();
    this.#encodeKey(key);
    return this.#ops.delete();
  }

  /** Look up and remove `key` in one step (hash maps on 5.14+). */
  getAndDelete(key: K): V | undefined {
    this.#live();
    this.#encodeKey(key);
    if (!this.#ops.lookupAndDelete(0)) return undefined;
    return this.#decodeValue() as V;
  }

  /** Walk the keys with MAP_GET_NEXT_KEY, leaving each in the key buffer; yields nothing for keyless maps. */
  *#walk(): Generator<void> {
    this.#live();
    if (this.keySize === 0) return;
    let first = true;
    for (;;) {
      this.#live();
      if (!this.#ops.next(first)) return;
      first = false;
      this.#ops.key.set(this.#ops.nextKey);
      yield;
    }
  }

  /** Every key. Deleting the current key while iterating restarts a hash map's walk, as in the kernel. */
  *keys(): IterableIterator<K> {
    for (const _ of this.#walk()) yield this.keyCodec.decode(this.#ops.keyView, 0);
  }

  *values(): IterableIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  /** Every [key, value] pair; keys that vanish between the walk and the lookup are skipped. */
  *entries(): IterableIterator<[K, V]> {
    for (const _ of this.#walk()) {
      const k = this.keyCodec.decode(this.#ops.keyView, 0);
      if (!this.#ops.lookup(0)) continue;
      const v = this.#fdValues ? (this.#ops.valueView.getUint32(0, true) as V) : (this.#decodeValue() as V);
      yield [k, v];
    }
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  /** Delete every key (hash-like maps). */
  clear(): void {
    for (const k of [...this.keys()]) this.delete(k);
  }

  // ---- batch operations: one syscall per chunk ------------------------------------------------

  #batchBuffers(n: number) {
    const keys = new NativeBuffer(this.keySize * n);
    const values = new NativeBuffer(this.#stride * this.#ncpu * n);
    const tokens = new NativeBuffer(2 * Math.max(this.keySize, 8));
    return { keys, values, tokens, tokenSize: Math.max(this.keySize, 8) };
  }

  #decodeBatch(values: NativeBuffer, keys: NativeBuffer, count: number, out: [K, V][]): void {
    const vsize = this.#stride * this.#ncpu;
    for (let i = 0; i < count; i++) {
      const kv = new DataView(keys.bytes.buffer, keys.bytes.byteOffset + i * this.keySize, this.keySize);
      const vv = new DataView(values.bytes.buffer, values.bytes.byteOffset + i * vsize, vsize);
      let v: V | V[];
      if (!this.perCpu) v = this.valueCodec.decode(vv, 0);
      else {
        const arr = new Array<V>(this.#ncpu);
        for (let c = 0; c < this.#ncpu; c++) arr[c] = this.valueCodec.decode(vv, c * this.#stride);
        v = arr;
      }
      out.push([this.keyCodec.decode(kv, 0), v as V]);
    }
  }

  /**
   * Read every entry with BPF_MAP_LOOKUP_BATCH (or LOOKUP_AND_DELETE_BATCH with `{ delete: true }`),
   * `chunk` entries per syscall. Much faster than `entries()` on large maps.
   */
  getBatch(opts: { chunk?: number; delete?: boolean } = {}): [K, V][] {
    this.#live();
    const n = opts.chunk ?? BATCH;
    const b = this.#batchBuffers(n);
    const out: [K, V][] = [];
    const cmd = opts.delete ? mapLookupAndDeleteBatch : mapLookupBatch;
    try {
      let first = true;
      for (;;) {
        const { count, done } = cmd({
          inBatch: first ? 0n : b.tokens.ptr,
          outBatch: b.tokens.at(b.tokenSize),
          keys: b.keys.ptr,
          values: b.values.ptr,
          count: n,
          mapFd: this.fd.value,
        });
        this.#decodeBatch(b.values, b.keys, count, out);
        if (done) return out;
        b.tokens.bytes.copyWithin(0, b.tokenSize, 2 * b.tokenSize);
        first = false;
      }
    } finally {
      b.keys.free();
      b.values.free();
      b.tokens.free();
    }
  }

  /** Write many entries with BPF_MAP_UPDATE_BATCH. Returns how many were written. */
  setBatch(entries: Iterable<[K, V]>, opts: SetOptions & { chunk?: number } = {}): number {
    this.#live();
    const all = [...entries];
    const n = Math.min(opts.chunk ?? BATCH, Math.max(all.length, 1));
    const b = this.#batchBuffers(n);
    let written = 0;
    try {
      for (let start = 0; start < all.length; start += n) {
        const part = all.slice(start, start + n);
        part.forEach(([k, v], i) => {
          this.keyCodec.encode(b.keys.view, i * this.keySize, k);
          if (!this.perCpu) this.valueCodec.encode(b.values.view, i * this.#stride, v);
          else {
            const arr = v as unknown as V[];
            if (!Array.isArray(arr) || arr.length !== this.#ncpu)
              throw new RangeError(
                `per-CPU map '${this.name}' takes an array of ${this.#ncpu} values per key`,
              );
            for (let c = 0; c < this.#ncpu; c++)
              this.valueCodec.encode(b.values.view, (i * this.#ncpu + c) * this.#stride, arr[c] as V);
          }
        });
        const { count } = mapUpdateBatch({
          keys: b.keys.ptr,
          values: b.values.ptr,
          count: part.length,
          mapFd: this.fd.value,
          elemFlags: FLAGS[opts.flag ?? 'any'] | (opts.lock ? UpdateFlags.F_LOCK : 0),
        });
        written += count;
      }
      return written;
    } finally {
      b.keys.free();
      b.values.free();
      b.tokens.free();
    }
  }

  /** Delete many keys with BPF_MAP_DELETE_BATCH. Returns how many were deleted. */
  deleteBatch(keys: Iterable<K>, opts: { chunk?: number } = {}): number {
    this.#live();
    const all = [...keys];
    const n = Math.min(opts.chunk ?? BATCH, Math.max(all.length, 1));
    using buf = new NativeBuffer(this.keySize * n);
    let deleted = 0;
    for (let start = 0; start < all.length; start += n) {
      const part = all.slice(start, start + n);
      part.forEach((k, i) => {
        this.keyCodec.encode(buf.view, i * this.keySize, k);
      });
      deleted += mapDeleteBatch({ keys: buf.ptr, count: part.length, mapFd: this.fd.value }).count;
    }
    return deleted;
  }

  // ---- queue, stack, bloom filter -------------------------------------------------------------

  /** Queue/stack: add a value (`flag: 'exist'` overwrites the oldest when full). Bloom filter: add. */
  push(value: V, opts: { flag?: 'any' | 'exist' } = {}): void {
    this.#live();
    this.valueCodec.encode(this.#ops.valueView, 0, value);
    this.#ops.update(FLAGS[opts.flag ?? 'any']);
  }

  /** Queue/stack: remove and return the next value, or undefined when empty. */
  pop(): V | undefined {
    this.#live();
    if (!this.#ops.lookupAndDelete(0)) return undefined;
    return this.valueCodec.decode(this.#ops.valueView, 0);
  }

  /** Queue/stack: the next value without removing it. Bloom filter: use {@link mayContain}. */
  peek(): V | undefined {
    this.#live();
    if (!this.#ops.lookup(0)) return undefined;
    return this.valueCodec.decode(this.#ops.valueView, 0);
  }

  /** Bloom filter: false means certainly absent, true means probably present. */
  mayContain(value: V): boolean {
    this.#live();
    this.valueCodec.encode(this.#ops.valueView, 0, value);
    return this.#ops.lookup(0);
  }

  /** Make the map read-only for user space (programs can still write unless BPF_F_RDONLY_PROG). */
  freeze(): void {
    this.#live();
    mapFreeze({ mapFd: this.fd.value }, `map '${this.name}'`);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ops.free();
    this.fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
