// Where the fields of a map's key and value are, from BTF: each named field becomes a reader
// over the raw bytes of a batch, so a scrape decodes in place without building objects.
import type { Btf } from '@bpfkit/btf';

/** A raw field value: integers up to 2^53 as numbers (bigger ones as bigint), arrays as bytes. */
export type RawValue = number | bigint | Uint8Array;

export interface Field {
  readonly path: string;
  readonly offset: number;
  readonly size: number;
  readonly kind: 'int' | 'chars' | 'bytes';
  readonly signed: boolean;
}

/** A type's fields: a struct's (flattened, dotted paths), or a scalar's as one field named `key`/`value`. */
export function fieldsOf(btf: Btf, typeId: number, scalarName: string): Field[] {
  const t = btf.resolve(typeId);
  if (t.kind !== 'struct' && t.kind !== 'union') return [scalarField(btf, typeId, scalarName, 0)];
  const out: Field[] = [];
  for (const f of btf.flatten(typeId)) {
    if (f.bitSize !== 0) continue; // bitfields are not labels
    try {
      out.push(scalarField(btf, f.type, f.path, f.offset));
    } catch {
      // pointers and other kinds cannot be labels; naming one is an error at lookup
    }
  }
  return out;
}

function scalarField(btf: Btf, typeId: number, path: string, offset: number): Field {
  const t = btf.resolve(typeId);
  if (t.kind === 'int' || t.kind === 'enum' || t.kind === 'enum64')
    return { path, offset, size: t.size, kind: 'int', signed: t.signed };
  if (t.kind === 'array') {
    const elem = btf.resolve(t.type);
    const size = btf.sizeof(typeId);
    const chars = elem.kind === 'int' && elem.size === 1 && (elem.char || elem.name === 'char');
    return { path, offset, size, kind: chars ? 'chars' : 'bytes', signed: false };
  }
  throw new TypeError(`field '${path}' is a ${t.kind}: labels and values read integers and arrays`);
}

/** Fields given by hand (for maps without BTF): `{ path, offset, size, kind }`. */
export function findField(fields: readonly Field[], path: string, what: string): Field {
  const f = fields.find((x) => x.path === path);
  if (!f)
    throw new TypeError(
      `${what}: no field '${path}' (fields: ${fields.map((x) => x.path).join(', ') || 'none'})`,
    );
  return f;
}

/** Read field `f` of the entry at `base` in `bytes` (with `dv` the same memory as a DataView). */
export function readField(f: Field, bytes: Uint8Array, dv: DataView, base: number): RawValue {
  const o = base + f.offset;
  if (f.kind !== 'int') return bytes.subarray(o, o + f.size);
  return f.size === 8 ? readU64(dv, o, f.signed) : readNumber(f, dv, base);
}

/** A 64-bit integer as a number when it is exact, else a bigint. */
export function readU64(dv: DataView, o: number, signed = false): number | bigint {
  const lo = dv.getUint32(o, true);
  const hi = dv.getUint32(o + 4, true);
  if (hi < 0x200000) return hi * 0x100000000 + lo;
  return signed ? dv.getBigInt64(o, true) : dv.getBigUint64(o, true);
}

/** An integer field as a JS number (counter values, bucket indexes). */
export function readNumber(f: Field, dv: DataView, base: number): number {
  const o = base + f.offset;
  switch (f.size) {
    case 1:
      return f.signed ? dv.getInt8(o) : dv.getUint8(o);
    case 2:
      return f.signed ? dv.getInt16(o, true) : dv.getUint16(o, true);
    case 4:
      return f.signed ? dv.getInt32(o, true) : dv.getUint32(o, true);
    default:
      return f.signed
        ? dv.getInt32(o + 4, true) * 0x100000000 + dv.getUint32(o, true)
        : dv.getUint32(o + 4, true) * 0x100000000 + dv.getUint32(o, true);
  }
}
