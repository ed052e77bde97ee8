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
 * The address range of one ring mapping, apart from the ArrayBuffer that views it (so what holds
 * a region does not keep the buffer alive). V8 cannot detach an external ArrayBuffer, so the
 * range is given back to the kernel only once the buffer is collected; until then `release()`
 * swaps the ring for private zero pages in place (mmap MAP_FIXED is atomic): the kernel object
 * behind the ring loses this reference at once, and any view still held reads zeros, never
 * unmapped memory.
 */
export class RingRegion {
  #state = LIVE;

  private constructor(
    readonly address: Ptr,
    readonly size: number,
  ) {}

  /** mmap(2) a ring shared with the kernel; the range is unmapped when the buffer is collected. */
  static map(fd: Fd, size: number, prot: number, offset = 0): { buffer: ArrayBuffer; region: RingRegion } {
    const m = mmap(fd, size, prot, MAP_SHARED, offset);
    const region = new RingRegion(m.address, size);
    unmapWhenCollected.register(m.buffer, region);
    return { buffer: m.buffer, region };
  }

  /** Replace the ring by zero pages (idempotent). The range itself stays until the buffer is collected. */
  release(): void {
    if (this.#state !== LIVE) return;
    try {
      mmap(-1, this.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0, this.address);
      this.#state = RELEASED;
    } catch {
      // Out of memory for the page tables: the ring stays mapped (and its kernel object alive)
      // until the buffer is collected, which is still safe.
    }
  }

  /** Called once the buffer was collected: no view of the range remains. */
  unmap(): void {
    if (this.#state === UNMAPPED) return;
    this.#state = UNMAPPED;
    new Mapping(this.address, this.size).unmap();
  }
}

const unmapWhenCollected = new FinalizationRegistry<RingRegion>((region) => region.unmap());
