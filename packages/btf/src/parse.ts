import { BtfParseError } from './errors.js';
import { BTF_MAGIC, BtfKind, kindNames } from './kinds.js';
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
  /** Types in id order; index 0 is `void` (or, for split BTF, the first id is `firstId`). */
  types: BtfType[];
  firstId: number;
  strings: Uint8Array;
}

export interface ParseOptions {
  /** For split BTF (kernel modules): the base blob's type count and strings. */
  base?: { typeCount: number; strings: Uint8Array };
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
  const types: BtfType[] = [];
  if (!opts.base) types.push({ kind: 'unkn', id: 0, name: '' });
  let off = typeStart;
  let id = firstId;
  const need = (n: number, what: string) => {
    if (off + n > typeEnd) throw new BtfParseError(`type ${id} (${what}) is truncated`, off);
  };
  while (off < typeEnd) {
    need(12, 'header');
    const at = off;
    const nameOff = u32(off);
    const info = u32(off + 4);
    const sizeOrType = u32(off + 8);
    off += 12;
    const vlen = info & 0xffff;
    const kindNum = (info >>> 24) & 0x1f;
    const kindFlag = info >>> 31 === 1;
    const kind = kindNames[kindNum];
    if (kind === undefined || kindNum === BtfKind.UNKN)
      throw new BtfParseError(`type ${id} has unknown kind ${kindNum}`, at);
    const name = readString(strings, nameOff, baseStrings, at);
    let t: BtfType;
    switch (kindNum) {
      case BtfKind.INT: {
        need(4, 'int');
        const v = u32(off);
        off += 4;
        const enc = (v >>> 24) & 0xf;
        t = {
          kind: 'int',
          id,
          name,
          size: sizeOrType,
          signed: (enc & 1) !== 0,
          char: (enc & 2) !== 0,
          bool: (enc & 4) !== 0,
          offset: (v >>> 16) & 0xff,
          bits: v & 0xff,
        };
        break;
      }
      case BtfKind.PTR:
        t = { kind: 'ptr', id, name, type: sizeOrType };
        break;
      case BtfKind.ARRAY:
        need(12, 'array');
        t = { kind: 'array', id, name, type: u32(off), indexType: u32(off + 4), nelems: u32(off + 8) };
        off += 12;
        break;
      case BtfKind.STRUCT:
      case BtfKind.UNION: {
        need(12 * vlen, kind);
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
        t = { kind: kindNum === BtfKind.STRUCT ? 'struct' : 'union', id, name, size: sizeOrType, members };
        break;
      }
      case BtfKind.ENUM:
      case BtfKind.ENUM64: {
        const is64 = kindNum === BtfKind.ENUM64;
        const step = is64 ? 12 : 8;
        need(step * vlen, kind);
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
        t = { kind: is64 ? 'enum64' : 'enum', id, name, size: sizeOrType, signed: kindFlag, values };
        break;
      }
      case BtfKind.FWD:
        t = { kind: 'fwd', id, name, union: kindFlag };
        break;
      case BtfKind.TYPEDEF:
      case BtfKind.VOLATILE:
      case BtfKind.CONST:
      case BtfKind.RESTRICT:
      case BtfKind.TYPE_TAG:
        t = { kind: kind as 'typedef', id, name, type: sizeOrType };
        break;
      case BtfKind.FUNC:
        t = { kind: 'func', id, name, type: sizeOrType, linkage: vlen };
        break;
      case BtfKind.FUNC_PROTO: {
        need(8 * vlen, kind);
        const params: BtfParam[] = [];
        for (let i = 0; i < vlen; i++, off += 8)
          params.push({ name: readString(strings, u32(off), baseStrings, off), type: u32(off + 4) });
        t = { kind: 'func_proto', id, name, returnType: sizeOrType, params };
        break;
      }
      case BtfKind.VAR:
        need(4, 'var');
        t = { kind: 'var', id, name, type: sizeOrType, linkage: u32(off) };
        off += 4;
        break;
      case BtfKind.DATASEC: {
        need(12 * vlen, kind);
        const vars: BtfVarSecinfo[] = [];
        for (let i = 0; i < vlen; i++, off += 12)
          vars.push({ type: u32(off), offset: u32(off + 4), size: u32(off + 8) });
        t = { kind: 'datasec', id, name, size: sizeOrType, vars };
        break;
      }
      case BtfKind.FLOAT:
        t = { kind: 'float', id, name, size: sizeOrType };
        break;
      case BtfKind.DECL_TAG:
        need(4, 'decl_tag');
        t = { kind: 'decl_tag', id, name, type: sizeOrType, componentIdx: dv.getInt32(off, le) };
        off += 4;
        break;
      default:
        throw new BtfParseError(`type ${id} has unknown kind ${kindNum}`, at);
    }
    types.push(t);
    id++;
  }
  return { header, types, firstId, strings };
}
