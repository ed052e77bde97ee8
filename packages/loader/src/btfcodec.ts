// Codecs derived from BTF at run time: a map created from an object decodes its keys and values
// as the C types say (see @bpfkit/btf decodeValue / encodeValue).
import { type Btf, decodeValue, encodeValue } from '@bpfkit/btf';
import type { Codec } from '@bpfkit/maps';

/** A `@bpfkit/maps` codec for BTF type `id`. */
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
