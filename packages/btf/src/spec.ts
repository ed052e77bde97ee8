import { readFileSync } from 'node:fs';
import { BtfLookupError } from './errors.js';
import type { BtfKindName } from './kinds.js';
import { parseBtf, type RawBtf } from './parse.js';
import type { BtfMember, BtfType, BtfTypeOfKind } from './types.js';

const MAX_CHAIN = 64;

/** A flattened struct/union member: nested anonymous aggregates are expanded, with dotted names for named ones. */
export interface FieldLayout {
  /** Dotted path, e.g. `link_create.perf_event.bpf_cookie`. */
  path: string;
  /** Byte offset from the start of the outermost aggregate. */
  offset: number;
  /** Size in bytes (for a bitfield, the size of its storage unit). */
  size: number;
  /** Bit offset and size for bitfields; 0 otherwise. */
  bitOffset: number;
  bitSize: number;
  type: number;
}

/**
 * Parsed BTF with lookups by id, name and kind, and layout helpers (size, alignment, offsets).
 * Pure: reading the kernel's BTF file is the only I/O, and only in {@link Btf.fromFile}.
 */
export class Btf {
  readonly raw: RawBtf;
  readonly base: Btf | undefined;
  #byName: Map<string, BtfType[]> | undefined;

  constructor(raw: RawBtf, base?: Btf) {
    this.raw = raw;
    this.base = base;
  }

  static parse(bytes: Uint8Array, base?: Btf): Btf {
    const raw = parseBtf(
      bytes,
      base ? { base: { typeCount: base.typeCount, strings: base.raw.strings } } : {},
    );
    return new Btf(raw, base);
  }

  static fromFile(path: string, base?: Btf): Btf {
    return Btf.parse(readFileSync(path), base);
  }

  /** The running kernel's BTF (`/sys/kernel/btf/vmlinux`). Parsed once per process. */
  static kernel(): Btf {
    kernelBtf ??= Btf.fromFile('/sys/kernel/btf/vmlinux');
    return kernelBtf;
  }

  /** Number of type ids covered, including the base's (ids are `0 .. typeCount-1`). */
  get typeCount(): number {
    return this.raw.firstId + this.raw.types.length - (this.base ? 0 : 1);
  }

  /** All types of this blob (not the base's), in id order. */
  *types(): IterableIterator<BtfType> {
    for (const t of this.raw.types) if (t.id !== 0 || this.base) yield t;
  }

  typeById(id: number): BtfType {
    if (this.base && id < this.raw.firstId) return this.base.typeById(id);
    const idx = this.base ? id - this.raw.firstId : id;
    const t = this.raw.types[idx];
    if (!t) throw new BtfLookupError(`BTF type id ${id} does not exist (have ${this.typeCount})`);
    return t;
  }

  /** Every type with this name (in this blob and its base), optionally of one kind. */
  findAll<K extends BtfKindName>(name: string, kind?: K): BtfTypeOfKind<K>[] {
    if (!this.#byName) {
      this.#byName = new Map();
      for (const t of this.raw.types) {
        if (!t.name) continue;
        const list = this.#byName.get(t.name);
        if (list) list.push(t);
        else this.#byName.set(t.name, [t]);
      }
    }
    const own = (this.#byName.get(name) ?? []).filter((t) => !kind || t.kind === kind) as BtfTypeOfKind<K>[];
    return this.base ? [...this.base.findAll(name, kind), ...own] : own;
  }

  /** The single type with this name and kind; throws {@link BtfLookupError} when absent. */
  find<K extends BtfKindName>(name: string, kind: K): BtfTypeOfKind<K> {
    const all = this.findAll(name, kind);
    const t = all[0];
    if (!t) throw new BtfLookupError(`no BTF ${kind} named '${name}'`);
    return t;
  }

  /** Skip typedefs and qualifiers (const, volatile, restrict, type_tag). */
  resolve(id: number): BtfType {
    let t = this.typeById(id);
    for (let i = 0; i < MAX_CHAIN; i++) {
      if (
        t.kind === 'typedef' ||
        t.kind === 'const' ||
        t.kind === 'volatile' ||
        t.kind === 'restrict' ||
        t.kind === 'type_tag'
      )
        t = this.typeById(t.type);
      else return t;
    }
    throw new BtfLookupError(`BTF type ${id}: reference chain is longer than ${MAX_CHAIN} (a loop?)`);
  }

  /** Size in bytes of a type, as the C compiler lays it out. */
  sizeof(id: number, depth = 0): number {
    if (depth > MAX_CHAIN) throw new BtfLookupError(`BTF type ${id}: nesting deeper than ${MAX_CHAIN}`);
    const t = this.resolve(id);
    switch (t.kind) {
      case 'int':
      case 'struct':
      case 'union':
      case 'enum':
      case 'enum64':
      case 'float':
      case 'datasec':
        return t.size;
      case 'ptr':
        return 8;
      case 'array':
        return t.nelems * this.sizeof(t.type, depth + 1);
      case 'var':
        return this.sizeof(t.type, depth + 1);
      default:
        throw new BtfLookupError(`BTF type ${id} (${t.kind} '${t.name}') has no size`);
    }
  }

  /** Alignment in bytes (natural alignment as on x86-64/BPF). */
  alignof(id: number, depth = 0): number {
    if (depth > MAX_CHAIN) throw new BtfLookupError(`BTF type ${id}: nesting deeper than ${MAX_CHAIN}`);
    const t = this.resolve(id);
    switch (t.kind) {
      case 'int':
      case 'enum':
      case 'enum64':
      case 'float':
        return Math.min(t.size, 8) || 1;
      case 'ptr':
        return 8;
      case 'array':
        return this.alignof(t.type, depth + 1);
      case 'struct':
      case 'union': {
        let a = 1;
        for (const m of t.members) a = Math.max(a, this.alignof(m.type, depth + 1));
        return a;
      }
      default:
        return 1;
    }
  }

  /** Find a member of a struct or union by name, searching anonymous members too. */
  member(structId: number, name: string): { member: BtfMember; bitOffset: number } {
    const t = this.resolve(structId);
    if (t.kind !== 'struct' && t.kind !== 'union')
      throw new BtfLookupError(`BTF type ${structId} is not a struct or union`);
    for (const m of t.members) {
      if (m.name === name) return { member: m, bitOffset: m.bitOffset };
      if (!m.name) {
        const inner = this.resolve(m.type);
        if (inner.kind === 'struct' || inner.kind === 'union') {
          try {
            const found = this.member(inner.id, name);
            return { member: found.member, bitOffset: m.bitOffset + found.bitOffset };
          } catch {}
        }
      }
    }
    throw new BtfLookupError(`'${t.name || '(anon)'}' has no member '${name}'`);
  }

  /**
   * Flatten a struct or union into leaf fields with absolute offsets. Anonymous members are
   * expanded in place; named struct/union members are expanded with a dotted prefix.
   * Arrays and scalars are leaves.
   */
  flatten(id: number, prefix = '', baseBits = 0, depth = 0): FieldLayout[] {
    if (depth > MAX_CHAIN) throw new BtfLookupError(`BTF type ${id}: nesting deeper than ${MAX_CHAIN}`);
    const t = this.resolve(id);
    if (t.kind !== 'struct' && t.kind !== 'union')
      throw new BtfLookupError(`BTF type ${id} is not a struct or union`);
    const out: FieldLayout[] = [];
    for (const m of t.members) {
      const bits = baseBits + m.bitOffset;
      const mt = this.resolve(m.type);
      if ((mt.kind === 'struct' || mt.kind === 'union') && m.bitSize === 0) {
        out.push(...this.flatten(mt.id, m.name ? `${prefix}${m.name}.` : prefix, bits, depth + 1));
        continue;
      }
      if (!m.name) continue;
      const size = this.sizeof(m.type);
      if (m.bitSize === 0) {
        out.push({ path: prefix + m.name, offset: bits / 8, size, bitOffset: 0, bitSize: 0, type: m.type });
      } else {
        const unitBits = size * 8;
        const unitStart = Math.floor(bits / unitBits) * unitBits;
        out.push({
          path: prefix + m.name,
          offset: unitStart / 8,
          size,
          bitOffset: bits - unitStart,
          bitSize: m.bitSize,
          type: m.type,
        });
      }
    }
    return out;
  }

  /** The enumerators of a named enum (enum or enum64). */
  enumValues(name: string): Map<string, bigint> {
    const t = this.findAll(name, 'enum')[0] ?? this.findAll(name, 'enum64')[0];
    if (!t) throw new BtfLookupError(`no BTF enum named '${name}'`);
    return new Map(t.values.map((v) => [v.name, v.value]));
  }
}

let kernelBtf: Btf | undefined;
