import { BtfParseError } from './errors.js';
import { BTF_MAGIC, BtfKind, IntEncoding, kindNames } from './kinds.js';
import type { BtfEnumValue, BtfMember, BtfParam, BtfType, BtfVarSecinfo } from './types.js';

export interface BtfHeader {
  version: number;
  flags: number;
  hdrLen: number;
  typeOff: number;
  typeLen: number;
  strOff: number;
  strLen: number;
}

export interface RawBtf {
  header: BtfHeader;
  /** Types in this blob: index 0 is `void` for base BTF; for split BTF index 0 is id `firstId`. */
  count: number;
  firstId: number;
  strings: Uint8Array;
  /**
   * The type at `index`, decoded from the blob on first use and kept: a lazily indexed blob
   * (the kernel's) materialises only the types a caller reaches.
   */
  type(index: number): BtfType;
  /** Each type's kind number (`BtfKind`) and name offset, read without decoding the type. */
  kinds: Uint8Array;
  /** Each type's record: its byte offset in the parsed bytes (for patching a copy in place). */
  offsets: Uint32Array;
  nameOffs: Uint32Array;
  /** The name at a string offset (this blob's or the base's strings). */
  name(off: number): string;
  /** How many types have been decoded so far (all of them unless the blob was parsed lazily). */
  readonly decoded: number;
}

export interface ParseOptions {
  /** For split BTF (kernel modules): the base blob's type count and strings. */
  base?: { typeCount: number; strings: Uint8Array };
  /**
   * Index the blob and decode each type on first use (default false: decode every type now, so
   * every malformed type is reported here). The index pass still checks every type's kind and
   * bounds; a bad name is reported when its type is first reached.
   */
  lazy?: boolean;
}

const decoder = new TextDecoder();

function readString(
  strings: Uint8Array,
  off: number,
  baseStrings: Uint8Array | undefined,
  at: number,
): string {
  let table = strings;
  if (baseStrings) {
    if (off < baseStrings.length) table = baseStrings;
    else off -= baseStrings.length;
  }
  if (off >= table.length) throw new BtfParseError(`string offset ${off} is outside the string section`, at);
  const end = table.indexOf(0, off);
  if (end < 0) throw new BtfParseError(`string at offset ${off} is not NUL-terminated`, at);
  return decoder.decode(table.subarray(off, end));
}

/** The 4-aligned little-endian words of `bytes[from, from + len)`: a view when aligned, else a copy. */
function littleWords(bytes: Uint8Array, from: number, len: number): Uint32Array {
  const n = len >>> 2;
  const at = bytes.byteOffset + from;
  if (at % 4 === 0) return new Uint32Array(bytes.buffer, at, n);
  return new Uint32Array(bytes.slice(from, from + n * 4).buffer);
}

/**
 * Parse a raw BTF blob (the `.BTF` ELF section, or `/sys/kernel/btf/*`). Pure: no syscalls.
 * Every malformed input yields a {@link BtfParseError}.
 */
export function parseBtf(bytes: Uint8Array, opts: ParseOptions = {}): RawBtf {
  if (bytes.length < 24)
    throw new BtfParseError(`BTF blob of ${bytes.length} bytes is shorter than its header`, 0);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let le = true;
  const magic = dv.getUint16(0, true);
  if (magic !== BTF_MAGIC) {
    if (dv.getUint16(0, false) === BTF_MAGIC) le = false;
    else throw new BtfParseError(`bad BTF magic 0x${magic.toString(16)}`, 0);
  }
  const u32 = (o: number) => dv.getUint32(o, le);
  const header: BtfHeader = {
    version: dv.getUint8(2),
    flags: dv.getUint8(3),
    hdrLen: u32(4),
    typeOff: u32(8),
    typeLen: u32(12),
    strOff: u32(16),
    strLen: u32(20),
  };
  if (header.version !== 1) throw new BtfParseError(`unsupported BTF version ${header.version}`, 2);
  if (header.hdrLen < 24 || header.hdrLen > bytes.length)
    throw new BtfParseError(`header length ${header.hdrLen} is out of range`, 4);
  const body = header.hdrLen;
  const typeStart = body + header.typeOff;
  const typeEnd = typeStart + header.typeLen;
  const strStart = body + header.strOff;
  const strEnd = strStart + header.strLen;
  if (typeEnd > bytes.length || typeStart > typeEnd)
    throw new BtfParseError(
      `type section [${typeStart}, ${typeEnd}) exceeds the blob (${bytes.length} bytes)`,
      8,
    );
  if (strEnd > bytes.length || strStart > strEnd)
    throw new BtfParseError(
      `string section [${strStart}, ${strEnd}) exceeds the blob (${bytes.length} bytes)`,
      16,
    );
  if (header.typeLen % 4 !== 0)
    throw new BtfParseError(`type section length ${header.typeLen} is not 4-aligned`, 12);
  const strings = bytes.subarray(strStart, strEnd);
  const baseStrings = opts.base?.strings;
  if (!baseStrings && header.strLen > 0 && strings[0] !== 0)
    throw new BtfParseError('string section does not start with an empty string', strStart);

  const firstId = opts.base ? opts.base.typeCount : 1;
  const own = opts.base ? 0 : 1; // index 0 of base BTF is void, which has no record
  // Index pass: every type's offset, kind and name offset, bounds and kinds checked; no objects.
  // Little-endian blobs are read as 32-bit words (aligned, or copied once so they are).
  const cap = Math.floor(header.typeLen / 12) + 1 + own; // every record is at least 12 bytes
  const offsets = new Uint32Array(cap);
  let kinds = new Uint8Array(cap);
  let nameOffs = new Uint32Array(cap);
  const wordAt = le ? littleWords(bytes, typeStart, header.typeLen) : undefined;
  let count = own;
  for (let off = typeStart; off < typeEnd; count++) {
    const id = firstId + count - own;
    if (off + 12 > typeEnd) throw new BtfParseError(`type ${id} (header) is truncated`, off);
    const w = wordAt ? (off - typeStart) >>> 2 : 0;
    const info = wordAt ? wordAt[w + 1]! : u32(off + 4);
    const vlen = info & 0xffff;
    const kindNum = (info >>> 24) & 0x1f;
    const fixed = TAIL_FIXED[kindNum]!;
    if (fixed < 0) throw new BtfParseError(`type ${id} has unknown kind ${kindNum}`, off);
    const extra = fixed + TAIL_PER_VLEN[kindNum]! * vlen;
    if (off + 12 + extra > typeEnd)
      throw new BtfParseError(`type ${id} (${kindNames[kindNum]}) is truncated`, off + 12);
    offsets[count] = off;
    kinds[count] = kindNum;
    nameOffs[count] = wordAt ? wordAt[w]! : u32(off);
    off += 12 + extra;
  }
  kinds = kinds.subarray(0, count);
  nameOffs = nameOffs.subarray(0, count);
  const cache: (BtfType | undefined)[] = new Array(count);
  if (own) cache[0] = { kind: 'unkn', id: 0, name: '' };

  const decodeAt = (index: number): BtfType => {
    const id = firstId + index - own;
    let off = offsets[index]!;
    const at = off;
    const info = u32(off + 4);
    const sizeOrType = u32(off + 8);
    off += 12;
    const vlen = info & 0xffff;
    const kindNum = (info >>> 24) & 0x1f;
    const kindFlag = info >>> 31 === 1;
    const kind = kindNames[kindNum]!;
    const name = readString(strings, u32(at), baseStrings, at);
    switch (kindNum) {
      case BtfKind.INT: {
        const v = u32(off);
        const enc = (v >>> 24) & 0xf;
        return {
          kind: 'int',
          id,
          name,
          size: sizeOrType,
          signed: (enc & IntEncoding.SIGNED) !== 0,
          char: (enc & IntEncoding.CHAR) !== 0,
          bool: (enc & IntEncoding.BOOL) !== 0,
          offset: (v >>> 16) & 0xff,
          bits: v & 0xff,
        };
      }
      case BtfKind.PTR:
        return { kind: 'ptr', id, name, type: sizeOrType };
      case BtfKind.ARRAY:
        return { kind: 'array', id, name, type: u32(off), indexType: u32(off + 4), nelems: u32(off + 8) };
      case BtfKind.STRUCT:
      case BtfKind.UNION: {
        const members: BtfMember[] = [];
        for (let i = 0; i < vlen; i++, off += 12) {
          const m = u32(off + 8);
          members.push({
            name: readString(strings, u32(off), baseStrings, off),
            type: u32(off + 4),
            bitOffset: kindFlag ? m & 0xffffff : m,
            bitSize: kindFlag ? m >>> 24 : 0,
          });
        }
        return { kind: kindNum === BtfKind.STRUCT ? 'struct' : 'union', id, name, size: sizeOrType, members };
      }
      case BtfKind.ENUM:
      case BtfKind.ENUM64: {
        const is64 = kindNum === BtfKind.ENUM64;
        const step = is64 ? 12 : 8;
        const values: BtfEnumValue[] = [];
        for (let i = 0; i < vlen; i++, off += step) {
          let value: bigint;
          if (is64) {
            const v = (BigInt(u32(off + 8)) << 32n) | BigInt(u32(off + 4));
            value = kindFlag ? BigInt.asIntN(64, v) : v;
          } else {
            value = kindFlag ? BigInt(dv.getInt32(off + 4, le)) : BigInt(u32(off + 4));
          }
          values.push({ name: readString(strings, u32(off), baseStrings, off), value });
        }
        return { kind: is64 ? 'enum64' : 'enum', id, name, size: sizeOrType, signed: kindFlag, values };
      }
      case BtfKind.FWD:
        return { kind: 'fwd', id, name, union: kindFlag };
      case BtfKind.TYPEDEF:
      case BtfKind.VOLATILE:
      case BtfKind.CONST:
      case BtfKind.RESTRICT:
      case BtfKind.TYPE_TAG:
        return { kind: kind as 'typedef', id, name, type: sizeOrType };
      case BtfKind.FUNC:
        return { kind: 'func', id, name, type: sizeOrType, linkage: vlen };
      case BtfKind.FUNC_PROTO: {
        const params: BtfParam[] = [];
        for (let i = 0; i < vlen; i++, off += 8)
          params.push({ name: readString(strings, u32(off), baseStrings, off), type: u32(off + 4) });
        return { kind: 'func_proto', id, name, returnType: sizeOrType, params };
      }
      case BtfKind.VAR:
        return { kind: 'var', id, name, type: sizeOrType, linkage: u32(off) };
      case BtfKind.DATASEC: {
        const vars: BtfVarSecinfo[] = [];
        for (let i = 0; i < vlen; i++, off += 12)
          vars.push({ type: u32(off), offset: u32(off + 4), size: u32(off + 8) });
        return { kind: 'datasec', id, name, size: sizeOrType, vars };
      }
      case BtfKind.FLOAT:
        return { kind: 'float', id, name, size: sizeOrType };
      default: // DECL_TAG: the index pass admitted no other kind
        return { kind: 'decl_tag', id, name, type: sizeOrType, componentIdx: dv.getInt32(off, le) };
    }
  };
  let decoded = own;
  const raw: RawBtf = {
    header,
    count,
    firstId,
    strings,
    kinds,
    nameOffs,
    offsets: offsets.subarray(0, count),
    type(index) {
      let t = cache[index];
      if (t === undefined) {
        if (!(index >= 0 && index < count)) throw new RangeError(`BTF type index ${index} is out of range`);
        t = decodeAt(index);
        cache[index] = t;
        decoded++;
      }
      return t;
    },
    get decoded() {
      return decoded;
    },
    name: (off) => readString(strings, off, baseStrings, 0),
  };
  if (!opts.lazy) for (let i = own; i < count; i++) raw.type(i);
  return raw;
}

/** {@link recordTail} as two tables (bytes, and bytes per vlen entry) for the index pass; -1: unknown kind. */
const TAIL_FIXED = new Int8Array(32).fill(-1);
const TAIL_PER_VLEN = new Uint8Array(32);
for (let k = 0; k < 32; k++) {
  const none = recordTail(k, 0);
  if (none < 0) continue;
  TAIL_FIXED[k] = none;
  TAIL_PER_VLEN[k] = recordTail(k, 1) - none;
}

/** Bytes that follow a type's 12-byte header, by kind and vlen; -1 for an unknown kind. */
function recordTail(kind: number, vlen: number): number {
  switch (kind) {
    case BtfKind.INT:
    case BtfKind.VAR:
    case BtfKind.DECL_TAG:
      return 4;
    case BtfKind.ARRAY:
      return 12;
    case BtfKind.STRUCT:
    case BtfKind.UNION:
    case BtfKind.DATASEC:
    case BtfKind.ENUM64:
      return 12 * vlen;
    case BtfKind.ENUM:
    case BtfKind.FUNC_PROTO:
      return 8 * vlen;
    case BtfKind.PTR:
    case BtfKind.FWD:
    case BtfKind.TYPEDEF:
    case BtfKind.VOLATILE:
    case BtfKind.CONST:
    case BtfKind.RESTRICT:
    case BtfKind.FUNC:
    case BtfKind.FLOAT:
    case BtfKind.TYPE_TAG:
      return 0;
    default:
      return -1;
  }
}
