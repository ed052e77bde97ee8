import {
  type Fd,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  Mapping,
  mmap,
  PROT_READ,
  PROT_WRITE,
  type Ptr,
} from '@bpfkit/sys';

const LIVE = 0;
const RELEASED = 1;
const UNMAPPED = 2;

/**
 * The address range of one ring mapping, apart from the ArrayBuffers that view it (so what holds
 * a region does not keep a buffer alive). V8 cannot detach an external ArrayBuffer, so the range
 * is given back to the kernel only once every buffer over it is collected; until then `release()`
 * swaps the ring for private zero pages in place (mmap MAP_FIXED is atomic): the kernel object
 * behind the ring loses this reference at once, and any view still held reads zeros, never
 * unmapped memory.
 */
export class RingRegion {
  #state = LIVE;
  /** Buffers over the range not collected yet. */
  #buffers: number;

  private constructor(
    readonly address: Ptr,
    readonly size: number,
    buffers: number,
  ) {
    this.#buffers = buffers;
  }

  /** mmap(2) a ring shared with the kernel; the range is unmapped when the buffer is collected. */
  static map(fd: Fd, size: number, prot: number, offset = 0): { buffer: ArrayBuffer; region: RingRegion } {
    const m = mmap(fd, size, prot, MAP_SHARED, offset);
    const region = new RingRegion(m.address, size, 1);
    unmapWhenCollected.register(m.buffer, region);
    return { buffer: m.buffer, region };
  }

  /**
   * mmap(2) `size` bytes of a ring shared with the kernel followed, in the same address range,
   * by `scratch` bytes of private writable memory (pages are only backed once touched). `buffer`
   * views both, so a record is copied from the ring into the scratch with `copyWithin` (a
   * memmove that creates no object); `scratch` views the scratch alone: it is what user code may
   * see, and write into, when the ring itself is mapped read-only. The range is unmapped once
   * both buffers are collected.
   */
  static mapWithScratch(
    fd: Fd,
    size: number,
    prot: number,
    offset: number,
    scratch: number,
  ): { buffer: ArrayBuffer; scratch: ArrayBuffer; region: RingRegion } {
    const whole = mmap(-1, size + scratch, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    try {
      mmap(fd, size, prot, MAP_SHARED | MAP_FIXED, offset, whole.address);
    } catch (e) {
      whole.unmap();
      throw e;
    }
    const tail = new Mapping(whole.address + BigInt(size), scratch).buffer;
    const region = new RingRegion(whole.address, size + scratch, 2);
    unmapWhenCollected.register(whole.buffer, region);
    unmapWhenCollected.register(tail, region);
    return { buffer: whole.buffer, scratch: tail, region };
  }

  /** Replace the ring (and its scratch) by zero pages (idempotent). The range itself stays until its buffers are collected. */
  release(): void {
    if (this.#state !== LIVE) return;
    try {
      mmap(-1, this.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0, this.address);
      this.#state = RELEASED;
    } catch {
      // Out of memory for the page tables: the ring stays mapped (and its kernel object alive)
      // until the buffers are collected, which is still safe.
    }
  }

  /** Called as each buffer is collected: once none is left, no view of the range remains. */
  unmap(): void {
    if (--this.#buffers > 0 || this.#state === UNMAPPED) return;
    this.#state = UNMAPPED;
    new Mapping(this.address, this.size).unmap();
  }
}

const unmapWhenCollected = new FinalizationRegistry<RingRegion>((region) => region.unmap());
