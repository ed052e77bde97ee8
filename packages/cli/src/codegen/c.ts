// C from BTF: a compilable header of every type (`bpfkit btf dump … --format c`, what
// `bpftool btf dump … format c` writes as vmlinux.h). Types come out in an order C accepts: a
// type embedded in another (a member, an array element, through typedefs) is defined first; one
// reached only through a pointer may come later, after a forward declaration. Anonymous structs,
// unions and enums are written inline where they are used; bitfields, padding the compiler would
// not insert on its own and packed layouts are written out so every offset is the BTF's.
import type { Btf, BtfRef, BtfType } from '@bpfkit/btf';

type Composite = BtfType & { kind: 'struct' | 'union' };
/** Ordering and emission states of a type. */
const Order = { None: 0, Ordering: 1, Ordered: 2 } as const;
const Emit = { None: 0, Emitting: 1, Emitted: 2 } as const;

const PAD_TYPES: readonly [string, number][] = [
  ['long', 64],
  ['int', 32],
  ['short', 16],
  ['char', 8],
];
const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;
const MAX_DEPTH = 64;

export interface CHeaderOptions {
  /** Include guard (default `__VMLINUX_H__`). */
  guard?: string;
  /** Wrap the types in clang's preserve_access_index pragma, for CO-RE (default true). */
  preserveAccessIndex?: boolean;
}

/** The whole of `btf` as a C header. */
export function btfToC(btf: Btf, opts: CHeaderOptions = {}): string {
  const d = new CDump(btf);
  const guard = opts.guard ?? '__VMLINUX_H__';
  const first = btf.base ? btf.base.typeCount : 1;
  for (let id = first; id < btf.typeCount; id++) d.dumpType(id);
  const body = d.out.join('');
  // the pragma only around records for it to apply to (clang warns of an unused one)
  const pai = (opts.preserveAccessIndex ?? true) && /\b(struct|union)\b[^;()]*\{/.test(body);
  return [
    `#ifndef ${guard}\n#define ${guard}\n\n`,
    pai
      ? '#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n#endif\n\n'
      : '',
    body,
    pai ? '#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute pop\n#endif\n\n' : '',
    `#endif /* ${guard} */\n`,
  ].join('');
}

/** The dump of one BTF: per-type ordering and emission state, and names made unique. */
class CDump {
  readonly out: string[] = [];
  readonly #order: Uint8Array;
  readonly #emit: Uint8Array;
  readonly #fwdEmitted: Uint8Array;
  readonly #referenced: Uint8Array;
  readonly #names = new Map<number, string>();
  /** struct/union/enum/fwd tags, and typedef names with enumerators: occurrences so far. */
  readonly #tagCount = new Map<string, number>();
  readonly #identCount = new Map<string, number>();
  readonly #aligns = new Map<number, number>();
  #queue: number[] = [];

  constructor(readonly btf: Btf) {
    const n = btf.typeCount;
    this.#order = new Uint8Array(n);
    this.#emit = new Uint8Array(n);
    this.#fwdEmitted = new Uint8Array(n);
    this.#referenced = new Uint8Array(n);
    this.#order[0] = Order.Ordered;
    this.#emit[0] = Emit.Emitted;
    const first = btf.base ? btf.base.typeCount : 1;
    for (let id = first; id < n; id++) this.#markReferenced(btf.typeById(id));
  }

  #t(id: number): BtfType {
    return this.btf.typeById(id);
  }

  #markReferenced(t: BtfType): void {
    const ref = (id: number) => {
      this.#referenced[id] = 1;
    };
    switch (t.kind) {
      case 'ptr':
      case 'typedef':
      case 'const':
      case 'volatile':
      case 'restrict':
      case 'type_tag':
      case 'func':
      case 'var':
      case 'decl_tag':
        ref(t.type);
        break;
      case 'array':
        ref(t.type);
        ref(t.indexType);
        break;
      case 'struct':
      case 'union':
        for (const m of t.members) ref(m.type);
        break;
      case 'func_proto':
        for (const p of t.params) ref(p.type);
        break;
      case 'datasec':
        for (const v of t.vars) ref(v.type);
        break;
      default:
    }
  }

  dumpType(id: number): void {
    this.#queue = [];
    this.#orderType(id, false, 0);
    for (const q of this.#queue) this.#emitType(q, 0);
  }

  /**
   * Topological order: 1 when `id` must be fully defined before whatever reached it (a strong
   * link), 0 when a forward declaration is enough (reached through a pointer and named).
   */
  #orderType(id: number, throughPtr: boolean, depth: number): number {
    if (this.#order[id] === Order.Ordered) return 1;
    if (depth > MAX_DEPTH) throw new Error(`BTF type ${id} nests deeper than ${MAX_DEPTH}`);
    const t = this.#t(id);
    if (this.#order[id] === Order.Ordering) {
      if ((t.kind === 'struct' || t.kind === 'union') && throughPtr && t.name) return 0;
      throw new Error(`BTF type ${id} is part of a type cycle C cannot express`);
    }
    switch (t.kind) {
      case 'int':
      case 'float':
        this.#order[id] = Order.Ordered;
        return 0;
      case 'ptr': {
        const r = this.#orderType(t.type, true, depth + 1);
        this.#order[id] = Order.Ordered;
        return r;
      }
      case 'array':
        return this.#orderType(t.type, false, depth + 1);
      case 'struct':
      case 'union':
        if (throughPtr && t.name) return 0;
        this.#order[id] = Order.Ordering;
        for (const m of t.members) this.#orderType(m.type, false, depth + 1);
        if (t.name) this.#queue.push(id);
        this.#order[id] = Order.Ordered;
        return 1;
      case 'enum':
      case 'enum64':
      case 'fwd':
        if (t.name || !this.#referenced[id]) this.#queue.push(id);
        this.#order[id] = Order.Ordered;
        return 1;
      case 'typedef': {
        const strong = this.#orderType(t.type, throughPtr, depth + 1);
        if (throughPtr && !strong) return 0;
        this.#queue.push(id);
        this.#order[id] = Order.Ordered;
        return 1;
      }
      case 'const':
      case 'volatile':
      case 'restrict':
      case 'type_tag':
        return this.#orderType(t.type, throughPtr, depth + 1);
      case 'func_proto': {
        let strong = this.#orderType(t.returnType, throughPtr, depth + 1) > 0;
        for (const p of t.params) if (this.#orderType(p.type, throughPtr, depth + 1) > 0) strong = true;
        return strong ? 1 : 0;
      }
      default:
        this.#order[id] = Order.Ordered;
        return 0;
    }
  }

  /** Emit `id` (at top level when `cont` is 0), with the forward declarations it needs first. */
  #emitType(id: number, cont: number, depth = 0): void {
    if (this.#emit[id] === Emit.Emitted) return;
    if (depth > MAX_DEPTH) throw new Error(`BTF type ${id} nests deeper than ${MAX_DEPTH}`);
    const t = this.#t(id);
    const top = cont === 0;
    if (this.#emit[id] === Emit.Emitting) {
      if (this.#fwdEmitted[id]) return;
      if (t.kind === 'struct' || t.kind === 'union') {
        if (id === cont || !t.name) return;
        this.out.push(`${this.#structFwd(t)};\n\n`);
        this.#fwdEmitted[id] = 1;
      } else if (t.kind === 'typedef') {
        if (!this.#builtin(t)) this.out.push(`${this.#typedefDef(t, 0)};\n\n`);
        this.#fwdEmitted[id] = 1;
      }
      return;
    }
    switch (t.kind) {
      case 'int':
        this.#emit[id] = Emit.Emitted;
        break;
      case 'enum':
      case 'enum64':
        if (top) this.out.push(`${this.#enumDef(t, 0)};\n\n`);
        this.#emit[id] = Emit.Emitted;
        break;
      case 'ptr':
      case 'const':
      case 'volatile':
      case 'restrict':
      case 'type_tag':
      case 'array':
        this.#emitType(t.type, cont, depth + 1);
        break;
      case 'fwd':
        this.out.push(`${t.union ? 'union' : 'struct'} ${this.#tagName(t)};\n\n`);
        this.#emit[id] = Emit.Emitted;
        break;
      case 'typedef':
        this.#emit[id] = Emit.Emitting;
        this.#emitType(t.type, id, depth + 1);
        if (!this.#fwdEmitted[id] && !this.#builtin(t)) this.out.push(`${this.#typedefDef(t, 0)};\n\n`);
        this.#emit[id] = Emit.Emitted;
        break;
      case 'struct':
      case 'union':
        this.#emit[id] = Emit.Emitting;
        if (top || !t.name) {
          const inner = t.name ? id : cont;
          for (const m of t.members) this.#emitType(m.type, inner, depth + 1);
        } else if (!this.#fwdEmitted[id] && id !== cont) {
          this.out.push(`${this.#structFwd(t)};\n\n`);
          this.#fwdEmitted[id] = 1;
        }
        if (top) {
          this.out.push(`${this.#structDef(t, 0)};\n\n`);
          this.#emit[id] = Emit.Emitted;
        } else this.#emit[id] = Emit.None;
        break;
      case 'func_proto':
        this.#emitType(t.returnType, cont, depth + 1);
        for (const p of t.params) this.#emitType(p.type, cont, depth + 1);
        break;
      default:
    }
  }

  /** `__builtin_va_list` is the compiler's own: never redefined. */
  #builtin(t: BtfType): boolean {
    return t.name === '__builtin_va_list';
  }

  /** A unique name: the second `struct foo` of a BTF becomes `foo___2`, as bpftool names it. */
  #unique(t: BtfType, counts: Map<string, number>): string {
    if (!t.name) return '';
    const have = this.#names.get(t.id);
    if (have !== undefined) return have;
    let name = t.name;
    if (!(t.kind === 'fwd' || (t.kind === 'enum' && t.values.length === 0))) {
      const n = (counts.get(t.name) ?? 0) + 1;
      counts.set(t.name, n);
      if (n > 1) name = `${t.name}___${n}`;
    }
    this.#names.set(t.id, name);
    return name;
  }

  #tagName(t: BtfType): string {
    return this.#unique(t, this.#tagCount);
  }

  #identName(t: BtfType): string {
    return this.#unique(t, this.#identCount);
  }

  #structFwd(t: Composite): string {
    return `${t.kind}${t.name ? ' ' : ''}${this.#tagName(t)}`;
  }

  /** Alignment as the C compiler would give the BTF layout: 1 for a struct that must be packed. */
  #align(id: number, depth = 0): number {
    const t = this.btf.resolve(id);
    const have = this.#aligns.get(t.id);
    if (have !== undefined) return have;
    if (depth > MAX_DEPTH) throw new Error(`BTF type ${id} nests deeper than ${MAX_DEPTH}`);
    let a: number;
    switch (t.kind) {
      case 'int':
      case 'enum':
      case 'enum64':
      case 'float':
        a = Math.min(t.size, 8) || 1;
        break;
      case 'ptr':
        a = 8;
        break;
      case 'array':
        a = this.#align(t.type, depth + 1);
        break;
      case 'struct':
      case 'union': {
        a = 1;
        let packed = false;
        for (const m of t.members) {
          const ma = this.#align(m.type, depth + 1);
          a = Math.max(a, ma);
          if (!m.bitSize && m.bitOffset % (8 * ma) !== 0) packed = true;
        }
        if (packed || t.size % a !== 0) a = 1;
        break;
      }
      default:
        a = 1;
    }
    this.#aligns.set(t.id, a);
    return a;
  }

  #isPacked(t: Composite): boolean {
    let max = 1;
    for (const m of t.members) {
      const a = this.#align(m.type);
      if (!m.bitSize && m.bitOffset % (8 * a) !== 0) return true;
      max = Math.max(max, a);
    }
    return t.size % max !== 0;
  }

  #sizeof(id: number): number {
    if (id === 0) return 0;
    try {
      return this.btf.sizeof(id);
    } catch {
      return 0;
    }
  }

  #structDef(t: Composite, lvl: number): string {
    const isStruct = t.kind === 'struct';
    const packed = isStruct && this.#isPacked(t);
    const align = this.#align(t.id);
    const ind = '\t'.repeat(lvl + 1);
    let s = `${t.kind}${t.name ? ' ' : ''}${this.#tagName(t)} {`;
    let off = 0;
    let prevBitfield = false;
    for (const m of t.members) {
      const mAlign = packed ? 1 : this.#align(m.type);
      const inBitfield = prevBitfield && m.bitSize !== 0;
      s += padding(off, m.bitOffset, mAlign, inBitfield, ind);
      s += `\n${ind}${this.#decl(m.type, m.name, lvl + 1)}`;
      if (m.bitSize) {
        s += `: ${m.bitSize}`;
        off = m.bitOffset + m.bitSize;
        prevBitfield = true;
      } else {
        off = m.bitOffset + Math.max(0, this.#sizeof(m.type)) * 8;
        prevBitfield = false;
      }
      s += ';';
    }
    if (isStruct) s += padding(off, t.size * 8, align, false, ind);
    s += t.members.length || t.size ? `\n${'\t'.repeat(lvl)}}` : '}';
    if (packed) s += ' __attribute__((packed))';
    return s;
  }

  #enumDef(t: BtfType & { kind: 'enum' | 'enum64' }, lvl: number): string {
    let s = `enum${t.name ? ' ' : ''}${this.#tagName(t)}`;
    if (!t.values.length) return s;
    s += ' {';
    const ind = '\t'.repeat(lvl + 1);
    for (const v of t.values) {
      const n = (this.#identCount.get(v.name) ?? 0) + 1;
      this.#identCount.set(v.name, n);
      const name = n > 1 ? `${v.name}___${n}` : v.name;
      let value: string;
      if (t.kind === 'enum64')
        value = t.signed ? `${BigInt.asIntN(64, v.value)}LL` : `${BigInt.asUintN(64, v.value)}ULL`;
      else value = String(t.signed ? BigInt.asIntN(32, v.value) : BigInt.asUintN(32, v.value));
      s += `\n${ind}${name} = ${value},`;
    }
    s += `\n${'\t'.repeat(lvl)}}`;
    if (t.size === 1) s += ' __attribute__((mode(byte)))';
    else if (t.size === 8) {
      // A 32-bit enum needs mode(word) to be 8 bytes; an enum64 only when no value needs 64 bits.
      const wide = t.kind === 'enum64' && t.values.some((v) => BigInt.asUintN(64, v.value) >> 32n !== 0n);
      if (!wide) s += ' __attribute__((mode(word)))';
    }
    return s;
  }

  #typedefDef(t: BtfRef, lvl: number): string {
    const name = this.#identName(t);
    if (t.type === 0 && name === '__gnuc_va_list') return 'typedef __builtin_va_list __gnuc_va_list';
    return `typedef ${this.#decl(t.type, name, lvl)}`;
  }

  /** A declaration of `name` with type `id`: `int *x[4]`, `void (*fn)(int)`, an inline anonymous struct. */
  #decl(id: number, name: string, lvl: number): string {
    const stack: number[] = [];
    for (let i = 0; ; i++) {
      if (i > MAX_DEPTH) throw new Error(`BTF type ${id} nests deeper than ${MAX_DEPTH}`);
      stack.push(id);
      if (id === 0) break;
      const t = this.#t(id);
      if (
        t.kind === 'ptr' ||
        t.kind === 'const' ||
        t.kind === 'volatile' ||
        t.kind === 'restrict' ||
        t.kind === 'type_tag' ||
        t.kind === 'array'
      )
        id = t.type;
      else if (t.kind === 'func_proto') id = t.returnType;
      else break;
    }
    return this.#chain(stack, name, lvl);
  }

  /** Modifiers at the top of `stack` written before a base type (`const volatile int`). */
  #mods(stack: number[]): string {
    let s = '';
    while (stack.length) {
      const t = this.#t(stack[stack.length - 1]!);
      if (t.kind === 'volatile') s += 'volatile ';
      else if (t.kind === 'const') s += 'const ';
      else if (t.kind === 'restrict') s += 'restrict ';
      else break;
      stack.pop();
    }
    return s;
  }

  #dropMods(stack: number[]): void {
    while (stack.length) {
      const k = this.#t(stack[stack.length - 1]!).kind;
      if (k !== 'volatile' && k !== 'const' && k !== 'restrict' && k !== 'type_tag') return;
      stack.pop();
    }
  }

  #chain(stack: number[], name: string, lvl: number): string {
    let s = '';
    let lastWasPtr = true;
    const emitName = () => (name && !lastWasPtr ? ` ${name}` : name);
    while (stack.length) {
      const id = stack.pop()!;
      if (id === 0) {
        s += `${this.#mods(stack)}void`;
        lastWasPtr = false;
        continue;
      }
      const t = this.#t(id);
      switch (t.kind) {
        case 'int':
        case 'float':
          s += `${this.#mods(stack)}${t.name}`;
          break;
        case 'struct':
        case 'union':
          s += this.#mods(stack) + (t.name ? this.#structFwd(t) : this.#structDef(t, lvl));
          break;
        case 'enum':
        case 'enum64':
          s += this.#mods(stack) + (t.name ? `enum ${this.#tagName(t)}` : this.#enumDef(t, lvl));
          break;
        case 'fwd':
          s += `${this.#mods(stack)}${t.union ? 'union' : 'struct'} ${this.#tagName(t)}`;
          break;
        case 'typedef':
          s += this.#mods(stack) + this.#identName(t);
          break;
        case 'ptr':
          s += lastWasPtr ? '*' : ' *';
          break;
        case 'volatile':
          s += ' volatile';
          break;
        case 'const':
          s += ' const';
          break;
        case 'restrict':
          s += ' restrict';
          break;
        case 'type_tag':
          s += `${this.#mods(stack)} __attribute__((btf_type_tag("${t.name}")))`;
          break;
        case 'array': {
          this.#dropMods(stack);
          if (!stack.length) return `${s}${emitName()}[${t.nelems}]`;
          const multidim = this.#t(stack[stack.length - 1]!).kind === 'array';
          if (name && !lastWasPtr) s += ' ';
          const inner = this.#chain(stack, name, lvl);
          return multidim ? `${s}${inner}[${t.nelems}]` : `${s}(${inner})[${t.nelems}]`;
        }
        case 'func_proto': {
          this.#dropMods(stack);
          if (stack.length) s += ` (${this.#chain(stack, name, lvl)})`;
          else s += emitName();
          const ps = t.params;
          if (ps.length === 0 || (ps.length === 1 && ps[0]!.type === 0)) return `${s}(void)`;
          const args = ps.map((p, i) =>
            i === ps.length - 1 && p.type === 0 ? '...' : this.#decl(p.type, p.name, lvl),
          );
          return `${s}(${args.join(', ')})`;
        }
        default:
          throw new Error(`BTF type ${id} (${t.kind}) cannot appear in a C declaration`);
      }
      lastWasPtr = t.kind === 'ptr';
    }
    return s + emitName();
  }
}

/**
 * Explicit padding from bit `cur` to bit `next`: unnamed bitfields of the widest type that
 * reaches a natural boundary, and a `type: 0` mark where the compiler would not align by itself.
 */
function padding(cur: number, next: number, nextAlign: number, inBitfield: boolean, ind: string): string {
  if (cur >= next) return '';
  let s = '';
  let padBits = 0;
  let padType = '';
  let aligned = 0;
  for (const [type, bits] of PAD_TYPES) {
    padBits = bits;
    padType = type;
    aligned = roundUp(cur, bits);
    if (aligned <= next) break;
  }
  if (aligned > cur && aligned <= next) {
    if (
      inBitfield ||
      (aligned === next && roundUp(cur, nextAlign * 8) !== aligned) ||
      (aligned !== next && next - aligned <= aligned - cur)
    )
      s += `\n${ind}${padType}: ${inBitfield ? aligned - cur : 0};`;
    cur = aligned;
  }
  while (cur !== next) {
    const bits = Math.min(next - cur, padBits);
    if (bits === padBits) {
      s += `\n${ind}${padType}: ${padBits};`;
      cur += bits;
      continue;
    }
    for (let i = PAD_TYPES.length - 1; i >= 0; i--) {
      const [type, b] = PAD_TYPES[i]!;
      if (b < bits) continue;
      s += `\n${ind}${type}: ${bits};`;
      cur += bits;
      break;
    }
  }
  return s;
}
