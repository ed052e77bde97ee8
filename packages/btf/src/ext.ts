import { BtfParseError } from './errors.js';
import { BTF_MAGIC } from './kinds.js';

/** `.BTF.ext` func_info record: the BTF FUNC of the function starting at `insnOff` (bytes). */
export interface FuncInfo {
  insnOff: number;
  typeId: number;
}
/** `.BTF.ext` line_info record; string offsets point into the object's `.BTF` string table. */
export interface LineInfo {
  insnOff: number;
  fileNameOff: number;
  lineOff: number;
  lineCol: number;
}
/** CO-RE relocation kinds (`enum bpf_core_relo_kind`). */
export const CoreReloKind = {
  FIELD_BYTE_OFFSET: 0,
  FIELD_BYTE_SIZE: 1,
  FIELD_EXISTS: 2,
  FIELD_SIGNED: 3,
  FIELD_LSHIFT_U64: 4,
  FIELD_RSHIFT_U64: 5,
  TYPE_ID_LOCAL: 6,
  TYPE_ID_TARGET: 7,
  TYPE_EXISTS: 8,
  TYPE_SIZE: 9,
  ENUMVAL_EXISTS: 10,
  ENUMVAL_VALUE: 11,
  TYPE_MATCHES: 12,
} as const;
export type CoreReloKind = (typeof CoreReloKind)[keyof typeof CoreReloKind];

/** A `.BTF.ext` CO-RE relocation: patch the instruction at `insnOff` (bytes) per `kind`. */
export interface CoreRelo {
  insnOff: number;
  typeId: number;
  /** Access string such as `0:1:2` (or an enumerator index for enum relocations). */
  access: string;
  kind: CoreReloKind;
}

export interface BtfExt {
  funcInfoRecSize: number;
  lineInfoRecSize: number;
  /** Records by ELF section name. */
  funcInfo: Map<string, FuncInfo[]>;
  lineInfo: Map<string, LineInfo[]>;
  coreRelos: Map<string, CoreRelo[]>;
}

const decoder = new TextDecoder();

/**
 * Parse `.BTF.ext` (func info, line info, CO-RE relocations). `strings` is the string section of
 * the object's `.BTF`, which section names and access strings point into.
 */
export function parseBtfExt(bytes: Uint8Array, strings: Uint8Array): BtfExt {
  if (bytes.length < 24)
    throw new BtfParseError(`.BTF.ext of ${bytes.length} bytes is shorter than its header`, 0);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint16(0, true) !== BTF_MAGIC)
    throw new BtfParseError(`bad .BTF.ext magic 0x${dv.getUint16(0, true).toString(16)}`, 0);
  if (dv.getUint8(2) !== 1) throw new BtfParseError(`unsupported .BTF.ext version ${dv.getUint8(2)}`, 2);
  const hdrLen = dv.getUint32(4, true);
  if (hdrLen < 24 || hdrLen > bytes.length)
    throw new BtfParseError(`.BTF.ext header length ${hdrLen} is out of range`, 4);
  const str = (off: number, at: number) => {
    if (off >= strings.length)
      throw new BtfParseError(`.BTF.ext string offset ${off} is outside the BTF strings`, at);
    const end = strings.indexOf(0, off);
    if (end < 0) throw new BtfParseError(`.BTF.ext string at ${off} is not NUL-terminated`, at);
    return decoder.decode(strings.subarray(off, end));
  };
  const section = <T>(offField: number, minRec: number, read: (at: number) => T) => {
    const out = new Map<string, T[]>();
    if (offField + 8 > hdrLen) return { recSize: minRec, out };
    const start = hdrLen + dv.getUint32(offField, true);
    const len = dv.getUint32(offField + 4, true);
    if (len === 0) return { recSize: minRec, out };
    const end = start + len;
    if (end > bytes.length || start + 4 > end)
      throw new BtfParseError(`.BTF.ext subsection [${start}, ${end}) exceeds the data`, offField);
    const recSize = dv.getUint32(start, true);
    if (recSize < minRec || recSize % 4 !== 0)
      throw new BtfParseError(`.BTF.ext record size ${recSize} is invalid`, start);
    let at = start + 4;
    while (at < end) {
      if (at + 8 > end) throw new BtfParseError('.BTF.ext section header is truncated', at);
      const name = str(dv.getUint32(at, true), at);
      const n = dv.getUint32(at + 4, true);
      at += 8;
      if (at + n * recSize > end) throw new BtfParseError(`.BTF.ext records for '${name}' are truncated`, at);
      const list = out.get(name) ?? [];
      for (let i = 0; i < n; i++, at += recSize) list.push(read(at));
      out.set(name, list);
    }
    return { recSize, out };
  };
  const func = section(8, 8, (at) => ({
    insnOff: dv.getUint32(at, true),
    typeId: dv.getUint32(at + 4, true),
  }));
  const line = section(16, 16, (at) => ({
    insnOff: dv.getUint32(at, true),
    fileNameOff: dv.getUint32(at + 4, true),
    lineOff: dv.getUint32(at + 8, true),
    lineCol: dv.getUint32(at + 12, true),
  }));
  const core = section(24, 16, (at) => {
    const kind = dv.getUint32(at + 12, true);
    if (kind > 12) throw new BtfParseError(`unknown CO-RE relocation kind ${kind}`, at + 12);
    return {
      insnOff: dv.getUint32(at, true),
      typeId: dv.getUint32(at + 4, true),
      access: str(dv.getUint32(at + 8, true), at + 8),
      kind: kind as CoreReloKind,
    };
  });
  return {
    funcInfoRecSize: func.recSize,
    lineInfoRecSize: line.recSize,
    funcInfo: func.out,
    lineInfo: line.out,
    coreRelos: core.out,
  };
}

/** Encode func info records for BPF_PROG_LOAD (`insn_off` in instructions, not bytes). */
export function encodeFuncInfo(records: readonly FuncInfo[]): Uint8Array {
  const out = new Uint8Array(records.length * 8);
  const dv = new DataView(out.buffer);
  records.forEach((r, i) => {
    dv.setUint32(i * 8, r.insnOff, true);
    dv.setUint32(i * 8 + 4, r.typeId, true);
  });
  return out;
}

/** Encode line info records for BPF_PROG_LOAD (`insn_off` in instructions, not bytes). */
export function encodeLineInfo(records: readonly LineInfo[]): Uint8Array {
  const out = new Uint8Array(records.length * 16);
  const dv = new DataView(out.buffer);
  records.forEach((r, i) => {
    dv.setUint32(i * 16, r.insnOff, true);
    dv.setUint32(i * 16 + 4, r.fileNameOff, true);
    dv.setUint32(i * 16 + 8, r.lineOff, true);
    dv.setUint32(i * 16 + 12, r.lineCol, true);
  });
  return out;
}
