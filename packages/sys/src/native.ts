import { ClosedError } from './errors.js';
import { alloc, cMadvise, cMmap, cMunmap, free, type Ptr, view } from './ffi.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from './mman.js';

/**
 * Native memory is freed by the collector once nothing can view it: the registry holds the
 * ArrayBuffer every `bytes`/`view` (and every subarray made from them) keeps alive, not the
 * `NativeBuffer`, so dropping the owner while keeping a view never frees memory under it.
 */
const collected = new FinalizationRegistry<[Ptr, number]>(([ptr, mapped]) => {
  if (mapped > 0) cMunmap(ptr, mapped);
  else free(ptr);
});

/** At or above this size a buffer is its own anonymous mapping, so `free()` can return its pages at once. */
const MAPPED_MIN = 64 * 1024;
const PAGE = 4096;
const PROT_RW = PROT_READ | PROT_WRITE;
const MAP_PRIVATE_ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const MADV_DONTNEED = 4;
const MAP_FAILED = (1n << 64n) - 1n;

/**
 * A block of native memory the kernel can read or write: its address never moves. `free()` (or
 * `Symbol.dispose`) ends its use — `ptr` and `at()` throw {@link ClosedError} after it, so it is
 * never handed to the kernel again — but the memory itself goes back only when nothing can view
 * it: a buffer whose `bytes` or `view` were never read is freed at once; one that was viewed is
 * freed by the garbage collector once no typed array over it is reachable (V8 cannot detach an
 * external ArrayBuffer, so an explicit free would leave views pointing at freed memory). A large
 * buffer (≥ 64 KiB) returns its pages to the system at `free()` all the same: stale views then
 * read zeros.
 */
export class NativeBuffer {
  readonly size: number;
  #ptr: Ptr;
  #mapped: number;
  #ab: ArrayBuffer | undefined;
  #bytes: Uint8Array | undefined;
  #view: DataView | undefined;
  #freed = false;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 0)
      throw new RangeError(`native buffer size must be a whole number ≥ 0, got ${size}`);
    this.size = size;
    if (size >= MAPPED_MIN) {
      const len = Math.ceil(size / PAGE) * PAGE;
      const p = cMmap(null, len, PROT_RW, MAP_PRIVATE_ANON, -1, 0);
      if (p === null || BigInt.asUintN(64, BigInt(p)) === MAP_FAILED)
        throw new RangeError(`cannot allocate ${size} bytes of native memory`);
      this.#ptr = BigInt(p);
      this.#mapped = len;
    } else {
      this.#ptr = alloc(size);
      this.#mapped = 0;
    }
    // Until views exist, the owner alone decides (and the collector frees it with the owner).
    collected.register(this, [this.#ptr, this.#mapped], this);
  }

  /** A native copy of `data`. */
  static from(data: Uint8Array | string): NativeBuffer {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(`${data}\0`) : data;
    const b = new NativeBuffer(bytes.length);
    b.bytes.set(bytes);
    return b;
  }

  /** The address of the first byte; throws once freed. */
  get ptr(): Ptr {
    if (this.#freed) throw new ClosedError('native buffer');
    return this.#ptr;
  }

  get freed(): boolean {
    return this.#freed;
  }

  #buffer(): ArrayBuffer {
    if (this.#ab) return this.#ab;
    const ab = view(this.#ptr, Math.max(this.size, 1));
    // From now on the memory lives as long as this ArrayBuffer: hand ownership to it.
    collected.unregister(this);
    collected.register(ab, [this.#ptr, this.#mapped]);
    this.#ab = ab;
    return ab;
  }

  /** The bytes; they stay valid memory for as long as they are reachable, even after `free()`. */
  get bytes(): Uint8Array {
    this.#bytes ??= new Uint8Array(this.#buffer(), 0, this.size);
    return this.#bytes;
  }

  /** A DataView over the bytes, valid memory for as long as it is reachable. */
  get view(): DataView {
    this.#view ??= new DataView(this.#buffer(), 0, this.size);
    return this.#view;
  }

  /** The address of byte `offset`. */
  at(offset: number): Ptr {
    return this.ptr + BigInt(offset);
  }

  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    if (this.#ab === undefined) {
      collected.unregister(this);
      if (this.#mapped > 0) cMunmap(this.#ptr, this.#mapped);
      else free(this.#ptr);
    } else if (this.#mapped > 0) {
      // Views may live on: keep the range mapped for them, give its pages back now.
      cMadvise(this.#ptr, this.#mapped, MADV_DONTNEED);
    }
  }

  [Symbol.dispose](): void {
    this.free();
  }
}
