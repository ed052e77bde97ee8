// A small BTF writer for tests: builds raw BTF blobs type by type (strings deduplicated).
export class BlobWriter {
  strings = [0];
  types = [];
  #strOff = new Map([['', 0]]);

  /** The offset of `s` in the string section, adding it once. */
  str(s) {
    let off = this.#strOff.get(s);
    if (off === undefined) {
      off = this.strings.length;
      this.strings.push(...new TextEncoder().encode(s), 0);
      this.#strOff.set(s, off);
    }
    return off;
  }

  /** Append a type: its name, kind number, vlen, size or type, and the words that follow its header. */
  type(name, kind, vlen, sizeOrType, extra = [], kindFlag = false) {
    this.types.push(this.str(name), ((kindFlag ? 1 : 0) << 31) | (kind << 24) | vlen, sizeOrType, ...extra);
    return this;
  }

  build() {
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
