// A small BTF writer for tests: builds blobs type by type.
export class BlobWriter {
  strings: number[] = [0];
  types: number[] = [];
  #strOff = new Map<string, number>([['', 0]]);

  str(s: string): number {
    let off = this.#strOff.get(s);
    if (off === undefined) {
      off = this.strings.length;
      this.strings.push(...new TextEncoder().encode(s), 0);
      this.#strOff.set(s, off);
    }
    return off;
  }
  type(
    name: string,
    kind: number,
    vlen: number,
    sizeOrType: number,
    extra: number[] = [],
    kindFlag = false,
  ): this {
    this.types.push(this.str(name), ((kindFlag ? 1 : 0) << 31) | (kind << 24) | vlen, sizeOrType, ...extra);
    return this;
  }
  build(): Uint8Array {
    const typeLen = this.types.length * 4;
    const out = new Uint8Array(24 + typeLen + this.strings.length);
    const dv = new DataView(out.buffer);
    dv.setUint16(0, 0xeb9f, true);
    dv.setUint8(2, 1);
    dv.setUint32(4, 24, true);
    dv.setUint32(8, 0, true);
    dv.setUint32(12, typeLen, true);
    dv.setUint32(16, typeLen, true);
    dv.setUint32(20, this.strings.length, true);
    this.types.forEach((v, i) => {
      dv.setUint32(24 + i * 4, v >>> 0, true);
    });
    out.set(this.strings, 24 + typeLen);
    return out;
  }
}
