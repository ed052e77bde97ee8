// Live global variables: a `.data`, `.bss` or `.rodata` variable of a loaded collection, read and
// written after load, as cilium/ebpf's Variable does. The global data maps are created mmap-able
// (BPF_F_MMAPABLE, as libbpf does, where the kernel can), so reads and writes go straight to the
// memory programs use; on a kernel without mmap-able arrays they go through map lookups and updates.
import { type Btf, decodeValue, encodeValue } from '@bpfkit/btf';
import type { BpfMap } from '@bpfkit/maps';
import { MapFlags } from '@bpfkit/sys';
import type { Collection } from './collection.js';
import type { ObjectVariable } from './object/object.js';

const KEY0 = new Uint8Array(4);
/** One mapping per data map, shared by its variables (kept alive by them). */
const mappings = new WeakMap<BpfMap<unknown, unknown>, ArrayBuffer>();

function mapping(map: BpfMap<unknown, unknown>, readonly: boolean): ArrayBuffer | undefined {
  if (!(map.flags & MapFlags.MMAPABLE)) return undefined;
  let buf = mappings.get(map);
  if (!buf) {
    buf = map.mmap({ writable: !readonly }).buffer;
    mappings.set(map, buf);
  }
  return buf;
}

/** One global variable of a loaded collection, typed by its BTF. */
export class Variable<T = unknown> {
  readonly name: string;
  /** The data section (and map) that holds it: `.data`, `.bss`, `.rodata`, `.data.custom`, ... */
  readonly section: string;
  readonly offset: number;
  readonly size: number;
  /** `.rodata` variables are read-only after load (the map is frozen). */
  readonly readonly: boolean;
  /** True when reads and writes go to the map's mapped memory (no syscall). */
  readonly mapped: boolean;
  readonly #btf: Btf;
  readonly #typeId: number;
  readonly #map: BpfMap<unknown, unknown>;
  readonly #view: DataView | undefined;

  constructor(map: BpfMap<unknown, unknown>, btf: Btf, v: ObjectVariable, readonly = false) {
    this.name = v.name;
    this.section = v.section;
    this.offset = v.offset;
    this.size = v.size;
    this.readonly = readonly;
    this.#btf = btf;
    this.#typeId = v.typeId;
    this.#map = map;
    const buf = mapping(map, readonly);
    if (buf) this.#view = new DataView(buf, v.offset, v.size);
    this.mapped = this.#view !== undefined;
  }

  /** The current value, as its BTF type decodes (64-bit integers as bigint, char arrays as strings). */
  get(): T {
    return decodeValue(this.#btf, this.#typeId, this.#view ?? this.#read()) as T;
  }

  /**
   * Write the value. Mapped: in place, at once visible to programs (not atomic for values wider
   * than a machine word). Otherwise the section is read, patched and written back (not atomic
   * either against programs writing the same section).
   */
  set(value: T): void {
    if (this.readonly)
      throw new TypeError(`'${this.name}' is in ${this.section}, which is read-only after load`);
    if (this.#view) {
      encodeValue(this.#btf, this.#typeId, this.#view, 0, value, `'${this.name}'`);
      return;
    }
    const all = this.#section();
    encodeValue(
      this.#btf,
      this.#typeId,
      new DataView(all.buffer, all.byteOffset + this.offset, this.size),
      0,
      value,
      `'${this.name}'`,
    );
    this.#map.setBytes(KEY0, all);
  }

  /** A copy of the variable's bytes. */
  bytes(): Uint8Array {
    const v = this.#view ?? this.#read();
    return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  }

  #section(): Uint8Array {
    const all = this.#map.getBytes(KEY0);
    if (!all) throw new RangeError(`map '${this.section}' has no element 0`);
    return all;
  }

  #read(): DataView {
    const all = this.#section();
    return new DataView(all.buffer, all.byteOffset + this.offset, this.size);
  }
}

/**
 * Every global variable of a loaded collection (`.data`, `.bss`, `.rodata` and custom data
 * sections), by name. Variables of maps the caller supplied (`opts.maps`) are included as well:
 * they are read through those maps.
 */
export function collectionVariables(c: Collection): Record<string, Variable> {
  const btf = c.object.btf;
  const out: Record<string, Variable> = {};
  if (!btf) return out;
  for (const v of c.object.variables.values()) {
    const map = c.maps[v.section];
    const def = c.object.maps.get(v.section);
    if (!map || !def) continue;
    out[v.name] = new Variable(map, btf, v, def.readonly);
  }
  return out;
}
