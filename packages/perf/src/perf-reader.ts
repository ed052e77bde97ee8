import { BpfMap, type Codec, onlineCpus } from '@bpfkit/maps';
import {
  ClosedError,
  Defines,
  Epoll,
  type Fd,
  ioctl,
  MapType,
  PerfRecordType,
  PROT_READ,
  PROT_WRITE,
  pageSize,
  structLayout,
} from '@bpfkit/sys';
import { claim, MapInUseError, taken } from './claims.js';
import { openBpfOutput } from './output.js';
import {
  checkCodec,
  checkFlag,
  checkOptions,
  checkSignal,
  checkTimeout,
  decodeRecord,
  EpollWaiter,
  Holdings,
  RingReader,
} from './reader.js';
import { RingRegion } from './ring-memory.js';

export interface PerfReaderOptions<T = Uint8Array> {
  /** Data pages per CPU ring, a power of two (default 64: 256 KiB, a few ms of headroom at millions of records/s; at most 2 GiB). */
  pagesPerCpu?: number;
  /** Wake up once this many bytes are waiting (default 0: on every record); less than the ring's size. */
  watermark?: number;
  /** CPUs to read, each once (default: every online CPU). */
  cpus?: number[];
  /** Backward, overwriting rings for flight-recorder use: read them with `snapshot()`. */
  overwritable?: boolean;
  /** Hand out copies instead of views into the ring. */
  copy?: boolean;
  signal?: AbortSignal;
  /** Decode each sample with this codec (a `bpfkit gen --type` codec, `struct({...})`, ...) into `value`. */
  codec?: Codec<T>;
  /** Per-read timeout in ms for reads that give none, `for await` included (which ends when it passes with no record). */
  timeout?: number;
}

export interface PerfRecord<T = Uint8Array> {
  cpu: number;
  /**
   * The sample decoded by the reader's `codec` (without one, the same view as {@link data});
   * undefined for a lost-records notice.
   */
  value: T | undefined;
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
/** Every record starts with a perf_event_header: u32 type, u16 misc, u16 size (of the whole record). */
const HEADER = structLayout.perfEventHeader.$size[1];
const SIZE_AT = structLayout.perfEventHeader.size[0];
/** PERF_RECORD_SAMPLE with PERF_SAMPLE_RAW: the header, a u32 size, then the raw bytes. */
const RAW_SIZE_AT = HEADER;
const RAW_AT = RAW_SIZE_AT + 4;
/** PERF_RECORD_LOST: the header, a u64 id, then the u64 count of lost samples. */
const LOST_AT = HEADER + 8;

/**
 * Reads a BPF_MAP_TYPE_PERF_EVENT_ARRAY: one BPF output perf event per CPU stored in the map,
 * each with its own mmapped ring. Records are handed out as views; a record that wraps the ring's
 * end is copied into a scratch buffer. Lost-sample notices come through as records with `lost`.
 *
 * Each CPU's slot in the map holds one ring, so one reader per slot in a process: opening a
 * reader on CPUs that another open reader of the same map reads throws {@link MapInUseError}
 * (readers on disjoint `cpus` may coexist). After `close()` a record's `data` reads zeros; copy
 * what you keep.
 */
export class PerfReader<T = Uint8Array> extends RingReader<PerfRecord<T>> {
  #rings: Ring[];
  readonly #copy: boolean;
  readonly #codec: Codec<T> | undefined;
  readonly #overwritable: boolean;
  readonly #lost = new Map<number, number>();
  #cur = 0;
  #scratch = new Uint8Array(256);

  private constructor(
    rings: Ring[],
    epoll: Epoll,
    waiter: EpollWaiter,
    holdings: Holdings,
    opts: Options<T>,
  ) {
    super(epoll, opts.signal, waiter, holdings, opts.timeout);
    this.#rings = rings;
    this.#copy = opts.copy;
    this.#codec = opts.codec;
    this.#overwritable = opts.overwritable;
    for (const r of rings) r.head = Number(Atomics.load(r.meta, HEAD));
  }

  static open<T = Uint8Array>(map: BpfMap<unknown, unknown>, opts: PerfReaderOptions<T> = {}): PerfReader<T> {
    if (typeof map !== 'object' || map === null || typeof map.type !== 'number')
      throw new TypeError('PerfReader.open needs a BpfMap (a perf_event_array)');
    if (map.closed) throw new ClosedError(`map '${map.name || 'perf_event_array'}'`);
    if (map.type !== MapType.PERF_EVENT_ARRAY)
      throw new TypeError(`PerfReader reads perf_event_array maps, not ${map.typeName}`);
    const o = options(opts, map.maxEntries);
    const id = map.info.id;
    const busy = taken(id, o.cpus);
    if (busy.length > 0)
      throw new MapInUseError(
        `perf event array '${map.name}' (map id ${id}) already has a PerfReader in this process on ` +
          `CPU ${busy.join(', ')}: each CPU slot holds one ring, so a second reader would take the first one's ` +
          'events; close that reader first (one dropped without close() holds them until it is collected), ' +
          'or give each reader its own `cpus`',
        id,
        busy,
      );
    const holdings = new Holdings('PerfReader');
    holdings.add(claim(id, o.cpus));
    const rings: Ring[] = [];
    try {
      // The reader's own reference: closing the array's last fd would empty its slots.
      const array = BpfMap.fromFd(map.fd.dup());
      holdings.add(() => array.close());
      const epoll = new Epoll(o.cpus.length + 2);
      holdings.epoll = epoll;
      const waiter = new EpollWaiter(epoll);
      holdings.waiter = waiter;
      for (const cpu of o.cpus) {
        const fd = openBpfOutput(cpu, { watermark: o.watermark, overwritable: o.overwritable });
        holdings.add(() => fd.close());
        const { buffer, region } = RingRegion.map(
          fd,
          (o.pages + 1) * pageSize,
          o.overwritable ? PROT_READ : PROT_READ | PROT_WRITE,
        );
        holdings.add(() => region.release());
        const meta = new BigUint64Array(buffer, 0, pageSize / 8);
        const dv = new DataView(buffer);
        const dataOff = Number(dv.getBigUint64(L.data_offset[0], true)) || pageSize;
        const size = Number(dv.getBigUint64(L.data_size[0], true)) || o.pages * pageSize;
        const data = new Uint8Array(buffer, dataOff, size);
        rings.push({
          cpu,
          fd,
          meta,
          data,
          view: new DataView(buffer, dataOff, size),
          size,
          pos: 0,
          head: 0,
          published: 0,
        });
        array.setBytes(u32le(cpu), u32le(fd.value));
        // Empty the slot first on release, so the program stops writing before the ring goes.
        holdings.add(() => array.deleteBytes(u32le(cpu)));
        epoll.add(fd, rings.length - 1);
      }
      for (const r of rings) {
        r.pos = Number(Atomics.load(r.meta, TAIL));
        r.published = r.pos;
      }
      return new PerfReader<T>(rings, epoll, waiter, holdings, o);
    } catch (e) {
      holdings.release();
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
    this.live();
    for (const r of this.#rings) ioctl(r.fd, Defines.PERF_EVENT_IOC_PAUSE_OUTPUT, 1);
  }

  resume(): void {
    this.live();
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

  protected poll(): PerfRecord<T> | undefined {
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
  /** The sample's value: decoded by the codec, or the bytes themselves. */
  #value(data: Uint8Array): T {
    const codec = this.#codec;
    if (!codec) return data as T;
    return decodeRecord(codec, new DataView(data.buffer, data.byteOffset, data.byteLength), 0, data.length);
  }

  #record(r: Ring): PerfRecord<T> | undefined {
    const off = r.pos & (r.size - 1);
    const type = r.view.getUint32(off, true);
    const size = r.view.getUint16(off + SIZE_AT, true);
    if (size < HEADER) {
      r.pos = r.head; // corrupt header: resynchronise at the head
      return undefined;
    }
    const at = r.pos;
    r.pos += size;
    if (type === PerfRecordType.SAMPLE) {
      const rawSize = r.view.getUint32((off + RAW_SIZE_AT) & (r.size - 1), true);
      const data = this.#bytes(r, at + RAW_AT, Math.min(rawSize, size - RAW_AT));
      const copy = this.#copy || data.buffer === this.#scratch.buffer;
      const bytes = copy ? data.slice() : data;
      return {
        cpu: r.cpu,
        value: this.#value(bytes),
        data: bytes,
        lost: 0,
        remaining: r.head - r.pos,
        size: r.size,
      };
    }
    if (type === PerfRecordType.LOST) {
      const lost = Number(r.view.getBigUint64((off + LOST_AT) & (r.size - 1), true));
      this.#lost.set(r.cpu, (this.#lost.get(r.cpu) ?? 0) + lost);
      return {
        cpu: r.cpu,
        value: undefined,
        data: new Uint8Array(),
        lost,
        remaining: r.head - r.pos,
        size: r.size,
      };
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
    this.live();
    if (this.#overwritable) throw new TypeError('overwritable rings are read with snapshot()');
    this.beginDrain();
    let count = 0;
    try {
      for (const r of this.#rings) {
        const head = Number(Atomics.load(r.meta, HEAD));
        const mask = r.size - 1;
        const view = r.view;
        let pos = r.pos;
        while (pos < head) {
          const off = pos & mask;
          const type = view.getUint32(off, true);
          const size = view.getUint16(off + SIZE_AT, true);
          if (size < HEADER) {
            pos = head;
            break;
          }
          if (type === PerfRecordType.SAMPLE) {
            const len = Math.min(view.getUint32((off + RAW_SIZE_AT) & mask, true), size - RAW_AT);
            const at = (off + RAW_AT) & mask;
            if (at + len <= r.size) fn(r.data, at, len, r.cpu);
            else fn(this.#bytes(r, pos + RAW_AT, len), 0, len, r.cpu);
            count++;
            if (this.stopped) {
              // close() in the callback: this record is consumed, no further one is touched.
              pos += size;
              break;
            }
          } else if (type === PerfRecordType.LOST) {
            this.#lost.set(
              r.cpu,
              (this.#lost.get(r.cpu) ?? 0) + Number(view.getBigUint64((off + LOST_AT) & mask, true)),
            );
          }
          pos += size;
        }
        r.pos = pos;
        r.head = Math.max(r.head, pos);
        this.#publish(r);
        if (this.stopped) break;
      }
    } finally {
      this.endDrain();
    }
    return count;
  }

  /**
   * Overwritable rings only: pause output, copy out what each CPU's ring holds (newest first),
   * resume. The flight recorder's "what just happened".
   */
  snapshot(): PerfRecord<T>[] {
    this.live();
    if (!this.#overwritable)
      throw new TypeError('snapshot() reads overwritable rings; open the reader with overwritable: true');
    const out: PerfRecord<T>[] = [];
    this.pause();
    try {
      for (const r of this.#rings) {
        const head = Number(BigInt.asUintN(53, Atomics.load(r.meta, HEAD)));
        let pos = head;
        while (pos - head < r.size) {
          const hdr = this.#bytes(r, pos, HEADER);
          const type = hdr[0]! | (hdr[1]! << 8);
          const size = hdr[SIZE_AT]! | (hdr[SIZE_AT + 1]! << 8);
          if (size < HEADER || pos - head + size > r.size) break;
          if (type === PerfRecordType.SAMPLE) {
            const body = this.#bytes(r, pos + HEADER, size - HEADER);
            const rawSize = body[0]! | (body[1]! << 8) | (body[2]! << 16);
            const data = body.slice(RAW_AT - HEADER, RAW_AT - HEADER + Math.min(rawSize, size - RAW_AT));
            out.push({
              cpu: r.cpu,
              value: this.#value(data),
              data,
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
    this.#rings = [];
  }
}

interface Options<T> {
  codec: Codec<T> | undefined;
  timeout: number | undefined;
  pages: number;
  watermark: number;
  cpus: number[];
  overwritable: boolean;
  copy: boolean;
  signal: AbortSignal | undefined;
}

/** Every option checked before anything is opened. */
function options<T>(opts: PerfReaderOptions<T>, slots: number): Options<T> {
  checkOptions(opts, 'PerfReader');
  const pages = opts.pagesPerCpu ?? 64;
  if (typeof pages !== 'number') throw new TypeError(`pagesPerCpu must be a number, got ${typeof pages}`);
  if (!Number.isInteger(pages) || pages < 1 || (pages & (pages - 1)) !== 0 || pages * pageSize > 2 ** 31)
    throw new RangeError(`pagesPerCpu must be a power of two from 1 to ${2 ** 31 / pageSize}, got ${pages}`);
  const watermark = opts.watermark ?? 0;
  if (typeof watermark !== 'number')
    throw new TypeError(`watermark must be a number, got ${typeof watermark}`);
  if (!Number.isInteger(watermark) || watermark < 0 || watermark >= pages * pageSize)
    throw new RangeError(
      `watermark must be a whole number of bytes from 0 to less than the ring's ${pages * pageSize}, got ${watermark}`,
    );
  let cpus: number[];
  if (opts.cpus === undefined) cpus = onlineCpus();
  else if (!Array.isArray(opts.cpus)) throw new TypeError('cpus must be an array of CPU numbers');
  else cpus = [...opts.cpus];
  if (cpus.length === 0) throw new RangeError('cpus is empty: a PerfReader reads at least one CPU');
  for (const [i, c] of cpus.entries()) {
    if (!Number.isInteger(c) || c < 0 || c >= slots)
      throw new RangeError(`CPU ${c} has no slot in the ${slots}-entry perf event array`);
    if (cpus.indexOf(c) !== i) throw new RangeError(`CPU ${c} is listed twice in cpus`);
  }
  return {
    codec: checkCodec(opts.codec),
    timeout: checkTimeout(opts.timeout),
    pages,
    watermark,
    cpus,
    overwritable: checkFlag(opts.overwritable, 'overwritable', false),
    copy: checkFlag(opts.copy, 'copy', false),
    signal: checkSignal(opts.signal),
  };
}
