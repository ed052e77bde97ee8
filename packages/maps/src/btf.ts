// Codecs derived from BTF at run time: a map created from an object decodes its keys and values
// as the C types say (see @bpfkit/btf decodeValue / encodeValue).
import { type Btf, decodeValue, encodeValue } from '@bpfkit/btf';
import type { Codec } from './codec.js';

/**
 * A codec for BTF type `id` of `btf`: structs decode to objects keyed by member name, integers
 * as the C type says (64-bit as `bigint`), char arrays as strings. Absent fields encode as zero.
 */
export function btfCodec(btf: Btf, id: number): Codec<unknown> {
  const t = btf.resolve(id);
  const name = t.name || t.kind;
  const size = btf.sizeof(id);
  return {
    name,
    size,
    align: btf.alignof(id),
    encode: (view, offset, value) => {
      new Uint8Array(view.buffer, view.byteOffset + offset, size).fill(0); // absent fields are zero
      encodeValue(btf, id, view, offset, value, name);
    },
    decode: (view, offset) => decodeValue(btf, id, view, offset),
  };
}

/** A codec that does not fit the BTF type it is meant to read: names both and where they differ. */
export class CodecMismatchError extends TypeError {
  override name = 'CodecMismatchError';
}

const INT_CODEC = /^([ui])(8|16|32|64)$/;

/**
 * Check that `codec` reads BTF type `id` of `btf` as laid out: the same size; an integer codec
 * (`u32`, `i64`, …) for an integer, enum or pointer of its width (signedness is the caller's
 * choice); a `struct()` codec's fields at the offsets of the C struct's members of those names.
 * `what` names the thing in the error ("map 'counts' value").
 */
export function checkCodec(codec: Codec<unknown>, btf: Btf, id: number, what: string): void {
  const t = btf.resolve(id);
  const cname = `${t.kind}${t.name ? ` ${t.name}` : ''}`;
  const size = btf.sizeof(id);
  const fail = (why: string) => {
    throw new CodecMismatchError(`${what}: codec ${codec.name} does not fit the BTF type ${cname}: ${why}`);
  };
  if (codec.size !== size) fail(`it is ${codec.size} bytes, the type ${size}`);
  if (INT_CODEC.test(codec.name) && !['int', 'enum', 'enum64', 'ptr'].includes(t.kind))
    fail('an integer codec for a type that is not an integer');
  const offsets = (codec as { offsets?: Record<string, number> }).offsets;
  if (!offsets) return;
  if (t.kind !== 'struct' && t.kind !== 'union') fail('a struct codec for a type that is not a struct');
  const members = new Map(
    (t as { members: { name: string; bitOffset: number }[] }).members.map((m) => [m.name, m]),
  );
  for (const [field, off] of Object.entries(offsets)) {
    const m = members.get(field);
    if (!m) fail(`field '${field}' is not a member (members: ${[...members.keys()].join(', ')})`);
    else if (m.bitOffset !== off * 8)
      fail(`field '${field}' is at byte ${off}, the member at byte ${m.bitOffset / 8}`);
  }
}
