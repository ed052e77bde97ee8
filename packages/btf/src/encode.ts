import { BTF_MAGIC, BtfKind, IntEncoding } from './kinds.js';
import type { BtfType } from './types.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const REF_KINDS = {
  typedef: BtfKind.TYPEDEF,
  volatile: BtfKind.VOLATILE,
  const: BtfKind.CONST,
  restrict: BtfKind.RESTRICT,
  type_tag: BtfKind.TYPE_TAG,
} as const;

/** A string table that keeps an existing one byte for byte and appends what is new. */
class StringTable {
  readonly #parts: Uint8Array[] = [];
  readonly #index = new Map<string, number>();
  #size = 0;

  constructor(base: Uint8Array) {
    const b = base.length ? base : new Uint8Array([0]);
    this.#parts.push(b);
    this.#size = b.length;
    let start = 0;
    for (let i = 0; i < b.length; i++) {
      if (b[i] !== 0) continue;
      const s = decoder.decode(b.subarray(start, i));
      if (!this.#index.has(s)) this.#index.set(s, start);
      start = i + 1;
    }
    if (!this.#index.has('')) this.#index.set('', 0);
  }
  add(s: string): number {
    let off = this.#index.get(s);
    if (off === undefined) {
      off = this.#size;
      const bytes = encoder.encode(`${s}\0`);
      this.#parts.push(bytes);
      this.#size += bytes.length;
      this.#index.set(s, off);
    }
    return off;
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.#size);
    let at = 0;
    for (const p of this.#parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** C's `int` as a BTF type with id `id`: what probes and small hand-made blobs start from. */
export const intType = (id = 1): BtfType & { kind: 'int' } => ({
  kind: 'int',
  id,
  name: 'int',
  size: 4,
  signed: true,
  char: false,
  bool: false,
  bits: 32,
  offset: 0,
});

/**
 * Encode types (in id order, starting at id 1; `void` excluded) into a raw BTF blob. Pass the
 * original string section as `strings` to keep offsets that other data (line info) points at.
 */
export function encodeBtf(types: readonly BtfType[], strings: Uint8Array = new Uint8Array([0])): Uint8Array {
  const st = new StringTable(strings);
  const words: number[] = [];
  const head = (t: BtfType, kind: number, vlen: number, sizeOrType: number, kindFlag = false) => {
    words.push(st.add(t.name), ((kindFlag ? 1 : 0) << 31) | (kind << 24) | (vlen & 0xffff), sizeOrType >>> 0);
  };
  for (const t of types) {
    switch (t.kind) {
      case 'unkn':
        continue;
      case 'int':
        head(t, BtfKind.INT, 0, t.size);
        words.push(
          (((t.signed ? IntEncoding.SIGNED : 0) |
            (t.char ? IntEncoding.CHAR : 0) |
            (t.bool ? IntEncoding.BOOL : 0)) <<
            24) |
            (t.offset << 16) |
            t.bits,
        );
        break;
      case 'ptr':
        head(t, BtfKind.PTR, 0, t.type);
        break;
      case 'array':
        head(t, BtfKind.ARRAY, 0, 0);
        words.push(t.type, t.indexType, t.nelems);
        break;
      case 'struct':
      case 'union': {
        const bitfields = t.members.some((m) => m.bitSize !== 0);
        head(t, t.kind === 'struct' ? BtfKind.STRUCT : BtfKind.UNION, t.members.length, t.size, bitfields);
        for (const m of t.members)
          words.push(st.add(m.name), m.type, bitfields ? (m.bitSize << 24) | m.bitOffset : m.bitOffset);
        break;
      }
      case 'enum':
        head(t, BtfKind.ENUM, t.values.length, t.size, t.signed);
        for (const v of t.values) words.push(st.add(v.name), Number(BigInt.asUintN(32, v.value)));
        break;
      case 'enum64':
        head(t, BtfKind.ENUM64, t.values.length, t.size, t.signed);
        for (const v of t.values) {
          const u = BigInt.asUintN(64, v.value);
          words.push(st.add(v.name), Number(u & 0xffffffffn), Number(u >> 32n));
        }
        break;
      case 'fwd':
        head(t, BtfKind.FWD, 0, 0, t.union);
        break;
      case 'typedef':
      case 'volatile':
      case 'const':
      case 'restrict':
      case 'type_tag':
        head(t, REF_KINDS[t.kind], 0, t.type);
        break;
      case 'func':
        head(t, BtfKind.FUNC, t.linkage, t.type);
        break;
      case 'func_proto':
        head(t, BtfKind.FUNC_PROTO, t.params.length, t.returnType);
        for (const p of t.params) words.push(st.add(p.name), p.type);
        break;
      case 'var':
        head(t, BtfKind.VAR, 0, t.type);
        words.push(t.linkage);
        break;
      case 'datasec':
        head(t, BtfKind.DATASEC, t.vars.length, t.size);
        for (const v of t.vars) words.push(v.type, v.offset, v.size);
        break;
      case 'float':
        head(t, BtfKind.FLOAT, 0, t.size);
        break;
      case 'decl_tag':
        head(t, BtfKind.DECL_TAG, 0, t.type);
        words.push(t.componentIdx >>> 0);
        break;
    }
  }
  const strBytes = st.bytes();
  const out = new Uint8Array(24 + words.length * 4 + strBytes.length);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, BTF_MAGIC, true);
  dv.setUint8(2, 1);
  dv.setUint8(3, 0);
  dv.setUint32(4, 24, true);
  dv.setUint32(8, 0, true);
  dv.setUint32(12, words.length * 4, true);
  dv.setUint32(16, words.length * 4, true);
  dv.setUint32(20, strBytes.length, true);
  words.forEach((w, i) => {
    dv.setUint32(24 + i * 4, w >>> 0, true);
  });
  out.set(strBytes, 24 + words.length * 4);
  return out;
}
