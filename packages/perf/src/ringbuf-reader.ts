import type { BpfMap, Codec } from '@bpfkit/maps';
import { ClosedError, Epoll, MapType, PROT_READ, PROT_WRITE, pageSize, RingbufHeader } from '@bpfkit/sys';
import { claim, MapInUseError, taken, WHOLE } from './claims.js';
import {
  checkCodec,
  checkFlag,
  checkOptions,
  checkSignal,
  checkTimeout,
  decodeRecord,
  Holdings,
  RingReader,
} from './reader.js';
import { RingRegion } from './ring-memory.js';

export interface RingBufRecord<T = Uint8Array> {
  /** Which of the reader's ring buffers (index in the order they were given). */
  ring: number;
  /** The record decoded by the reader's `codec`; without one, the same view as {@link data}. */
  value: T;
  /**
   * The record: a view of the reader's scratch copy of it, valid until the reader takes its next
   * record (the next `read()`, `for await` step or drain), or a fresh copy of your own with
   * `copy: true`. Writable; writing into it changes only the copy.
   */
  data: Uint8Array;
}

interface Ring {
  cons: BigUint64Array;
  prod: BigUint64Array;
  words: Uint32Array;
  /** The ring's data area, mapped twice in a row (read-only: never handed out). */
  data: Uint8Array;
  /** The producer pages and the scratch, one range: the source and target of a record's copy. */
  bytes: Uint8Array;
  ints: Int32Array;
  /** Where the scratch starts in `bytes`. */
  dst: number;
  /** The scratch alone (writable, its own ArrayBuffer): what user code sees. */
  scratch: Uint8Array;
  /** The scratch, for codecs. */
  scratchView: DataView;
  mask: number;
  pos: number;
  /** Snapshot of the producer position for this turn. */
  end: number;
}

export interface RingBufReaderOptions<T = Uint8Array> {
  /** Hand out copies instead of views into the ring. */
  copy?: boolean;
  signal?: AbortSignal;
  /** Decode each record with this codec (a `bpfkit gen --type` codec, `struct({...})`, ...) into `value`. */
  codec?: Codec<T>;
  /** Per-read timeout in ms for reads that give none, `for await` included (which ends when it passes with no record). */
  timeout?: number;
}

const BUSY = RingbufHeader.BUSY_BIT >>> 0;
const DISCARD = RingbufHeader.DISCARD_BIT;
const LEN_MASK = ~(BUSY | DISCARD) >>> 0;
/** Each record: an 8-byte header, then the data, padded to 8 bytes. */
const HDR = RingbufHeader.HDR_SZ;
/** Records up to this size are copied by a word loop, larger ones by `copyWithin` (a native memmove with a fixed cost of ~30–40 ns). */
const WORD_COPY = 128;

/**
 * Copy the `len` bytes at offset `off` of the ring's data area into its scratch, creating no
 * object. Records are 8-byte aligned and padded, so the word loop may read up to 3 bytes past
 * `len`; the double mapping makes a record that wraps the ring's end contiguous.
 */
function toScratch(r: Ring, off: number, len: number): void {
  const from = r.data.byteOffset + off;
  if (len <= WORD_COPY) {
    const ints = r.ints;
    const s = from >>> 2;
    const d = r.dst >>> 2;
    for (let i = 0, n = (len + 3) >>> 2; i < n; i++) ints[d + i] = ints[s + i]!;
  } else r.bytes.copyWithin(r.dst, from, from + len);
}

/**
 * Reads one or more BPF_MAP_TYPE_RINGBUF maps. Busy records stop the walk, discarded ones are
 * skipped, and the consumer position moves past a record only when the next one is requested —
 * after the record was handed on.
 *
 * The kernel maps a ring's producer pages read-only (it refuses a writable mapping), and V8 has
 * no read-only ArrayBuffer: a write through a view of them would kill the process. So no view of
 * the ring is ever handed out. Each record is copied, without allocating, into a writable scratch
 * area mapped right after the ring (as large as the ring, backed only as far as records reach),
 * and the caller gets a view of the scratch, valid until the next record. The producer area is
 * mapped twice in a row by the kernel, so a record that wraps the ring's end is copied whole.
 *
 * A ring buffer has a single consumer position, so one reader per ring buffer in a process:
 * opening a second one while the first is open throws {@link MapInUseError} (fan records out in
 * JavaScript instead). After `close()` a record's `data` reads zeros; copy what you keep.
 */
export class RingBufReader<T = Uint8Array> extends RingReader<RingBufRecord<T>> {
  #rings: Ring[];
  readonly #copy: boolean;
  readonly #codec: Codec<T> | undefined;
  #cur = 0;
  /** The ring whose last record is still in the caller's hands. */
  #held: Ring | undefined;

  private constructor(
    rings: Ring[],
    epoll: Epoll,
    holdings: Holdings,
    copy: boolean,
    codec: Codec<T> | undefined,
    signal: AbortSignal | undefined,
    timeout: number | undefined,
  ) {
    super(epoll, signal, undefined, holdings, timeout);
    this.#rings = rings;
    this.#copy = copy;
    this.#codec = codec;
  }

  static open<T = Uint8Array>(
    maps: BpfMap<unknown, unknown> | BpfMap<unknown, unknown>[],
    opts: RingBufReaderOptions<T> = {},
  ): RingBufReader<T> {
    checkOptions(opts, 'RingBufReader');
    const copy = checkFlag(opts.copy, 'copy', false);
    const signal = checkSignal(opts.signal);
    const codec = checkCodec(opts.codec);
    const timeout = checkTimeout(opts.timeout);
    const list = Array.isArray(maps) ? maps : [maps];
    if (list.length === 0) throw new TypeError('RingBufReader needs at least one ring buffer');
    for (const m of list) {
      if (typeof m !== 'object' || m === null || m.type !== MapType.RINGBUF)
        throw new TypeError(
          `RingBufReader reads ringbuf maps, not ${(m as { typeName?: string } | null)?.typeName ?? String(m)}`,
        );
      if (m.closed) throw new ClosedError(`map '${m.name || 'ringbuf'}'`);
    }
    const ids = list.map((m) => m.info.id);
    for (const [i, id] of ids.entries()) {
      if (taken(id, [WHOLE]).length > 0 || ids.indexOf(id) !== i)
        throw new MapInUseError(
          `ring buffer '${list[i]!.name}' (map id ${id}) already has a RingBufReader in this process: ` +
            'a ring buffer has one consumer position, so close that reader first (one dropped without close() ' +
            'holds it until it is collected), or share its records',
          id,
          [],
        );
    }
    const holdings = new Holdings('RingBufReader');
    for (const id of ids) holdings.add(claim(id, [WHOLE]));
    const rings: Ring[] = [];
    try {
      const epoll = new Epoll(list.length + 1);
      holdings.epoll = epoll;
      for (const m of list) {
        const fd = m.fd.dup();
        holdings.add(() => fd.close());
        const size = m.maxEntries;
        const consumer = RingRegion.map(fd, pageSize, PROT_READ | PROT_WRITE);
        holdings.add(() => consumer.region.release());
        // Read-only (the kernel allows no more), with the scratch after it: a record is at most the ring's size.
        const producer = RingRegion.mapWithScratch(fd, pageSize + 2 * size, PROT_READ, pageSize, size);
        holdings.add(() => producer.region.release());
        rings.push({
          cons: new BigUint64Array(consumer.buffer, 0, 1),
          prod: new BigUint64Array(producer.buffer, 0, 1),
          words: new Uint32Array(producer.buffer, pageSize, (2 * size) / 4),
          data: new Uint8Array(producer.buffer, pageSize, 2 * size),
          bytes: new Uint8Array(producer.buffer),
          ints: new Int32Array(producer.buffer),
          dst: pageSize + 2 * size,
          scratch: new Uint8Array(producer.scratch),
          scratchView: new DataView(producer.scratch),
          mask: size - 1,
          pos: 0,
          end: 0,
        });
        epoll.add(fd, rings.length - 1);
      }
      for (const r of rings) r.pos = Number(Atomics.load(r.cons, 0));
      return new RingBufReader<T>(rings, epoll, holdings, copy, codec, signal, timeout);
    } catch (e) {
      holdings.release();
      throw e;
    }
  }

  /** Bytes waiting across the rings. */
  get available(): number {
    this.live();
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

  protected poll(): RingBufRecord<T> | undefined {
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
        r.pos += (len + HDR + 7) & ~7;
        if (hdr & DISCARD) {
          Atomics.store(r.cons, 0, BigInt(r.pos));
          continue;
        }
        this.#held = r;
        const codec = this.#codec;
        if (this.#copy) {
          const data = r.data.slice(off + HDR, off + HDR + len);
          const value = codec ? decodeRecord(codec, new DataView(data.buffer), 0, len) : (data as T);
          return { ring: this.#cur, value, data };
        }
        toScratch(r, off + HDR, len);
        const data = r.scratch.subarray(0, len);
        return {
          ring: this.#cur,
          value: codec ? decodeRecord(codec, r.scratchView, 0, len) : (data as T),
          data,
        };
      }
      // This ring's turn is over: move on and take the next one's producer position once.
      if (switches++ >= n) return undefined;
      this.#cur = (this.#cur + 1) % n;
      const next = this.#rings[this.#cur]!;
      next.end = Number(Atomics.load(next.prod, 0));
    }
  }

  /**
   * Every record ready now, to a callback (a writable view of the record's scratch copy, valid
   * during the call), with one consumer position update per ring. Returns how many records were
   * delivered.
   */
  drain(fn: (data: Uint8Array, ring: number) => void): number {
    return this.drainInPlace((buf, off, len, ring) => fn(buf.subarray(off, off + len), ring));
  }

  /**
   * Like {@link drain} but allocation-free: `fn` gets a buffer with the record's offset and length
   * in it (today the scratch copy, at offset 0 — read the record as `buf.subarray(offset, offset +
   * length)` or through `offset`). "In place" means no object per record, not no copy: the bytes
   * are copied out of the read-only ring, so `buf` is writable and valid during the call only.
   * The fastest way to consume.
   */
  drainInPlace(fn: (buf: Uint8Array, offset: number, length: number, ring: number) => void): number {
    this.beginDrain();
    this.#release();
    let count = 0;
    try {
      const rings = this.#rings;
      for (let index = 0; index < rings.length; index++) {
        const r = rings[index]!;
        const end = Number(Atomics.load(r.prod, 0));
        let pos = r.pos;
        while (pos < end) {
          const off = pos & r.mask;
          const hdr = Atomics.load(r.words, off >>> 2) >>> 0;
          if (hdr & BUSY) break;
          const len = hdr & LEN_MASK;
          if (!(hdr & DISCARD)) {
            toScratch(r, off + HDR, len);
            fn(r.scratch, 0, len, index);
            count++;
            if (this.stopped) {
              // close() in the callback: this record is consumed, no further one is touched.
              pos += (len + HDR + 7) & ~7;
              break;
            }
          }
          pos += (len + HDR + 7) & ~7;
        }
        if (pos !== r.pos) {
          r.pos = pos;
          r.end = Math.max(r.end, pos);
          Atomics.store(r.cons, 0, BigInt(pos));
        }
        if (this.stopped) break;
      }
    } finally {
      this.endDrain();
    }
    return count;
  }

  protected dispose(): void {
    this.#release(); // the record in the caller's hands is consumed
    this.#rings = [];
    this.#held = undefined;
  }
}
