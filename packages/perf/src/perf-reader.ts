import type { BpfMap } from '@bpfkit/maps';
import { onlineCpus } from '@bpfkit/maps';
import {
  Defines,
  Epoll,
  type Fd,
  ioctl,
  MAP_SHARED,
  type Mapping,
  MapType,
  mmap,
  PerfRecordType,
  PROT_READ,
  PROT_WRITE,
  pageSize,
  structLayout,
} from '@bpfkit/sys';
import { openBpfOutput } from './events.js';
import { EpollWaiter, RingReader } from './reader.js';

export interface PerfReaderOptions {
  /** Data pages per CPU ring, a power of two (default 64: 256 KiB, a few ms of headroom at millions of records/s). */
  pagesPerCpu?: number;
  /** Wake up once this many bytes are waiting (default 0: on every record). */
  watermark?: number;
  /** CPUs to read (default: every online CPU). */
  cpus?: number[];
  /** Backward, overwriting rings for flight-recorder use: read them with `snapshot()`. */
  overwritable?: boolean;
  /** Hand out copies instead of views into the ring. */
  copy?: boolean;
  signal?: AbortSignal;
}

export interface PerfRecord {
  cpu: number;
  /** The raw sample (padded by the kernel to 8-byte alignment with its size field); empty for lost records. */
  data: Uint8Array;
  /** For a lost-records notice: how many samples the kernel dropped on this CPU. */
  lost: number;
  /** Bytes still unread in this CPU's ring after this record. */
  remaining: number;
  /** This CPU's ring size in bytes. */
  size: number;
}

interface Ring {
  cpu: number;
  fd: Fd;
  mapping: Mapping;
  meta: BigUint64Array;
  data: Uint8Array;
  view: DataView;
  size: number;
  /** Position of the next record, and the snapshot of data_head we read up to. */
  pos: number;
  head: number;
  published: number;
}

const L = structLayout.perfEventMmapPage;
const u32le = (v: number) => new Uint8Array(new Uint32Array([v]).buffer);
const HEAD = L.data_head[0] / 8;
const TAIL = L.data_tail[0] / 8;

/**
 * Reads a BPF_MAP_TYPE_PERF_EVENT_ARRAY: one BPF output perf event per CPU stored in the map,
 * each with its own mmapped ring. Records are handed out as views; a record that wraps the ring's
 * end is copied into a scratch buffer. Lost-sample notices come through as records with `lost`.
 */
export class PerfReader extends RingReader<PerfRecord> {
  readonly #rings: Ring[];
  readonly #array: Fd;
  readonly #map: BpfMap<unknown, unknown>;
  readonly #copy: boolean;
  readonly #overwritable: boolean;
  readonly #lost = new Map<number, number>();
  #cur = 0;
  #scratch = new Uint8Array(256);

  private constructor(map: BpfMap<unknown, unknown>, rings: Ring[], epoll: Epoll, opts: PerfReaderOptions) {
    super(epoll, opts.signal, new EpollWaiter(epoll));
    this.#map = map;
    this.#array = map.fd.dup();
    this.#rings = rings;
    this.#copy = opts.copy ?? false;
    this.#overwritable = opts.overwritable ?? false;
    for (const r of rings) r.head = Number(Atomics.load(r.meta, HEAD));
  }

  static open(map: BpfMap<unknown, unknown>, opts: PerfReaderOptions = {}): PerfReader {
    if (map.type !== MapType.PERF_EVENT_ARRAY)
      throw new TypeError(`PerfReader reads perf_event_array maps, not ${map.typeName}`);
    const pages = opts.pagesPerCpu ?? 64;
    if (!Number.isInteger(pages) || pages < 1 || (pages & (pages - 1)) !== 0)
      throw new RangeError(`pagesPerCpu must be a power of two, got ${pages}`);
    const cpus = opts.cpus ?? onlineCpus();
    for (const c of cpus)
      if (!Number.isInteger(c) || c < 0 || c >= map.maxEntries)
        throw new RangeError(`CPU ${c} has no slot in the ${map.maxEntries}-entry perf event array`);
    const epoll = new Epoll(cpus.length + 2);
    const rings: Ring[] = [];
    try {
      for (const cpu of cpus) {
        const fd = openBpfOutput(cpu, {
          watermark: opts.watermark ?? 0,
          overwritable: opts.overwritable ?? false,
        });
        let mapping: Mapping;
        try {
          mapping = mmap(
            fd,
            (pages + 1) * pageSize,
            opts.overwritable ? PROT_READ : PROT_READ | PROT_WRITE,
            MAP_SHARED,
          );
        } catch (e) {
          fd.close();
          throw e;
        }
        const meta = new BigUint64Array(mapping.buffer, 0, pageSize / 8);
        const dv = new DataView(mapping.buffer);
        const dataOff = Number(dv.getBigUint64(L.data_offset[0], true)) || pageSize;
        const size = Number(dv.getBigUint64(L.data_size[0], true)) || pages * pageSize;
        const data = new Uint8Array(mapping.buffer, dataOff, size);
        rings.push({
          cpu,
          fd,
          mapping,
          meta,
          data,
          view: new DataView(mapping.buffer, dataOff, size),
          size,
          pos: 0,
          head: 0,
          published: 0,
        });
        map.setBytes(u32le(cpu), u32le(fd.value));
        epoll.add(fd, rings.length - 1);
      }
      for (const r of rings) {
        r.pos = Number(Atomics.load(r.meta, TAIL));
        r.published = r.pos;
      }
      return new PerfReader(map, rings, epoll, opts);
    } catch (e) {
      for (const r of rings) {
        map.deleteBytes(u32le(r.cpu));
        r.mapping.unmap();
        r.fd.close();
      }
      epoll.close();
      throw e;
    }
  }

  /** Samples lost per CPU so far (from the kernel's lost-record notices). */
  get lost(): ReadonlyMap<number, number> {
    return this.#lost;
  }

  get lostTotal(): number {
    let n = 0;
    for (const v of this.#lost.values()) n += v;
    return n;
  }

  /** Stop the kernel writing into the rings (records are dropped, and counted as lost, meanwhile). */
  pause(): void {
    for (const r of this.#rings) ioctl(r.fd, Defines.PERF_EVENT_IOC_PAUSE_OUTPUT, 1);
  }

  resume(): void {
    for (const r of this.#rings) ioctl(r.fd, Defines.PERF_EVENT_IOC_PAUSE_OUTPUT, 0);
  }

  #publish(r: Ring): void {
    if (r.pos !== r.published) {
      Atomics.store(r.meta, TAIL, BigInt(r.pos));
      r.published = r.pos;
    }
  }

  /** Bytes of the record at `pos` (copied into scratch when it wraps the ring's end). */
  #bytes(r: Ring, pos: number, len: number): Uint8Array {
    const off = pos & (r.size - 1);
    if (off + len <= r.size) return r.data.subarray(off, off + len);
    if (this.#scratch.length < len) this.#scratch = new Uint8Array(Math.max(len, this.#scratch.length * 2));
    const first = r.size - off;
    this.#scratch.set(r.data.subarray(off), 0);
    this.#scratch.set(r.data.subarray(0, len - first), first);
    return this.#scratch.subarray(0, len);
  }

  protected poll(): PerfRecord | undefined {
    if (this.#overwritable) throw new TypeError('overwritable rings are read with snapshot(), not awaited');
    const n = this.#rings.length;
    let switches = 0;
    for (;;) {
      const r = this.#rings[this.#cur]!;
      if (r.pos >= r.head) {
        // This ring's snapshot is done: give its space back, take the next ring's head once.
        this.#publish(r);
        if (switches++ >= n) return undefined;
        this.#cur = (this.#cur + 1) % n;
        const next = this.#rings[this.#cur]!;
        next.head = Number(Atomics.load(next.meta, HEAD));
        continue;
      }
      const rec = this.#record(r);
      if (rec) return rec;
    }
  }

  /** Parse the record at `r.pos` (headers are 8-byte aligned and never wrap) and step past it. */
  #record(r: Ring): PerfRecord | undefined {
    const off = r.pos & (r.size - 1);
    const type = r.view.getUint32(off, true);
    const size = r.view.getUint16(off + 6, true);
    if (size < 8) {
      r.pos = r.head; // corrupt header: resynchronise at the head
      return undefined;
    }
    const at = r.pos;
    r.pos += size;
    if (type === PerfRecordType.SAMPLE) {
      const rawSize = r.view.getUint32((off + 8) & (r.size - 1), true);
      const data = this.#bytes(r, at + 12, Math.min(rawSize, size - 12));
      const copy = this.#copy || data.buffer === this.#scratch.buffer;
      return {
        cpu: r.cpu,
        data: copy ? data.slice() : data,
        lost: 0,
        remaining: r.head - r.pos,
        size: r.size,
      };
    }
    if (type === PerfRecordType.LOST) {
      const lost = Number(r.view.getBigUint64((off + 16) & (r.size - 1), true));
      this.#lost.set(r.cpu, (this.#lost.get(r.cpu) ?? 0) + lost);
      return { cpu: r.cpu, data: new Uint8Array(), lost, remaining: r.head - r.pos, size: r.size };
    }
    return undefined; // other record types are skipped
  }

  /**
   * Every sample ready now, to a callback (a view valid only during the call; lost notices are
   * counted in {@link lost}), one tail update per ring. Returns how many samples were delivered.
   */
  drain(fn: (data: Uint8Array, cpu: number) => void): number {
    return this.drainInPlace((buf, off, len, cpu) => fn(buf.subarray(off, off + len), cpu));
  }

  /**
   * Like {@link drain} but allocation-free: `fn` gets the ring's bytes (or a scratch buffer for a
   * record that wraps) with the sample's offset and length. The fastest way to consume.
   */
  drainInPlace(fn: (buf: Uint8Array, offset: number, length: number, cpu: number) => void): number {
    if (this.#overwritable) throw new TypeError('overwritable rings are read with snapshot()');
    let count = 0;
    for (const r of this.#rings) {
      const head = Number(Atomics.load(r.meta, HEAD));
      const mask = r.size - 1;
      const view = r.view;
      let pos = r.pos;
      while (pos < head) {
        const off = pos & mask;
        const type = view.getUint32(off, true);
        const size = view.getUint16(off + 6, true);
        if (size < 8) {
          pos = head;
          break;
        }
        if (type === PerfRecordType.SAMPLE) {
          const len = Math.min(view.getUint32((off + 8) & mask, true), size - 12);
          const at = (off + 12) & mask;
          if (at + len <= r.size) fn(r.data, at, len, r.cpu);
          else fn(this.#bytes(r, pos + 12, len), 0, len, r.cpu);
          count++;
        } else if (type === PerfRecordType.LOST) {
          this.#lost.set(
            r.cpu,
            (this.#lost.get(r.cpu) ?? 0) + Number(view.getBigUint64((off + 16) & mask, true)),
          );
        }
        pos += size;
      }
      r.pos = pos;
      r.head = Math.max(r.head, pos);
      this.#publish(r);
    }
    return count;
  }

  /**
   * Overwritable rings only: pause output, copy out what each CPU's ring holds (newest first),
   * resume. The flight recorder's "what just happened".
   */
  snapshot(): PerfRecord[] {
    if (!this.#overwritable)
      throw new TypeError('snapshot() reads overwritable rings; open the reader with overwritable: true');
    const out: PerfRecord[] = [];
    this.pause();
    try {
      for (const r of this.#rings) {
        const head = Number(BigInt.asUintN(53, Atomics.load(r.meta, HEAD)));
        let pos = head;
        while (pos - head < r.size) {
          const hdr = this.#bytes(r, pos, 8);
          const type = hdr[0]! | (hdr[1]! << 8);
          const size = hdr[6]! | (hdr[7]! << 8);
          if (size < 8 || pos - head + size > r.size) break;
          if (type === PerfRecordType.SAMPLE) {
            const body = this.#bytes(r, pos + 8, size - 8);
            const rawSize = body[0]! | (body[1]! << 8) | (body[2]! << 16);
            out.push({
              cpu: r.cpu,
              data: body.slice(4, 4 + Math.min(rawSize, size - 12)),
              lost: 0,
              remaining: 0,
              size: r.size,
            });
          }
          pos += size;
        }
      }
    } finally {
      this.resume();
    }
    return out;
  }

  protected dispose(): void {
    for (const r of this.#rings) {
      try {
        if (!this.#map.closed) this.#map.deleteBytes(u32le(r.cpu));
      } catch {
        // the map may be gone already
      }
      r.mapping.unmap();
      r.fd.close();
    }
    this.#array.close();
  }
}
