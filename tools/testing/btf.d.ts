export class BlobWriter {
  strings: number[];
  types: number[];
  str(s: string): number;
  type(
    name: string,
    kind: number,
    vlen: number,
    sizeOrType: number,
    extra?: number[],
    kindFlag?: boolean,
  ): this;
  build(): Uint8Array;
}
