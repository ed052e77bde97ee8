// The values of an mmap-able array map (BPF_F_MMAPABLE), mapped into this process.
import type { Codec } from './codec.js';

/**
 * Zero-copy access to an mmap-able array map: element `i` lives at `i * stride` of {@link bytes},
 * the same memory programs write. Typed arrays over {@link buffer} (`new BigUint64Array(m.buffer)`
 * for u64 values) read it with no syscall and no copy.
 */
export class MapMemory<V> implements Iterable<V> {
  /** The mapping itself (page-rounded); it is unmapped when this buffer is garbage collected. */
  readonly buffer: ArrayBuffer;
  /** The elements' bytes: `length * stride`. */
  readonly bytes: Uint8Array;
  readonly view: DataView;

  constructor(
    buffer: ArrayBuffer,
    readonly codec: Codec<V>,
    /** Number of elements (the map's maxEntries). */
    readonly length: number,
    /** Bytes from one element to the next: the value size rounded up to 8. */
    readonly stride: number,
    readonly writable: boolean,
  ) {
    this.buffer = buffer;
    this.bytes = new Uint8Array(buffer, 0, length * stride);
    this.view = new DataView(buffer, 0, length * stride);
  }

  #index(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.length)
      throw new RangeError(`index ${i} is outside the map's ${this.length} elements`);
    return i * this.stride;
  }

  /** Element `i`, decoded from the mapped memory. */
  at(i: number): V {
    return this.codec.decode(this.view, this.#index(i));
  }

  /** Write element `i` in place (not atomic: programs may see a partly written value). */
  set(i: number, value: V): this {
    if (!this.writable) throw new TypeError('this map memory is mapped read-only');
    this.codec.encode(this.view, this.#index(i), value);
    return this;
  }

  *[Symbol.iterator](): IterableIterator<V> {
    for (let i = 0; i < this.length; i++) yield this.at(i);
  }
}
