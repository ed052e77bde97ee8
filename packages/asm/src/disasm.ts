// A disassembler whose text reads like bpftool's `prog dump xlated` (the kernel's disasm.c).
import { helperName } from './helpers.js';
import { type Insn, imm64, slotIndex } from './insn.js';
import {
  AluOp,
  Atomic,
  Class,
  cls,
  JmpOp,
  LD_IMM64,
  Mode,
  mode,
  op,
  Pseudo,
  Size,
  Source,
  size,
  src,
} from './opcodes.js';

const ALU_SYM: Record<number, string> = {
  [AluOp.add]: '+=',
  [AluOp.sub]: '-=',
  [AluOp.mul]: '*=',
  [AluOp.div]: '/=',
  [AluOp.or]: '|=',
  [AluOp.and]: '&=',
  [AluOp.lsh]: '<<=',
  [AluOp.rsh]: '>>=',
  [AluOp.mod]: '%=',
  [AluOp.xor]: '^=',
  [AluOp.mov]: '=',
  [AluOp.arsh]: 's>>=',
};
const JMP_SYM: Record<number, string> = {
  [JmpOp.jeq]: '==',
  [JmpOp.jgt]: '>',
  [JmpOp.jge]: '>=',
  [JmpOp.jset]: '&',
  [JmpOp.jne]: '!=',
  [JmpOp.jsgt]: 's>',
  [JmpOp.jsge]: 's>=',
  [JmpOp.jlt]: '<',
  [JmpOp.jle]: '<=',
  [JmpOp.jslt]: 's<',
  [JmpOp.jsle]: 's<=',
};
const SIZE_NAME: Record<number, string> = {
  [Size.b]: 'u8',
  [Size.h]: 'u16',
  [Size.w]: 'u32',
  [Size.dw]: 'u64',
};
/** A jump's immediate as the kernel prints it: the 32 bits unsigned, in hex. */
const hex32 = (v: number) => `0x${(v >>> 0).toString(16)}`;
const signed = (v: number) => (v < 0 ? `${v}` : `+${v}`);
const code2 = (c: number) => c.toString(16).padStart(2, '0');
/** The kernel's internal mov that turns a per-CPU offset into an address (`BPF_ADDR_PERCPU`). */
const ADDR_PERCPU = -1;
/** `off` of a mov that casts between address spaces (arena pointers, `BPF_ADDR_SPACE_CAST`). */
const ADDR_SPACE_CAST = 1;
/** Atomic loads and stores with ordering (kernel 6.15): not in older uapi headers. */
const LOAD_ACQ = 0x100;
const STORE_REL = 0x110;
/** The kernel's speculation barrier, an ST with this mode: internal, never in uapi. */
const NOSPEC = 0xc0;

export interface DisasmOptions {
  /** Label names by slot index, shown before their instruction. */
  labels?: Map<string, number>;
  /** What a map reference's immediate holds: an fd (as loaded, default) or an id (as the kernel dumps). */
  mapRefs?: 'fd' | 'id';
  /**
   * The instructions are the kernel's translation (`xlated_prog_insns`): map references hold ids,
   * a subprogram call's pc-relative target is in `off` (its `imm` is the subprogram's index), and
   * helper and kfunc calls hold addresses relative to `__bpf_call_base`.
   */
  xlated?: boolean;
  /**
   * Names a call, as the kernel's disassembler asks its `cb_call`: for a helper or kfunc call the
   * name before `#imm` (`bpf_map_lookup_elem`, a kfunc's name from BTF, a kernel symbol); for a
   * subprogram call the text after `pc` (bpftool: `+7#bpf_prog_<tag>_<name>`). Undefined keeps
   * the default.
   */
  callName?: (insn: Insn) => string | undefined;
  /** Lines printed before the instruction at a slot, after its labels (a function's signature, its source line). */
  before?: (slot: number) => readonly string[];
}

/** One instruction as text, without its index: `(b7) r0 = 0`. */
export function formatInsn(insn: Insn, opts: Omit<DisasmOptions, 'labels'> = {}): string {
  const mapKey = opts.mapRefs ?? (opts.xlated ? 'id' : 'fd');
  const c = insn.code;
  const k = cls(c);
  const r = (n: number) => (k === Class.ALU || k === Class.JMP32 ? `w${n}` : `r${n}`);
  const body = (() => {
    if (k === Class.ALU || k === Class.ALU64) {
      const o = op(c);
      if (o === AluOp.neg) return `${r(insn.dst)} = -${r(insn.dst)}`;
      if (o === AluOp.end) {
        if (k === Class.ALU64) return `r${insn.dst} = bswap${insn.imm} r${insn.dst}`;
        return `r${insn.dst} = ${src(c) === Source.X ? 'be' : 'le'}${insn.imm} r${insn.dst}`;
      }
      if (o === AluOp.mov && k === Class.ALU64 && src(c) === Source.X) {
        if (insn.off === ADDR_SPACE_CAST)
          return `r${insn.dst} = addr_space_cast(r${insn.src}, ${insn.imm >>> 16}, ${insn.imm & 0xffff})`;
        if (insn.off === ADDR_PERCPU) return `r${insn.dst} = &(void __percpu *)(r${insn.src})`;
      }
      const sdiv = insn.off === 1 && (o === AluOp.div || o === AluOp.mod);
      const sym = (sdiv ? 's' : '') + (ALU_SYM[o] ?? `BUG_alu_op_${code2(o)}`);
      if (src(c) === Source.K) return `${r(insn.dst)} ${sym} ${insn.imm}`;
      const movsx = o === AluOp.mov && (insn.off === 8 || insn.off === 16 || insn.off === 32);
      return `${r(insn.dst)} ${sym} ${movsx ? `(s${insn.off})` : ''}${r(insn.src)}`;
    }
    if (k === Class.LDX) {
      const m = mode(c);
      if (m !== Mode.MEM && m !== Mode.MEMSX) return undefined;
      const t = m === Mode.MEMSX ? SIZE_NAME[size(c)]!.replace('u', 's') : SIZE_NAME[size(c)];
      return `r${insn.dst} = *(${t} *)(r${insn.src} ${signed(insn.off)})`;
    }
    if (k === Class.ST) {
      if (mode(c) === NOSPEC) return 'nospec';
      if (mode(c) !== Mode.MEM) return undefined;
      return `*(${SIZE_NAME[size(c)]} *)(r${insn.dst} ${signed(insn.off)}) = ${insn.imm}`;
    }
    if (k === Class.STX) {
      const mem = `(${SIZE_NAME[size(c)]} *)(r${insn.dst} ${signed(insn.off)})`;
      if (mode(c) === Mode.MEM) return `*${mem} = r${insn.src}`;
      if (mode(c) !== Mode.ATOMIC) return undefined;
      const w = size(c) === Size.dw ? '64' : '';
      const names: Record<number, string> = {
        [Atomic.add]: 'add',
        [Atomic.and]: 'and',
        [Atomic.or]: 'or',
        [Atomic.xor]: 'xor',
      };
      const base = insn.imm & ~Atomic.fetch;
      if (insn.imm === Atomic.xchg) return `r${insn.src} = atomic${w}_xchg(${mem}, r${insn.src})`;
      if (insn.imm === Atomic.cmpxchg) return `r0 = atomic${w}_cmpxchg(${mem}, r0, r${insn.src})`;
      if (insn.imm === LOAD_ACQ)
        return `r${insn.dst} = load_acquire((${SIZE_NAME[size(c)]} *)(r${insn.src} ${signed(insn.off)}))`;
      if (insn.imm === STORE_REL) return `store_release(${mem}, r${insn.src})`;
      if (names[base] === undefined) return undefined;
      if (insn.imm & Atomic.fetch)
        return `r${insn.src} = atomic${w}_fetch_${names[base]}(${mem}, r${insn.src})`;
      return `lock *${mem} ${ALU_SYM[base]} r${insn.src}`;
    }
    if (k === Class.LD) {
      if (c === LD_IMM64) {
        const ref = insn.ref;
        const next = insn.imm64Hi ?? 0;
        if (insn.src === Pseudo.MAP_FD)
          return `r${insn.dst} = map[${ref ? ref.name : `${mapKey}:${insn.imm}`}]`;
        if (insn.src === Pseudo.MAP_VALUE)
          return `r${insn.dst} = map[${ref ? ref.name : `${mapKey}:${insn.imm}`}][0]+${next}`;
        if (insn.src === Pseudo.MAP_IDX) return `r${insn.dst} = map[idx:${insn.imm}]`;
        if (insn.src === Pseudo.MAP_IDX_VALUE) return `r${insn.dst} = map[idx:${insn.imm}]+${next}`;
        if (insn.src === Pseudo.BTF_ID) return `r${insn.dst} = btf_id[${insn.imm}]`;
        if (insn.src === Pseudo.FUNC)
          return `r${insn.dst} = ${ref ? ref.name : `subprog[${signed(insn.imm)}]`}`;
        return `r${insn.dst} = 0x${BigInt.asUintN(64, imm64(insn)).toString(16)}`;
      }
      const t = SIZE_NAME[size(c)];
      if (mode(c) === Mode.ABS) return `r0 = *(${t} *)skb[${insn.imm}]`;
      if (mode(c) === Mode.IND) return `r0 = *(${t} *)skb[r${insn.src} + ${insn.imm}]`;
      return undefined;
    }
    // JMP or JMP32
    const o = op(c);
    if (o === JmpOp.call) {
      if (insn.src === Pseudo.CALL) {
        const named = opts.callName?.(insn);
        if (named !== undefined) return `call pc${named}`;
        if (insn.ref) return `call ${insn.ref.name}`;
        return `call pc${signed(opts.xlated ? insn.off : insn.imm)}`;
      }
      const known = insn.src === 0 ? helperName(insn.imm) : undefined;
      const name =
        known ?? opts.callName?.(insn) ?? (insn.src === Pseudo.KFUNC_CALL ? 'kernel-function' : 'unknown');
      return `call ${name}#${insn.imm}`;
    }
    if (k === Class.JMP && o === JmpOp.exit) return 'exit';
    const target = insn.ref ? insn.ref.name : undefined;
    if (o === JmpOp.ja) {
      if (k === Class.JMP32) return `gotol ${target ?? `pc${signed(insn.imm)}`}`;
      return `goto ${target ?? `pc${signed(insn.off)}`}`;
    }
    if (o === JmpOp.jcond) return `may_goto ${target ?? `pc${signed(insn.off)}`}`;
    const sym = JMP_SYM[o];
    if (sym === undefined) return undefined;
    const rhs = src(c) === Source.K ? hex32(insn.imm) : r(insn.src);
    return `if ${r(insn.dst)} ${sym} ${rhs} goto ${target ?? `pc${signed(insn.off)}`}`;
  })();
  return body === undefined ? `BUG_${code2(c)}` : `(${code2(c)}) ${body}`;
}

/** Disassemble a program: one line per instruction, prefixed with its slot index like bpftool. */
export function disassemble(insns: readonly Insn[], opts: DisasmOptions = {}): string {
  const { at } = slotIndex(insns);
  const byslot = new Map<number, string[]>();
  for (const [name, slot] of opts.labels ?? []) byslot.set(slot, [...(byslot.get(slot) ?? []), name]);
  const width = String(at.at(-1) ?? 0).length;
  const lines: string[] = [];
  insns.forEach((insn, i) => {
    for (const l of byslot.get(at[i]!) ?? []) lines.push(`${l}:`);
    if (opts.before) lines.push(...opts.before(at[i]!));
    lines.push(`${String(at[i]).padStart(Math.max(width, 4))}: ${formatInsn(insn, opts)}`);
  });
  return lines.join('\n');
}
