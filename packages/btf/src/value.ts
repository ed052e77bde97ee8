// Values by BTF type: decode bytes into JavaScript values (ints and enums as numbers, 64-bit as
// bigint, char arrays as strings, structs/unions/datasecs as objects, arrays as arrays, pointers
// as bigint addresses), encode them back, and format them as bpftool-like text.
import { cString } from '@bpfkit/sys';
import { BtfLookupError } from './errors.js';
import type { Btf } from './spec.js';
import type { BtfMember } from './types.js';

const MAX_DEPTH = 32;
/**
 * Values one decode or encode may visit besides one per byte of data: members of unions overlap
 * and zero-size members take no bytes, so a DAG of them could otherwise expand exponentially.
 */
const MAX_VALUES = 1 << 16;
const encoder = new TextEncoder();

function readInt(view: DataView, off: number, size: number, signed: boolean): number | bigint {
  switch (size) {
    case 1:
      return signed ? view.getInt8(off) : view.getUint8(off);
    case 2:
      return signed ? view.getInt16(off, true) : view.getUint16(off, true);
    case 4:
      return signed ? view.getInt32(off, true) : view.getUint32(off, true);
    case 8:
      return signed ? view.getBigInt64(off, true) : view.getBigUint64(off, true);
    default: {
      let v = 0n;
      for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(view.getUint8(off + i));
      return signed ? BigInt.asIntN(size * 8, v) : v;
    }
  }
}

function writeInt(
  view: DataView,
  off: number,
  size: number,
  signed: boolean,
  value: unknown,
  what: string,
): void {
  let n: bigint;
  if (typeof value === 'bigint') n = value;
  else if (typeof value === 'number' && Number.isInteger(value)) n = BigInt(value);
  else if (typeof value === 'boolean') n = value ? 1n : 0n;
  else throw new TypeError(`${what} expects an integer, got ${typeof value}`);
  const bits = BigInt(size * 8);
  const min = signed ? -(1n << (bits - 1n)) : 0n;
  const max = signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
  if (n < min || n > max)
    throw new RangeError(`${what} (${size * 8}-bit ${signed ? 'signed' : 'unsigned'}) cannot hold ${n}`);
  const u = BigInt.asUintN(size * 8, n);
  for (let i = 0; i < size; i++) view.setUint8(off + i, Number((u >> BigInt(8 * i)) & 0xffn));
}

/** Bits [bitOff, bitOff+bits) of the little-endian bytes at `off`, within `limit` bytes. */
function readBits(
  view: DataView,
  off: number,
  bitOff: number,
  bits: number,
  signed: boolean,
): number | bigint {
  const bytes = Math.ceil((bitOff + bits) / 8);
  let v = 0n;
  for (let i = bytes - 1; i >= 0; i--) v = (v << 8n) | BigInt(view.getUint8(off + i));
  v = (v >> BigInt(bitOff)) & ((1n << BigInt(bits)) - 1n);
  if (signed) v = BigInt.asIntN(bits, v);
  return bits <= 32 ? Number(v) : v;
}

function writeBits(
  view: DataView,
  off: number,
  bitOff: number,
  bits: number,
  value: unknown,
  what: string,
): void {
  const bytes = Math.ceil((bitOff + bits) / 8);
  let unit = 0n;
  for (let i = bytes - 1; i >= 0; i--) unit = (unit << 8n) | BigInt(view.getUint8(off + i));
  const v = BigInt(value as number | bigint);
  if (BigInt.asUintN(bits, v) !== v && BigInt.asIntN(bits, v) !== v)
    throw new RangeError(`${what} (${bits}-bit field) cannot hold ${v}`);
  const mask = ((1n << BigInt(bits)) - 1n) << BigInt(bitOff);
  unit = (unit & ~mask) | ((BigInt.asUintN(bits, v) << BigInt(bitOff)) & mask);
  for (let i = 0; i < bytes; i++) view.setUint8(off + i, Number((unit >> BigInt(8 * i)) & 0xffn));
}

const isCharArray = (btf: Btf, id: number): boolean => {
  const t = btf.resolve(id);
  if (t.kind !== 'array') return false;
  const el = btf.resolve(t.type);
  return el.kind === 'int' && el.size === 1 && (el.char || el.name === 'char');
};

interface Walk {
  /** Values still allowed (see MAX_VALUES). */
  left: number;
}

const describe = (btf: Btf, id: number): string => {
  const t = btf.typeById(id);
  return `type ${id} (${t.kind}${t.name ? ` '${t.name}'` : ''})`;
};

/** Bytes [off, off+size) must lie inside the view: a RangeError naming the type otherwise. */
function need(btf: Btf, id: number, view: DataView, off: number, size: number): void {
  if (off < 0 || off + size > view.byteLength)
    throw new RangeError(
      `${describe(btf, id)} at byte ${off} needs ${size} bytes, beyond the ${view.byteLength}-byte value`,
    );
}

/** Ints hold at most 128 bits and enums 1, 2, 4 or 8 bytes (as the kernel checks BTF). */
function scalarSize(btf: Btf, id: number, t: { kind: string; size: number }): number {
  const ok = t.kind === 'int' ? t.size <= 16 : t.size === 1 || t.size === 2 || t.size === 4 || t.size === 8;
  if (!ok) throw new BtfLookupError(`${describe(btf, id)} is ${t.size} bytes, which BTF does not allow`);
  return t.size;
}

function spend(btf: Btf, id: number, walk: Walk, n: number): void {
  walk.left -= n;
  if (walk.left < 0)
    throw new BtfLookupError(`${describe(btf, id)} expands to more values than its bytes can hold`);
}

/** A non-bitfield member's byte offset: members that do not start on a byte are malformed BTF. */
function memberByte(btf: Btf, id: number, m: BtfMember): number {
  if (m.bitOffset % 8 !== 0)
    throw new BtfLookupError(
      `member '${m.name || '(anon)'}' of ${describe(btf, id)} starts at bit ${m.bitOffset}, not on a byte`,
    );
  return m.bitOffset / 8;
}

/** A bitfield's storage: at most 64 bits after the first byte, inside the view. */
function bitfield(btf: Btf, id: number, view: DataView, offset: number, m: BtfMember) {
  if (m.bitSize > 64)
    throw new BtfLookupError(`bitfield '${m.name}' of ${describe(btf, id)} is ${m.bitSize} bits wide`);
  const at = offset + Math.floor(m.bitOffset / 8);
  const bitOff = m.bitOffset % 8;
  need(btf, id, view, at, Math.ceil((bitOff + m.bitSize) / 8));
  return { at, bitOff };
}

/**
 * Decode the value of BTF type `id` at `offset` of `view`. Reads only inside `view`: a member or
 * element beyond it is a RangeError naming the type and offset; malformed BTF (too deep, a loop,
 * a member off a byte boundary, an exponential DAG) is a {@link BtfLookupError}.
 */
export function decodeValue(btf: Btf, id: number, view: DataView, offset = 0, depth = 0): unknown {
  return decode(btf, id, view, offset, depth, { left: MAX_VALUES + 8 * view.byteLength });
}

function decode(btf: Btf, id: number, view: DataView, offset: number, depth: number, walk: Walk): unknown {
  if (depth > MAX_DEPTH) throw new BtfLookupError(`type ${id} nests deeper than ${MAX_DEPTH}`);
  const t = btf.resolve(id);
  spend(btf, id, walk, 1);
  switch (t.kind) {
    case 'int':
      need(btf, id, view, offset, t.bool ? 1 : scalarSize(btf, id, t));
      if (t.bool) return view.getUint8(offset) !== 0;
      return readInt(view, offset, t.size, t.signed);
    case 'enum':
    case 'enum64':
      need(btf, id, view, offset, scalarSize(btf, id, t));
      return readInt(view, offset, t.size, t.signed);
    case 'ptr':
      need(btf, id, view, offset, 8);
      return view.getBigUint64(offset, true);
    case 'float':
      need(btf, id, view, offset, t.size);
      return t.size === 4
        ? view.getFloat32(offset, true)
        : t.size === 8
          ? view.getFloat64(offset, true)
          : undefined;
    case 'array': {
      if (isCharArray(btf, t.id)) {
        need(btf, id, view, offset, t.nelems);
        return cString(new Uint8Array(view.buffer, view.byteOffset + offset, t.nelems));
      }
      const size = btf.sizeof(t.type);
      need(btf, id, view, offset, t.nelems * size);
      spend(btf, id, walk, t.nelems);
      const out = new Array<unknown>(t.nelems);
      for (let i = 0; i < t.nelems; i++)
        out[i] = decode(btf, t.type, view, offset + i * size, depth + 1, walk);
      return out;
    }
    case 'struct':
    case 'union': {
      const out: Record<string, unknown> = {};
      for (const m of t.members) {
        if (m.bitSize) {
          const mt = btf.resolve(m.type);
          const signed = (mt.kind === 'int' || mt.kind === 'enum') && mt.signed;
          const { at, bitOff } = bitfield(btf, t.id, view, offset, m);
          out[m.name] = readBits(view, at, bitOff, m.bitSize, signed);
          continue;
        }
        const v = decode(btf, m.type, view, offset + memberByte(btf, t.id, m), depth + 1, walk);
        if (m.name) out[m.name] = v;
        else if (v && typeof v === 'object') Object.assign(out, v); // anonymous member: its fields inline
      }
      return out;
    }
    case 'datasec': {
      const out: Record<string, unknown> = {};
      for (const v of t.vars)
        out[btf.typeById(v.type).name] = decode(btf, v.type, view, offset + v.offset, depth + 1, walk);
      return out;
    }
    case 'var':
      return decode(btf, t.type, view, offset, depth + 1, walk);
    default: {
      const size = btf.sizeof(id);
      need(btf, id, view, offset, size);
      return new Uint8Array(view.buffer.slice(view.byteOffset + offset, view.byteOffset + offset + size));
    }
  }
}

/**
 * Encode `value` as BTF type `id` at `offset` of `view`. Absent struct fields keep their bytes.
 * Writes only inside `view` (a RangeError names what would not fit).
 */
export function encodeValue(
  btf: Btf,
  id: number,
  view: DataView,
  offset: number,
  value: unknown,
  what = 'value',
  depth = 0,
): void {
  encode(btf, id, view, offset, value, what, depth, { left: MAX_VALUES + 8 * view.byteLength });
}

function encode(
  btf: Btf,
  id: number,
  view: DataView,
  offset: number,
  value: unknown,
  what: string,
  depth: number,
  walk: Walk,
): void {
  if (depth > MAX_DEPTH) throw new BtfLookupError(`type ${id} nests deeper than ${MAX_DEPTH}`);
  const t = btf.resolve(id);
  spend(btf, id, walk, 1);
  switch (t.kind) {
    case 'int':
    case 'enum':
    case 'enum64':
      need(btf, id, view, offset, scalarSize(btf, id, t));
      writeInt(view, offset, t.size, t.signed, value, what);
      return;
    case 'ptr':
      need(btf, id, view, offset, 8);
      writeInt(view, offset, 8, false, value, what);
      return;
    case 'float':
      if (typeof value !== 'number') throw new TypeError(`${what} expects a number`);
      if (t.size !== 4 && t.size !== 8)
        throw new TypeError(`${what}: a ${t.size}-byte float is not supported`);
      need(btf, id, view, offset, t.size);
      if (t.size === 4) view.setFloat32(offset, value, true);
      else view.setFloat64(offset, value, true);
      return;
    case 'array': {
      if (isCharArray(btf, t.id)) {
        if (typeof value !== 'string') throw new TypeError(`${what} (char[${t.nelems}]) expects a string`);
        const b = encoder.encode(value);
        if (b.length >= t.nelems)
          throw new RangeError(`${what} (char[${t.nelems}]) holds at most ${t.nelems - 1} bytes`);
        need(btf, id, view, offset, t.nelems);
        new Uint8Array(view.buffer, view.byteOffset + offset, t.nelems).fill(0).set(b);
        return;
      }
      if (!Array.isArray(value) || value.length !== t.nelems)
        throw new RangeError(`${what} expects an array of ${t.nelems} elements`);
      const size = btf.sizeof(t.type);
      need(btf, id, view, offset, t.nelems * size);
      value.forEach((v, i) => {
        encode(btf, t.type, view, offset + i * size, v, `${what}[${i}]`, depth + 1, walk);
      });
      return;
    }
    case 'struct':
    case 'union': {
      if (value === null || typeof value !== 'object') throw new TypeError(`${what} expects an object`);
      const obj = value as Record<string, unknown>;
      for (const m of t.members) {
        if (!m.name) {
          encode(btf, m.type, view, offset + memberByte(btf, t.id, m), value, what, depth + 1, walk);
          continue;
        }
        const v = obj[m.name];
        if (v === undefined) continue;
        if (m.bitSize) {
          const { at, bitOff } = bitfield(btf, t.id, view, offset, m);
          writeBits(view, at, bitOff, m.bitSize, v, `${what}.${m.name}`);
        } else
          encode(
            btf,
            m.type,
            view,
            offset + memberByte(btf, t.id, m),
            v,
            `${what}.${m.name}`,
            depth + 1,
            walk,
          );
      }
      return;
    }
    case 'datasec': {
      if (value === null || typeof value !== 'object') throw new TypeError(`${what} expects an object`);
      for (const v of t.vars) {
        const name = btf.typeById(v.type).name;
        const x = (value as Record<string, unknown>)[name];
        if (x !== undefined) encode(btf, v.type, view, offset + v.offset, x, name, depth + 1, walk);
      }
      return;
    }
    case 'var':
      encode(btf, t.type, view, offset, value, what, depth + 1, walk);
      return;
    default: {
      const size = btf.sizeof(id);
      if (!(value instanceof Uint8Array) || value.length !== size)
        throw new TypeError(`${what} expects ${size} raw bytes`);
      need(btf, id, view, offset, size);
      new Uint8Array(view.buffer, view.byteOffset + offset, size).set(value);
    }
  }
}

/** A JSON-safe form of a decoded value (bigint as decimal strings where they exceed 2^53, bytes as hex). */
export function toJson(value: unknown): unknown {
  if (typeof value === 'bigint')
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= -BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (Array.isArray(value)) return value.map(toJson);
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]));
  return value;
}

/** Format bytes of BTF type `id` as bpftool-like pretty JSON text. */
export function formatValue(btf: Btf, id: number, bytes: Uint8Array): string {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return JSON.stringify(toJson(decodeValue(btf, id, view)), null, 2);
}
