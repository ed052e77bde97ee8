// One map read as one metric: batch lookups into reused buffers, per-CPU values summed, key
// fields decoded into labels, series merged by label set and capped.
import { type Btf, btfFromKernel } from '@bpfkit/btf';
import { type BpfMap, possibleCpus } from '@bpfkit/maps';
import { type Decoder, decoderFor } from './decoders.js';
import { type Field, fieldsOf, findField, readField, readNumber } from './layout.js';
import {
  DroppedSeries,
  type HistogramValue,
  type MetricSnapshot,
  type MetricSource,
  type SeriesValue,
} from './model.js';
import { type Metric, type MetricSpec, metricSchema } from './spec.js';

/** The most entries one batch lookup asks for. */
const CHUNK = 4096;

export interface ExportMapOptions {
  /** Key and value types, when the map's own BTF should not be used (or it has none). */
  btf?: { btf: Btf; keyTypeId: number; valueTypeId?: number };
  /** Key fields given by hand, for a map created without BTF (offsets in bytes). */
  keyFields?: Field[];
  /** Where dropped series are counted (the agent shares one); a new counter by default. */
  dropped?: DroppedSeries;
}

interface LabelReader {
  name: string;
  field: Field;
  decode: Decoder;
}

/** A series with the scrape that last saw it. */
interface Live<S> {
  gen: number;
  series: S;
}

/** A map exported as one metric family; {@link collect} reads it. Does not own the map. */
export class ExportedMap implements MetricSource {
  readonly metric: Metric;
  readonly map: BpfMap<unknown, unknown>;
  readonly dropped: DroppedSeries;
  readonly #labels: LabelReader[];
  readonly #bucket: Field | undefined;
  readonly #value: Field;
  readonly #valueStride: number;
  readonly #cpus: number;
  readonly #keys: Uint8Array;
  readonly #values: Uint8Array;
  readonly #kdv: DataView;
  readonly #vdv: DataView;
  readonly #bounds: number[];
  readonly #mids: number[];
  /** Series kept across scrapes: by raw key bytes, and by label values. */
  readonly #byRaw = new Map<string, Live<unknown>>();
  readonly #byId = new Map<string, Live<unknown>>();
  #gen = 0;

  constructor(map: BpfMap<unknown, unknown>, spec: MetricSpec, opts: ExportMapOptions = {}) {
    const parsed = metricSchema.safeParse(spec);
    if (!parsed.success)
      throw new TypeError(
        `metric '${String(spec?.name)}': ${parsed.error.issues.map((i) => `${i.path.join('.') || '(spec)'}: ${i.message}`).join('; ')}`,
      );
    const m = parsed.data;
    this.metric = m;
    this.map = map;
    this.dropped = opts.dropped ?? new DroppedSeries();
    const what = `metric '${m.name}' (map '${map.name}')`;
    const types = opts.btf ?? (opts.keyFields ? undefined : mapBtf(map, what));
    const keyFields = opts.keyFields ?? fieldsOf(types!.btf, types!.keyTypeId, 'key');
    const valueFields =
      types?.valueTypeId !== undefined && types.valueTypeId !== 0
        ? fieldsOf(types.btf, types.valueTypeId, 'value')
        : [{ path: 'value', offset: 0, size: map.valueSize, kind: 'int' as const, signed: false }];
    this.#value = findField(valueFields, m.valueField ?? valueFields[0]?.path ?? 'value', `${what} value`);
    if (this.#value.kind !== 'int' || ![1, 2, 4, 8].includes(this.#value.size))
      throw new TypeError(`${what}: the value field '${this.#value.path}' must be an integer`);
    if (m.valueField === undefined && valueFields.length > 1)
      throw new TypeError(
        `${what}: the value is a struct; name its member with valueField (${valueFields.map((f) => f.path).join(', ')})`,
      );
    this.#labels = m.labels.map((l) => {
      const field = findField(keyFields, l.field, `${what} label '${l.name}'`);
      return { name: l.name, field, decode: decoderFor(l, field, `${what} label '${l.name}'`) };
    });
    this.#bucket = m.bucket ? findField(keyFields, m.bucket.field, `${what} bucket`) : undefined;
    if (this.#bucket && this.#bucket.kind !== 'int')
      throw new TypeError(`${what}: the bucket field '${this.#bucket.path}' must be an integer`);
    this.#cpus = map.perCpu ? possibleCpus() : 1;
    this.#valueStride = map.perCpu ? round8(map.valueSize) : map.valueSize;
    const chunk = Math.max(1, Math.min(CHUNK, map.maxEntries));
    this.#keys = new Uint8Array(chunk * map.keySize);
    this.#values = new Uint8Array(chunk * this.#valueStride * this.#cpus);
    this.#kdv = new DataView(this.#keys.buffer);
    this.#vdv = new DataView(this.#values.buffer);
    this.#bounds = [];
    this.#mids = [];
    if (m.bucket) {
      const mult = m.bucket.multiplier ?? 1;
      for (let i = 0; i <= m.bucket.max; i++) {
        const [lo, hi] =
          m.bucket.kind === 'log2'
            ? [i === 0 ? 0 : 2 ** (i - 1), 2 ** i]
            : [i * (m.bucket.step ?? 1), (i + 1) * (m.bucket.step ?? 1)];
        this.#bounds.push(hi * mult);
        this.#mids.push(((lo + hi) / 2) * mult);
      }
      this.#mids.push(this.#bounds[this.#bounds.length - 1]!); // overflow: counted at the last bound
    }
  }

  get name(): string {
    return this.metric.name;
  }
  get help(): string {
    return this.metric.help;
  }
  get type(): Metric['type'] {
    return this.metric.type;
  }

  /** Read the map now. */
  collect(): MetricSnapshot {
    return this.metric.type === 'histogram' ? this.#histogram() : this.#scalar();
  }

  /** Visit every entry: `fn(keyBase, value)` with the value summed over CPUs. */
  #each(fn: (keyBase: number, value: number) => void): void {
    const ks = this.map.keySize;
    const entry = this.#valueStride * this.#cpus;
    const off = this.#value.offset;
    const vf = this.#value;
    for (const n of this.map.readBatches(this.#keys, this.#values)) {
      for (let i = 0; i < n; i++) {
        let v = 0;
        const base = i * entry + off;
        for (let c = 0; c < this.#cpus; c++)
          v += readNumber(vf, this.#vdv, base + c * this.#valueStride - off);
        fn(i * ks, v);
      }
    }
  }

  #labelsAt(keyBase: number, out: string[]): string {
    let id = '';
    for (let j = 0; j < this.#labels.length; j++) {
      const l = this.#labels[j]!;
      const s = l.decode(readField(l.field, this.#keys, this.#kdv, keyBase));
      out[j] = s;
      id = j === 0 ? s : `${id}\u0000${s}`;
    }
    return id;
  }

  #record(values: string[]): Record<string, string> {
    const r: Record<string, string> = {};
    for (let j = 0; j < this.#labels.length; j++) r[this.#labels[j]!.name] = values[j]!;
    return r;
  }

  /**
   * Every entry into series: `add` folds an entry into the series of its labels, `fresh` makes
   * one, `reset` zeroes one seen at an earlier scrape. Series, and which series each raw key
   * belongs to, are kept from scrape to scrape (those not seen again are let go), so a key seen
   * before costs one lookup and no decoding: its labels are decoded when it first appears.
   */
  #gather<S extends { labels: Record<string, string> }>(
    fresh: (labels: Record<string, string>) => S,
    reset: (s: S) => void,
    add: (s: S, keyBase: number, value: number) => void,
  ): S[] {
    const gen = ++this.#gen;
    const cap = this.metric.maxSeries;
    const byRaw = this.#byRaw as Map<string, Live<S>>;
    const byId = this.#byId as Map<string, Live<S>>;
    const out: Live<S>[] = [];
    const tmp: string[] = [];
    const ks = this.map.keySize;
    let dropped = 0;
    const take = (s: Live<S>, kb: number, v: number) => {
      if (s.gen !== gen) {
        s.gen = gen;
        reset(s.series);
        out.push(s);
      }
      add(s.series, kb, v);
    };
    this.#each((kb, v) => {
      const raw = String.fromCharCode.apply(null, this.#keys.subarray(kb, kb + ks) as unknown as number[]);
      const known = byRaw.get(raw);
      if (known && (known.gen === gen || out.length < cap)) return take(known, kb, v);
      const id = this.#labelsAt(kb, tmp);
      let s = byId.get(id);
      if (!s || (s.gen !== gen && out.length >= cap)) {
        if (out.length >= cap) {
          dropped++;
          return;
        }
        s = { gen: 0, series: fresh(this.#record(tmp)) };
        byId.set(id, s);
      }
      byRaw.set(raw, s);
      take(s, kb, v);
    });
    // let go of what this scrape did not see
    for (const [k, s] of byRaw) if (s.gen !== gen) byRaw.delete(k);
    for (const [k, s] of byId) if (s.gen !== gen) byId.delete(k);
    this.dropped.add(this.metric.name, dropped);
    return out.map((s) => s.series);
  }

  #scalar(): MetricSnapshot {
    const series = this.#gather<SeriesValue>(
      (labels) => ({ labels, value: 0 }),
      (s) => {
        s.value = 0;
      },
      (s, _kb, v) => {
        s.value += v;
      },
    );
    const type = this.metric.type as 'counter' | 'gauge';
    return { name: this.metric.name, help: this.metric.help, type, series };
  }

  #histogram(): MetricSnapshot {
    const bucket = this.#bucket!;
    const max = this.#bounds.length; // index of the overflow bucket
    const series = this.#gather<HistogramValue>(
      (labels) => ({ labels, bounds: this.#bounds, counts: new Array(max + 1).fill(0), count: 0, sum: 0 }),
      (h) => {
        h.counts.fill(0);
        h.count = 0;
        h.sum = 0;
      },
      (h, kb, v) => {
        const slot = readNumber(bucket, this.#kdv, kb);
        const i = slot >= 0 && slot < max ? slot : max;
        h.counts[i]! += v;
        h.count += v;
        h.sum += v * this.#mids[i]!;
      },
    );
    return { name: this.metric.name, help: this.metric.help, type: 'histogram', series };
  }
}

const round8 = (n: number) => (n + 7) & ~7;

/** The key/value BTF the kernel holds for `map` (a map loaded from an object with BTF has it). */
function mapBtf(
  map: BpfMap<unknown, unknown>,
  what: string,
): { btf: Btf; keyTypeId: number; valueTypeId: number } {
  const info = map.info;
  if (!info.btfId || !info.btfKeyTypeId)
    throw new TypeError(
      `${what}: the map has no key BTF; load it from an object built with -g, or pass keyFields`,
    );
  return { btf: btfFromKernel(info.btfId), keyTypeId: info.btfKeyTypeId, valueTypeId: info.btfValueTypeId };
}

/**
 * Export `map` as the metric `spec` describes, for a service that loads its own programs. Labels
 * come from the key's BTF fields (the map's own BTF, as the kernel holds it, unless `opts.btf` or
 * `opts.keyFields` say otherwise). Register the result with {@link registerPrometheus} or push it
 * with {@link pushOtlp}; it reads the map at every collection and never closes it.
 */
export function exportMap<K, V>(
  map: BpfMap<K, V>,
  spec: MetricSpec,
  opts: ExportMapOptions = {},
): ExportedMap {
  return new ExportedMap(map as BpfMap<unknown, unknown>, spec, opts);
}
