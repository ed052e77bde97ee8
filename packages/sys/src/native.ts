import { alloc, free, type Ptr, view } from './ffi.js';

const registry = new FinalizationRegistry<Ptr>((ptr) => free(ptr));

/**
 * A block of native memory the kernel can read or write: its address never moves, and it stays
 * alive as long as this object is reachable. Freed by `free()`, `Symbol.dispose` or, as a last
 * resort, by the garbage collector.
 */
export class NativeBuffer {
  readonly ptr: Ptr;
  readonly size: number;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  #freed = false;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 0)
      throw new RangeError(`native buffer size must be a whole number ≥ 0, got ${size}`);
    this.ptr = alloc(size);
    this.size = size;
    const ab = view(this.ptr, Math.max(size, 1));
    this.bytes = new Uint8Array(ab, 0, size);
    this.view = new DataView(ab, 0, size);
    registry.register(this, this.ptr, this);
  }

  /** A native copy of `data`. */
  static from(data: Uint8Array | string): NativeBuffer {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(`${data}\0`) : data;
    const b = new NativeBuffer(bytes.length);
    b.bytes.set(bytes);
    return b;
  }

  /** The address of byte `offset`. */
  at(offset: number): Ptr {
    return this.ptr + BigInt(offset);
  }

  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    registry.unregister(this);
    free(this.ptr);
  }

  [Symbol.dispose](): void {
    this.free();
  }
}
