// TypeScript types from BTF: the type of the value `@bpfkit/btf`'s decodeValue (and so every
// BTF-typed map codec, `btfCodec`) gives for a BTF type. Named structs and unions become exported
// interfaces, declared once; anonymous ones are written inline; typedefs and qualifiers are seen
// through, as the decoder sees through them.
import { type Btf, BtfLookupError, type BtfMember, type BtfType } from '@bpfkit/btf';

const MAX_DEPTH = 32;

/** A property name as TypeScript needs it written. */
export const propName = (s: string): string => (/^[A-Za-z_$][\w$]*$/.test(s) ? s : JSON.stringify(s));

/** `snake_case` (or anything) to `PascalCase`, a valid identifier. */
export const pascal = (s: string): string =>
  s
    .replace(/[^\w$]/g, '_')
    .replace(/(^|_)([a-z0-9])/gi, (_, __, c: string) => c.toUpperCase())
    .replace(/^(\d)/, '_$1');

/** A valid identifier from any name: non-identifier characters become `_`. */
export const identifier = (s: string): string => s.replace(/[^\w$]/g, '_').replace(/^(\d)/, '_$1');

export class TsTypes {
  /** Interface declarations, in the order they were first needed. */
  readonly decls: string[] = [];
  readonly #names = new Map<number, string>();
  readonly #used = new Set<string>();

  constructor(
    readonly btf: Btf,
    /** Prefix of every declared interface name (the object's name, as bpf2go does). */
    readonly prefix: string,
  ) {}

  /** The TypeScript type of a decoded value of BTF type `id`. */
  type(id: number, depth = 0): string {
    if (depth > MAX_DEPTH) throw new BtfLookupError(`type ${id} nests deeper than ${MAX_DEPTH}`);
    const t = this.btf.resolve(id);
    switch (t.kind) {
      case 'int':
        if (t.bool) return 'boolean';
        return t.size <= 4 ? 'number' : 'bigint';
      case 'enum':
      case 'enum64':
        return t.size === 8 ? 'bigint' : 'number';
      case 'ptr':
        return 'bigint';
      case 'float':
        return 'number';
      case 'array': {
        const el = this.btf.resolve(t.type);
        if (el.kind === 'int' && el.size === 1 && (el.char || el.name === 'char')) return 'string';
        const inner = this.type(t.type, depth + 1);
        return /^[\w.]+$/.test(inner) ? `${inner}[]` : `Array<${inner}>`;
      }
      case 'struct':
      case 'union':
        return t.name ? this.#declare(t, depth) : this.#literal(t, depth);
      case 'datasec':
        return `{ ${t.vars.map((v) => `${propName(this.btf.typeById(v.type).name)}: ${this.type(v.type, depth + 1)};`).join(' ')} }`;
      case 'var':
        return this.type(t.type, depth + 1);
      default:
        return 'Uint8Array';
    }
  }

  /** The name of the interface declared for a named struct or union (declared on first use). */
  named(id: number): string {
    const t = this.btf.resolve(id);
    if ((t.kind !== 'struct' && t.kind !== 'union') || !t.name)
      throw new BtfLookupError(`type ${id} is not a named struct or union`);
    return this.#declare(t, 0);
  }

  #declare(t: BtfType & { kind: 'struct' | 'union' }, depth: number): string {
    const have = this.#names.get(t.id);
    if (have) return have;
    let name = `${this.prefix}${pascal(t.name)}`;
    for (let i = 2; this.#used.has(name); i++) name = `${this.prefix}${pascal(t.name)}${i}`;
    this.#used.add(name);
    this.#names.set(t.id, name);
    const fields = this.#fields(t, depth);
    this.decls.push(
      `/** ${t.kind} ${t.name} (${t.size} bytes) */\nexport interface ${name} {\n${fields.map((f) => `  ${f}\n`).join('')}}`,
    );
    return name;
  }

  #literal(t: BtfType & { kind: 'struct' | 'union' }, depth: number): string {
    const fields = this.#fields(t, depth);
    return fields.length ? `{ ${fields.join(' ')} }` : 'Record<string, never>';
  }

  /** `name: type;` per decoded field: anonymous members' fields inline, as the decoder puts them. */
  #fields(t: BtfType & { kind: 'struct' | 'union' }, depth: number): string[] {
    const out: string[] = [];
    const member = (m: BtfMember) => {
      if (m.bitSize) {
        if (m.name) out.push(`${propName(m.name)}: ${m.bitSize <= 32 ? 'number' : 'bigint'};`);
        return;
      }
      if (m.name) {
        out.push(`${propName(m.name)}: ${this.type(m.type, depth + 1)};`);
        return;
      }
      const mt = this.btf.resolve(m.type);
      if (mt.kind === 'struct' || mt.kind === 'union') {
        if (depth > MAX_DEPTH) throw new BtfLookupError(`type ${t.id} nests deeper than ${MAX_DEPTH}`);
        for (const inner of mt.members) member(inner);
      }
    };
    for (const m of t.members) member(m);
    return out;
  }
}
