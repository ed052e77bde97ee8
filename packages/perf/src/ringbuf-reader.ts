import type { BpfMap } from '@bpfkit/maps';
import {
  Epoll,
  type Fd,
  MAP_SHARED,
  type Mapping,
  MapType,
  mmap,
  PROT_READ,
  PROT_WRITE,
  pageSize,
  RingbufHeader,
} from '@bpfkit/sys';
import { RingReader } from './reader.js';

export interface RingBufRecord {
  /** Which of the reader's ring buffers (index in the order they were given). */
  ring: number;
  /** The record; a view valid until the next read, unless the reader copies. */
  data: Uint8Array;
}

interface Ring {
  fd: Fd;
  consumer: Mapping;
  producer: Mapping;
  cons: BigUint64Array;
  prod: BigUint64Array;
  words: Uint32Array;
  data: Uint8Array;
  mask: number;
  pos: number;
  /** Snapshot of the producer position for this turn. */
  end: number;
}

const BUSY = RingbufHeader.BUSY_BIT >>> 0;
const DISCARD = RingbufHeader.DISCARD_BIT;
const LEN_MASK = ~(BUSY | DISCARD) >>> 0;

/**
 * Reads one or more BPF_MAP_TYPE_RINGBUF maps. The producer area is mapped twice in a row by the
 * kernel, so every record is contiguous: records are views, never copies (unless asked). Busy
 * records stop the walk, discarded ones are skipped, and the consumer position moves past a
 * record only when the next one is requested — after the record was handed on.
 */
export class RingBufReader extends RingReader<RingBufRecord> {
  readonly #rings: Ring[];
  readonly #copy: boolean;
  #cur = 0;
  /** The ring whose last record is still in the caller's hands. */
  #held: Ring | undefined;

  private constructor(rings: Ring[], epoll: Epoll, opts: { copy?: boolean; signal?: AbortSignal }) {
    super(epoll, opts.signal);
    this.#rings = rings;
    this.#copy = opts.copy ?? false;
  }

  static open(
    maps: BpfMap<unknown, unknown> | BpfMap<unknown, unknown>[],
    opts: { copy?: boolean; signal?: AbortSignal } = {},
  ): RingBufReader {
    const list = Array.isArray(maps) ? maps : [maps];
    if (list.length === 0) throw new TypeError('RingBufReader needs at least one ring buffer');
    const epoll = new Epoll(list.length + 1);
    const rings: Ring[] = [];
    try {
      for (const m of list) {
        if (m.type !== MapType.RINGBUF)
          throw new TypeError(`RingBufReader reads ringbuf maps, not ${m.typeName}`);
        const fd = m.fd.dup();
        const size = m.maxEntries;
        let consumer: Mapping | undefined;
        try {
          consumer = mmap(fd, pageSize, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
          const producer = mmap(fd, pageSize + 2 * size, PROT_READ, MAP_SHARED, pageSize);
          rings.push({
            fd,
            consumer,
            producer,
            cons: new BigUint64Array(consumer.buffer, 0, 1),
            prod: new BigUint64Array(producer.buffer, 0, 1),
            words: new Uint32Array(producer.buffer, pageSize, (2 * size) / 4),
            data: new Uint8Array(producer.buffer, pageSize, 2 * size),
            mask: size - 1,
            pos: 0,
            end: 0,
          });
        } catch (e) {
          consumer?.unmap();
          fd.close();
          throw e;
        }
        epoll.add(fd, rings.length - 1);
      }
      for (const r of rings) r.pos = Number(Atomics.load(r.cons, 0));
      return new RingBufReader(rings, epoll, opts);
    } catch (e) {
      for (const r of rings) {
        r.consumer.unmap();
        r.producer.unmap();
        r.fd.close();
      }
      epoll.close();
      throw e;
    }
  }

  /** Bytes waiting across the rings. */
  get available(): number {
    let n = 0;
    for (const r of this.#rings) n += Number(Atomics.load(r.prod, 0)) - r.pos;
    return n;
  }

  #release(): void {
    const r = this.#held;
    if (r) {
      Atomics.store(r.cons, 0, BigInt(r.pos));
      this.#held = undefined;
    }
  }

  protected poll(): RingBufRecord | undefined {
    this.#release();
    const n = this.#rings.length;
    let switches = 0;
    for (;;) {
      const r = this.#rings[this.#cur]!;
      if (r.pos < r.end) {
        const off = r.pos & r.mask;
        const hdr = Atomics.load(r.words, off >>> 2) >>> 0;
        if (hdr & BUSY) {
          r.end = r.pos; // not committed yet: this ring is done for this turn
          continue;
        }
        const len = hdr & LEN_MASK;
        r.pos += (len + 15) & ~7;
        if (hdr & DISCARD) {
          Atomics.store(r.cons, 0, BigInt(r.pos));
          continue;
        }
        this.#held = r;
        const data = r.data.subarray(off + 8, off + 8 + len);
        return { ring: this.#cur, data: this.#copy ? data.slice() : data };
      }
      // This ring's turn is over: move on and take the next one's producer position once.
      if (switches++ >= n) return undefined;
      this.#cur = (this.#cur + 1) % n;
      const next = this.#rings[this.#cur]!;
      next.end = Number(Atomics.load(next.prod, 0));
    }
  }

  /**
   * Every record ready now, to a callback (a view valid during the call), with one consumer
   * position update per ring. Returns how many records were delivered.
   */
  drain(fn: (data: Uint8Array, ring: number) => void): number {
    return this.drainInPlace((buf, off, len, ring) => fn(buf.subarray(off, off + len), ring));
  }

  /**
   * Like {@link drain} but allocation-free: `fn` gets the ring's bytes with the record's offset
   * and length. The fastest way to consume.
   */
  drainInPlace(fn: (buf: Uint8Array, offset: number, length: number, ring: number) => void): number {
    this.#release();
    let count = 0;
    for (let index = 0; index < this.#rings.length; index++) {
      const r = this.#rings[index]!;
      const end = Number(Atomics.load(r.prod, 0));
      let pos = r.pos;
      while (pos < end) {
        const off = pos & r.mask;
        const hdr = Atomics.load(r.words, off >>> 2) >>> 0;
        if (hdr & BUSY) break;
        const len = hdr & LEN_MASK;
        if (!(hdr & DISCARD)) {
          fn(r.data, off + 8, len, index);
          count++;
        }
        pos += (len + 15) & ~7;
      }
      if (pos !== r.pos) {
        r.pos = pos;
        r.end = Math.max(r.end, pos);
        Atomics.store(r.cons, 0, BigInt(pos));
      }
    }
    return count;
  }

  protected dispose(): void {
    this.#release();
    for (const r of this.#rings) {
      r.consumer.unmap();
      r.producer.unmap();
      r.fd.close();
    }
  }
}
