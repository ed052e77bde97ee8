import { readFileSync } from 'node:fs';
import { BtfLookupError } from './errors.js';
import { BtfKind, type BtfKindName } from './kinds.js';
import { parseBtf, type RawBtf } from './parse.js';
import type { BtfMember, BtfType, BtfTypeOfKind } from './types.js';

const MAX_CHAIN = 64;
/**
 * How deep aggregates, arrays and variables may nest: the kernel's own limit
 * (`MAX_RESOLVE_DEPTH` in kernel/bpf/btf.c), so BTF deeper than this is BTF the kernel refuses.
 */
export const MAX_BTF_DEPTH = 32;
/** Largest type size: BTF sizes are u32, and the kernel refuses an array that overflows one. */
const MAX_SIZE = 0xffffffff;
/**
 * Most members {@link Btf.flatten} walks (leaves and nested aggregates). Every member of a
 * nested aggregate is expanded where it is used, so a DAG of unions (each holding two members
 * of the next) has 2^depth of them; real kernel structs stay far below this.
 */
export const MAX_FLAT_FIELDS = 1 << 16;

/** A memoized layout: the value and how deep the type nests below it. */
interface Layout {
  value: number;
  height: number;
}
const IN_PROGRESS: Layout = { value: -1, height: -1 };
/** Types chained by a hash of their name: `heads[hash & mask]` is the first index, `next[i]` the one after `i`. */
interface NameIndex {
  heads: Int32Array;
  next: Int32Array;
  mask: number;
}
const utf8 = new TextEncoder();
/** The name index of every kind (kind numbers are 0..31). */
const ANY_KIND = -1;
/** FNV-1a over `bytes[from..]`, stopping at a NUL or `to`. */
function hashBytes(bytes: Uint8Array, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) {
    const b = bytes[i]!;
    if (b === 0) break;
    h = Math.imul(h ^ b, 0x01000193);
  }
  return h >>> 0;
}
const kindNumbers = Object.fromEntries(
  Object.entries(BtfKind).map(([k, v]) => [k.toLowerCase(), v]),
) as Record<BtfKindName, number>;

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
  /** Type indices by name, filled as names are looked up (no type is decoded to find them). */
  readonly #byName = new Map<string, number[]>();
  /** Types by a hash of their name, per kind (or of every kind): built on the first lookup. */
  readonly #names = new Map<number, NameIndex>();
  readonly #sizes = new Map<number, Layout>();
  readonly #aligns = new Map<number, Layout>();

  constructor(raw: RawBtf, base?: Btf) {
    this.raw = raw;
    this.base = base;
  }

  /**
   * Parse a BTF blob. `lazy` indexes it and decodes each type when first reached (as the
   * kernel's BTF is read: CO-RE and attach resolution touch a few hundred of its ~100 000 types).
   */
  static parse(bytes: Uint8Array, base?: Btf, opts: { lazy?: boolean } = {}): Btf {
    const raw = parseBtf(bytes, {
      ...(base ? { base: { typeCount: base.typeCount, strings: base.raw.strings } } : {}),
      lazy: opts.lazy ?? false,
    });
    return new Btf(raw, base);
  }

  static fromFile(path: string, base?: Btf, opts: { lazy?: boolean } = {}): Btf {
    return Btf.parse(readFileSync(path), base, opts);
  }

  /**
   * The running kernel's BTF (`/sys/kernel/btf/vmlinux`): read once per process and indexed
   * lazily, so a lookup decodes only the types it reaches.
   */
  static kernel(): Btf {
    kernelBtf ??= Btf.fromFile('/sys/kernel/btf/vmlinux', undefined, { lazy: true });
    return kernelBtf;
  }

  /** Number of type ids covered, including the base's (ids are `0 .. typeCount-1`). */
  get typeCount(): number {
    return this.raw.firstId + this.raw.count - (this.base ? 0 : 1);
  }

  /** All types of this blob (not the base's), in id order. */
  *types(): IterableIterator<BtfType> {
    for (let i = this.base ? 0 : 1; i < this.raw.count; i++) yield this.raw.type(i);
  }

  typeById(id: number): BtfType {
    if (this.base && id < this.raw.firstId) return this.base.typeById(id);
    const idx = this.base ? id - this.raw.firstId : id;
    if (!(idx >= 0 && idx < this.raw.count))
      throw new BtfLookupError(`BTF type id ${id} does not exist (have ${this.typeCount})`);
    return this.raw.type(idx);
  }

  /** Every type with this name (in this blob and its base), optionally of one kind. */
  findAll<K extends BtfKindName>(name: string, kind?: K): BtfTypeOfKind<K>[] {
    // With a kind and no index of every type yet, only that kind's types are indexed (a CO-RE
    // load asks for structs, unions, enums: a small part of the kernel's ~10^5 names).
    const want = kind === undefined ? ANY_KIND : kindNumbers[kind];
    const indexKind = want !== ANY_KIND && !this.#names.has(ANY_KIND) ? want : ANY_KIND;
    const key = `${indexKind}:${name}`;
    let ids = this.#byName.get(key);
    if (ids === undefined) {
      ids = this.#indicesNamed(name, indexKind);
      this.#byName.set(key, ids);
    }
    const own: BtfTypeOfKind<K>[] = [];
    for (const i of ids)
      if (want === ANY_KIND || this.raw.kinds[i] === want) own.push(this.raw.type(i) as BtfTypeOfKind<K>);
    return this.base ? [...this.base.findAll(name, kind), ...own] : own;
  }

  /**
   * Indices of this blob's types named `name` (of kind `kind`, or any), in order, found without
   * decoding any type or name: a hash of each type's name bytes (taken straight from the string
   * table) chains the types per bucket, and a candidate matches when its bytes equal `name` up
   * to a NUL.
   */
  #indicesNamed(name: string, kind: number): number[] {
    if (!name || name.includes('\0')) return [];
    const needle = utf8.encode(name);
    const { heads, next, mask } = this.#nameIndex(kind);
    const out: number[] = [];
    for (let i = heads[hashBytes(needle, 0, needle.length) & mask]!; i >= 0; i = next[i]!)
      if (this.#nameEquals(i, needle)) out.push(i);
    return out;
  }

  /** The string table holding name offset `off`, and the offset within it. */
  #stringAt(off: number): [Uint8Array, number] {
    const baseLen = this.base ? this.base.raw.strings.length : 0;
    return off < baseLen ? [this.base!.raw.strings, off] : [this.raw.strings, off - baseLen];
  }

  #nameEquals(index: number, needle: Uint8Array): boolean {
    const [table, at] = this.#stringAt(this.raw.nameOffs[index]!);
    if (at + needle.length >= table.length || table[at + needle.length] !== 0) return false;
    for (let j = 0; j < needle.length; j++) if (table[at + j] !== needle[j]) return false;
    return true;
  }

  /** Built on the first lookup of a kind (or of any kind): one pass over the name offsets, no string decoded. */
  #nameIndex(kind: number): NameIndex {
    let index = this.#names.get(kind);
    if (!index) {
      const { nameOffs, kinds, count } = this.raw;
      const first = this.base ? 0 : 1;
      // the types to index: every one, or those of `kind`, found by a native scan of the kinds
      // (JS touches only them: this runs once, cold, over up to ~10^5 types)
      const members: number[] = [];
      if (kind === ANY_KIND) for (let i = first; i < count; i++) members.push(i);
      else for (let i = kinds.indexOf(kind, first); i >= 0; i = kinds.indexOf(kind, i + 1)) members.push(i);
      const buckets = 2 ** Math.ceil(Math.log2(Math.max(2, members.length * 2)));
      const heads = new Int32Array(buckets).fill(-1);
      const next = new Int32Array(count).fill(-1);
      const mask = buckets - 1;
      // inserted from the last type down, so every chain lists indices in increasing order;
      // the hash (FNV-1a, as hashBytes) is inlined
      const own = this.raw.strings;
      const baseStrings = this.base?.raw.strings;
      const baseLen = baseStrings ? baseStrings.length : 0;
      for (let m = members.length - 1; m >= 0; m--) {
        const i = members[m]!;
        let at = nameOffs[i]!;
        if (at === 0) continue;
        let table = own;
        if (at < baseLen) table = baseStrings!;
        else at -= baseLen;
        const end = table.length;
        let h = 0x811c9dc5;
        for (let j = at; j < end; j++) {
          const b = table[j]!;
          if (b === 0) break;
          h = Math.imul(h ^ b, 0x01000193);
        }
        const slot = (h >>> 0) & mask;
        next[i] = heads[slot]!;
        heads[slot] = i;
      }
      index = { heads, next, mask };
      this.#names.set(kind, index);
    }
    return index;
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

  /**
   * Size in bytes of a type, as the C compiler lays it out. Memoized per type id; throws
   * {@link BtfLookupError} for a type that has no size, nests deeper than {@link MAX_BTF_DEPTH}
   * or contains itself.
   */
  sizeof(id: number): number {
    return this.#size(id, 0).value;
  }

  #size(id: number, depth: number): Layout {
    const t = this.resolve(id);
    const have = this.#sizes.get(t.id);
    if (have === IN_PROGRESS) throw new BtfLookupError(`BTF type ${id} contains itself (a loop)`);
    if (have) return this.#deep(id, have, depth);
    if (depth > MAX_BTF_DEPTH) throw tooDeep(id);
    this.#sizes.set(t.id, IN_PROGRESS);
    let out: Layout;
    try {
      switch (t.kind) {
        case 'int':
        case 'struct':
        case 'union':
        case 'enum':
        case 'enum64':
        case 'float':
        case 'datasec':
          out = { value: t.size, height: 0 };
          break;
        case 'ptr':
          out = { value: 8, height: 0 };
          break;
        case 'array': {
          const el = this.#size(t.type, depth + 1);
          out = { value: t.nelems * el.value, height: el.height + 1 };
          if (out.value > MAX_SIZE)
            throw new BtfLookupError(`BTF array ${id} of ${t.nelems} elements is larger than 4 GiB`);
          break;
        }
        case 'var': {
          const v = this.#size(t.type, depth + 1);
          out = { value: v.value, height: v.height + 1 };
          break;
        }
        default:
          throw new BtfLookupError(`BTF type ${id} (${t.kind} '${t.name}') has no size`);
      }
    } catch (e) {
      this.#sizes.delete(t.id);
      throw e;
    }
    this.#sizes.set(t.id, out);
    return this.#deep(id, out, depth);
  }

  /** A memoized layout reached at `depth`: refused when the whole nesting is deeper than the kernel allows. */
  #deep(id: number, l: Layout, depth: number): Layout {
    if (depth + l.height > MAX_BTF_DEPTH) throw tooDeep(id);
    return l;
  }

  /** Alignment in bytes (natural alignment as on x86-64/BPF). Memoized per type id, like {@link sizeof}. */
  alignof(id: number): number {
    return this.#align(id, 0).value;
  }

  #align(id: number, depth: number): Layout {
    const t = this.resolve(id);
    const have = this.#aligns.get(t.id);
    if (have === IN_PROGRESS) throw new BtfLookupError(`BTF type ${id} contains itself (a loop)`);
    if (have) return this.#deep(id, have, depth);
    if (depth > MAX_BTF_DEPTH) throw tooDeep(id);
    this.#aligns.set(t.id, IN_PROGRESS);
    let out: Layout;
    try {
      switch (t.kind) {
        case 'int':
        case 'enum':
        case 'enum64':
        case 'float':
          out = { value: Math.min(t.size, 8) || 1, height: 0 };
          break;
        case 'ptr':
          out = { value: 8, height: 0 };
          break;
        case 'array': {
          const el = this.#align(t.type, depth + 1);
          out = { value: el.value, height: el.height + 1 };
          break;
        }
        case 'struct':
        case 'union': {
          out = { value: 1, height: 0 };
          for (const m of t.members) {
            const a = this.#align(m.type, depth + 1);
            out = { value: Math.max(out.value, a.value), height: Math.max(out.height, a.height + 1) };
          }
          break;
        }
        default:
          out = { value: 1, height: 0 };
      }
    } catch (e) {
      this.#aligns.delete(t.id);
      throw e;
    }
    this.#aligns.set(t.id, out);
    return this.#deep(id, out, depth);
  }

  /**
   * Find a member of a struct or union by name, searching anonymous members too (depth first,
   * in member order, as C does). Each anonymous aggregate is searched once, so a DAG of them
   * costs linear time; nesting deeper than {@link MAX_BTF_DEPTH} or a loop is a {@link BtfLookupError}.
   */
  member(structId: number, name: string): { member: BtfMember; bitOffset: number } {
    const t = this.resolve(structId);
    if (t.kind !== 'struct' && t.kind !== 'union')
      throw new BtfLookupError(`BTF type ${structId} is not a struct or union`);
    const found = this.#member(t, name, new Set(), 0);
    if (!found) throw new BtfLookupError(`'${t.name || '(anon)'}' has no member '${name}'`);
    return found;
  }

  #member(
    t: BtfType & { kind: 'struct' | 'union' },
    name: string,
    searched: Set<number>,
    depth: number,
  ): { member: BtfMember; bitOffset: number } | undefined {
    if (depth > MAX_BTF_DEPTH) throw tooDeep(t.id);
    searched.add(t.id);
    for (const m of t.members) {
      if (m.name === name) return { member: m, bitOffset: m.bitOffset };
      if (m.name) continue;
      const inner = this.resolve(m.type);
      if (inner.kind !== 'struct' && inner.kind !== 'union') continue;
      // Searched before (a DAG) or being searched (a loop): the name is not in there.
      if (searched.has(inner.id)) continue;
      const found = this.#member(inner, name, searched, depth + 1);
      if (found) return { member: found.member, bitOffset: m.bitOffset + found.bitOffset };
    }
    return undefined;
  }

  /**
   * Flatten a struct or union into leaf fields with absolute offsets. Anonymous members are
   * expanded in place; named struct/union members are expanded with a dotted prefix.
   * Arrays and scalars are leaves. Throws {@link BtfLookupError} past {@link MAX_BTF_DEPTH}
   * levels, on a loop, or past {@link MAX_FLAT_FIELDS} fields.
   */
  flatten(id: number, prefix = '', baseBits = 0): FieldLayout[] {
    const out: FieldLayout[] = [];
    this.#flatten(id, prefix, baseBits, 0, out, new Set(), { left: MAX_FLAT_FIELDS });
    return out;
  }

  #flatten(
    id: number,
    prefix: string,
    baseBits: number,
    depth: number,
    out: FieldLayout[],
    open: Set<number>,
    budget: { left: number },
  ): void {
    if (depth > MAX_BTF_DEPTH) throw tooDeep(id);
    const t = this.resolve(id);
    if (t.kind !== 'struct' && t.kind !== 'union')
      throw new BtfLookupError(`BTF type ${id} is not a struct or union`);
    if (open.has(t.id)) throw new BtfLookupError(`BTF type ${id} contains itself (a loop)`);
    open.add(t.id);
    for (const m of t.members) {
      if (--budget.left < 0)
        throw new BtfLookupError(`BTF type ${id} expands to more than ${MAX_FLAT_FIELDS} members`);
      const bits = baseBits + m.bitOffset;
      const mt = this.resolve(m.type);
      if ((mt.kind === 'struct' || mt.kind === 'union') && m.bitSize === 0) {
        const inner = m.name ? `${prefix}${m.name}.` : prefix;
        this.#flatten(mt.id, inner, bits, depth + 1, out, open, budget);
        continue;
      }
      if (!m.name) continue;
      const size = this.sizeof(m.type);
      if (m.bitSize === 0) {
        out.push({ path: prefix + m.name, offset: bits / 8, size, bitOffset: 0, bitSize: 0, type: m.type });
      } else {
        const unitBits = size * 8;
        if (unitBits === 0)
          throw new BtfLookupError(`bitfield '${prefix}${m.name}' of BTF type ${id} has a zero-size type`);
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
    open.delete(t.id);
  }

  /** The enumerators of a named enum (enum or enum64). */
  enumValues(name: string): Map<string, bigint> {
    const t = this.findAll(name, 'enum')[0] ?? this.findAll(name, 'enum64')[0];
    if (!t) throw new BtfLookupError(`no BTF enum named '${name}'`);
    return new Map(t.values.map((v) => [v.name, v.value]));
  }
}

let kernelBtf: Btf | undefined;

const tooDeep = (id: number) =>
  new BtfLookupError(`BTF type ${id}: nesting deeper than ${MAX_BTF_DEPTH} (the kernel's limit)`);
