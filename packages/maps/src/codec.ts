// Codecs turn JavaScript values into the bytes a map stores and back. Each has a fixed size and
// C alignment, so structs lay out exactly as clang lays out the C struct.
import { cString } from '@bpfkit/sys';

/** Encodes and decodes one fixed-size value at an offset of a DataView. */
export interface Codec<T> {
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /** C alignment in bytes. */
  readonly align: number;
  encode(view: DataView, offset: number, value: T): void;
  decode(view: DataView, offset: number): T;
}
export type ValueOf<C> = C extends Codec<infer T> ? T : never;

function badInt(name: string, min: number, max: number, value: unknown): Error {
  return typeof value === 'number'
    ? new RangeError(`${name} expects an integer in [${min}, ${max}], got ${value}`)
    : new TypeError(
        `${name} expects a number, got ${value === null ? 'null' : typeof value} ${String(value)}`,
      );
}

function float(name: string, value: unknown): number {
  if (typeof value !== 'number')
    throw new TypeError(
      `${name} expects a number, got ${value === null ? 'null' : typeof value} ${String(value)}`,
    );
  return value;
}

function intCodec(
  name: string,
  size: 1 | 2 | 4,
  signed: boolean,
  set: (view: DataView, offset: number, value: number) => void,
  get: (view: DataView, offset: number) => number,
): Codec<number> {
  const min = signed ? -(2 ** (size * 8 - 1)) : 0;
  const max = signed ? 2 ** (size * 8 - 1) - 1 : 2 ** (size * 8) - 1;
  return {
    name,
    size,
    align: size,
    encode(view, offset, value) {
      // one comparison chain, no computed method lookups: this is the hot path of every map op.
      // typeof first: null, true, '4' and [] all compare as numbers and would be written as such
      if (typeof value !== 'number' || !(value >= min && value <= max) || value % 1 !== 0)
        throw badInt(name, min, max, value);
      set(view, offset, value);
    },
    decode: get,
  };
}

function int64Codec(
  name: string,
  [min, max]: [bigint, bigint],
  set: (view: DataView, offset: number, value: bigint) => void,
  get: (view: DataView, offset: number) => bigint,
): Codec<bigint> {
  return {
    name,
    size: 8,
    align: 8,
    encode(view, offset, value) {
      if (typeof value !== 'bigint') throw new TypeError(`${name} expects a bigint, got ${typeof value}`);
      if (value < min || value > max) throw new RangeError(`${name} value ${value} is out of range`);
      set(view, offset, value);
    },
    decode: get,
  };
}

export const u8 = intCodec(
  'u8',
  1,
  false,
  (v, o, x) => v.setUint8(o, x),
  (v, o) => v.getUint8(o),
);
export const u16 = intCodec(
  'u16',
  2,
  false,
  (v, o, x) => v.setUint16(o, x, true),
  (v, o) => v.getUint16(o, true),
);
export const u32 = intCodec(
  'u32',
  4,
  false,
  (v, o, x) => v.setUint32(o, x, true),
  (v, o) => v.getUint32(o, true),
);
export const i8 = intCodec(
  'i8',
  1,
  true,
  (v, o, x) => v.setInt8(o, x),
  (v, o) => v.getInt8(o),
);
export const i16 = intCodec(
  'i16',
  2,
  true,
  (v, o, x) => v.setInt16(o, x, true),
  (v, o) => v.getInt16(o, true),
);
export const i32 = intCodec(
  'i32',
  4,
  true,
  (v, o, x) => v.setInt32(o, x, true),
  (v, o) => v.getInt32(o, true),
);
export const u64 = int64Codec(
  'u64',
  [0n, 2n ** 64n - 1n],
  (v, o, x) => v.setBigUint64(o, x, true),
  (v, o) => v.getBigUint64(o, true),
);
export const i64 = int64Codec(
  'i64',
  [-(2n ** 63n), 2n ** 63n - 1n],
  (v, o, x) => v.setBigInt64(o, x, true),
  (v, o) => v.getBigInt64(o, true),
);

export const f32: Codec<number> = {
  name: 'f32',
  size: 4,
  align: 4,
  encode: (v, o, x) => v.setFloat32(o, float('f32', x), true),
  decode: (v, o) => v.getFloat32(o, true),
};
export const f64: Codec<number> = {
  name: 'f64',
  size: 8,
  align: 8,
  encode: (v, o, x) => v.setFloat64(o, float('f64', x), true),
  decode: (v, o) => v.getFloat64(o, true),
};
export const bool: Codec<boolean> = {
  name: 'bool',
  size: 1,
  align: 1,
  encode: (v, o, x) => {
    if (typeof x !== 'boolean')
      throw new TypeError(`bool expects a boolean, got ${x === null ? 'null' : typeof x}`);
    v.setUint8(o, x ? 1 : 0);
  },
  decode: (v, o) => v.getUint8(o) !== 0,
};

/** `n` raw bytes. Decoding returns a copy. */
export function bytes(n: number): Codec<Uint8Array> {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`bytes(n) needs a whole number ≥ 0, got ${n}`);
  return {
    name: `bytes(${n})`,
    size: n,
    align: 1,
    encode(view, offset, value) {
      if (!(value instanceof Uint8Array)) throw new TypeError(`bytes(${n}) expects a Uint8Array`);
      if (value.length !== n)
        throw new RangeError(`bytes(${n}) expects exactly ${n} bytes, got ${value.length}`);
      new Uint8Array(view.buffer, view.byteOffset + offset, n).set(value);
    },
    decode(view, offset) {
      return new Uint8Array(view.buffer.slice(view.byteOffset + offset, view.byteOffset + offset + n));
    },
  };
}

const utf8 = new TextEncoder();

/** A NUL-padded C string in `n` bytes (at most n-1 bytes of text). */
export function cstring(n: number): Codec<string> {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`cstring(n) needs a whole number ≥ 1, got ${n}`);
  return {
    name: `cstring(${n})`,
    size: n,
    align: 1,
    encode(view, offset, value) {
      if (typeof value !== 'string')
        throw new TypeError(`cstring(${n}) expects a string, got ${value === null ? 'null' : typeof value}`);
      const b = utf8.encode(value);
      if (b.length >= n) throw new RangeError(`cstring(${n}) holds at most ${n - 1} bytes, got ${b.length}`);
      const dst = new Uint8Array(view.buffer, view.byteOffset + offset, n);
      dst.fill(0);
      dst.set(b);
    },
    decode(view, offset) {
      return cString(new Uint8Array(view.buffer, view.byteOffset + offset, n));
    },
  };
}

/** A fixed-length C array of `n` elements. */
export function array<T>(codec: Codec<T>, n: number): Codec<T[]> {
  if (!Number.isInteger(n) || n < 0)
    throw new RangeError(`array(codec, n) needs a whole number ≥ 0, got ${n}`);
  return {
    name: `${codec.name}[${n}]`,
    size: codec.size * n,
    align: codec.align,
    encode(view, offset, value) {
      if (!Array.isArray(value) || value.length !== n)
        throw new RangeError(
          `${codec.name}[${n}] expects an array of ${n}, got ${Array.isArray(value) ? value.length : typeof value}`,
        );
      for (let i = 0; i < n; i++) codec.encode(view, offset + i * codec.size, value[i] as T);
    },
    decode(view, offset) {
      const out = new Array<T>(n);
      for (let i = 0; i < n; i++) out[i] = codec.decode(view, offset + i * codec.size);
      return out;
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: each field has its own value type
type Fields = Record<string, Codec<any>>;
export type StructValue<F extends Fields> = { [K in keyof F]: ValueOf<F[K]> };

/** A C struct: fields in order, each at its natural alignment, padded to the largest alignment. */
export function struct<F extends Fields>(
  fields: F,
  name = 'struct',
): Codec<StructValue<F>> & { offsets: Record<keyof F, number> } {
  let off = 0;
  let align = 1;
  const layout: [string, number, Codec<unknown>][] = [];
  const offsets = {} as Record<keyof F, number>;
  for (const [key, codec] of Object.entries(fields)) {
    off = Math.ceil(off / codec.align) * codec.align;
    layout.push([key, off, codec]);
    offsets[key as keyof F] = off;
    off += codec.size;
    align = Math.max(align, codec.align);
  }
  const size = Math.ceil(off / align) * align;
  return {
    name,
    size,
    align,
    offsets,
    encode(view, offset, value) {
      if (value === null || typeof value !== 'object') throw new TypeError(`${name} expects an object`);
      new Uint8Array(view.buffer, view.byteOffset + offset, size).fill(0);
      for (const [key, o, codec] of layout) {
        const v = (value as Record<string, unknown>)[key];
        if (v === undefined) throw new TypeError(`${name} is missing field '${key}'`);
        codec.encode(view, offset + o, v);
      }
    },
    decode(view, offset) {
      const out: Record<string, unknown> = {};
      for (const [key, o, codec] of layout) out[key] = codec.decode(view, offset + o);
      return out as StructValue<F>;
    },
  };
}

/**
 * A stack trace map's value: `depth` 8-byte instruction addresses, as bpf_get_stackid() stores
 * them. Decodes to the addresses up to the first zero (the end of a shorter stack).
 */
export function stackAddresses(depth: number): Codec<bigint[]> {
  if (!Number.isInteger(depth) || depth < 1)
    throw new RangeError(`stackAddresses(depth) needs a whole number ≥ 1, got ${depth}`);
  return {
    name: `stack(${depth})`,
    size: depth * 8,
    align: 8,
    encode(view, offset, value) {
      if (!Array.isArray(value) || value.length > depth)
        throw new RangeError(`stack(${depth}) takes at most ${depth} addresses`);
      for (let i = 0; i < depth; i++) u64.encode(view, offset + i * 8, value[i] ?? 0n);
    },
    decode(view, offset) {
      const out: bigint[] = [];
      for (let i = 0; i < depth; i++) {
        const ip = view.getBigUint64(offset + i * 8, true);
        if (ip === 0n) break;
        out.push(ip);
      }
      return out;
    },
  };
}

/**
 * A per-CPU map's value: one `codec` value for each of `nCpus` CPUs, as an array. The kernel lays
 * each CPU's value out in a slot rounded up to 8 bytes, so `size` is `nCpus` such slots. Per-CPU
 * maps use it on their own (with `possibleCpus()`); it is exported for raw bytes read some
 * other way, such as `getBytes()` or a pinned map's dump.
 */
export function perCpu<T>(codec: Codec<T>, nCpus: number): Codec<T[]> & { readonly stride: number } {
  if (!Number.isInteger(nCpus) || nCpus < 1)
    throw new RangeError(`perCpu(codec, nCpus) needs a whole number of CPUs ≥ 1, got ${nCpus}`);
  const stride = (codec.size + 7) & ~7;
  const name = `perCpu(${codec.name}, ${nCpus})`;
  return {
    name,
    size: stride * nCpus,
    align: 8,
    stride,
    encode(view, offset, value) {
      if (!Array.isArray(value) || value.length !== nCpus)
        throw new RangeError(
          `${name} takes an array of ${nCpus} values (one per possible CPU), got ${Array.isArray(value) ? `${value.length}` : typeof value}`,
        );
      for (let c = 0; c < nCpus; c++) codec.encode(view, offset + c * stride, value[c] as T);
    },
    decode(view, offset) {
      const out = new Array<T>(nCpus);
      for (let c = 0; c < nCpus; c++) out[c] = codec.decode(view, offset + c * stride);
      return out;
    },
  };
}
