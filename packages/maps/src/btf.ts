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
