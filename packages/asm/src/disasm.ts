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
const hex = (v: number) => (v < 0 ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`);
const signed = (v: number) => (v < 0 ? `${v}` : `+${v}`);
const code2 = (c: number) => c.toString(16).padStart(2, '0');

export interface DisasmOptions {
  /** Label names by slot index, shown before their instruction. */
  labels?: Map<string, number>;
  /** What a map reference's immediate holds: an fd (as loaded, default) or an id (as the kernel dumps). */
  mapRefs?: 'fd' | 'id';
}

/** One instruction as text, without its index: `(b7) r0 = 0`. */
export function formatInsn(insn: Insn, opts: Pick<DisasmOptions, 'mapRefs'> = {}): string {
  const mapKey = opts.mapRefs ?? 'fd';
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
      const sym = (insn.off === 1 && (o === AluOp.div || o === AluOp.mod) ? 's' : '') + ALU_SYM[o];
      if (src(c) === Source.K) return `${r(insn.dst)} ${sym} ${insn.imm}`;
      if (o === AluOp.mov && insn.off) return `${r(insn.dst)} = (s${insn.off})${r(insn.src)}`;
      return `${r(insn.dst)} ${sym} ${r(insn.src)}`;
    }
    if (k === Class.LDX) {
      const sx = mode(c) === Mode.MEMSX;
      const t = sx ? SIZE_NAME[size(c)]!.replace('u', 's') : SIZE_NAME[size(c)];
      return `r${insn.dst} = *(${t} *)(r${insn.src} ${signed(insn.off)})`;
    }
    if (k === Class.ST) return `*(${SIZE_NAME[size(c)]} *)(r${insn.dst} ${signed(insn.off)}) = ${insn.imm}`;
    if (k === Class.STX) {
      const mem = `(${SIZE_NAME[size(c)]} *)(r${insn.dst} ${signed(insn.off)})`;
      if (mode(c) !== Mode.ATOMIC) return `*${mem} = r${insn.src}`;
      const w = size(c) === Size.dw ? '64' : '';
      const names: Record<number, string> = {
        [Atomic.add]: 'add',
        [Atomic.and]: 'and',
        [Atomic.or]: 'or',
        [Atomic.xor]: 'xor',
      };
      const syms: Record<number, string> = {
        [Atomic.add]: '+=',
        [Atomic.and]: '&=',
        [Atomic.or]: '|=',
        [Atomic.xor]: '^=',
      };
      if (insn.imm === Atomic.xchg) return `r${insn.src} = atomic${w}_xchg(${mem}, r${insn.src})`;
      if (insn.imm === Atomic.cmpxchg) return `r0 = atomic${w}_cmpxchg(${mem}, r0, r${insn.src})`;
      const base = insn.imm & ~Atomic.fetch;
      if (insn.imm & Atomic.fetch)
        return `r${insn.src} = atomic${w}_fetch_${names[base]}(${mem}, r${insn.src})`;
      return `lock *${mem} ${syms[base]} r${insn.src}`;
    }
    if (k === Class.LD) {
      if (c === LD_IMM64) {
        const ref = insn.ref;
        if (insn.src === Pseudo.MAP_FD)
          return `r${insn.dst} = map[${ref ? ref.name : `${mapKey}:${insn.imm}`}]`;
        if (insn.src === Pseudo.MAP_VALUE)
          return `r${insn.dst} = map[${ref ? ref.name : `${mapKey}:${insn.imm}`}][0]+${insn.imm64Hi ?? 0}`;
        if (insn.src === Pseudo.MAP_IDX) return `r${insn.dst} = map[idx:${insn.imm}]`;
        if (insn.src === Pseudo.BTF_ID) return `r${insn.dst} = btf_id[${insn.imm}]`;
        if (insn.src === Pseudo.FUNC)
          return `r${insn.dst} = ${ref ? ref.name : `subprog[pc${signed(insn.imm)}]`}`;
        return `r${insn.dst} = 0x${imm64(insn).toString(16)}`;
      }
      const t = SIZE_NAME[size(c)];
      if (mode(c) === Mode.ABS) return `r0 = *(${t} *)skb[${insn.imm}]`;
      if (mode(c) === Mode.IND) return `r0 = *(${t} *)skb[r${insn.src} + ${insn.imm}]`;
    }
    if (k === Class.JMP || k === Class.JMP32) {
      const o = op(c);
      if (o === JmpOp.exit) return 'exit';
      if (o === JmpOp.call) {
        if (insn.src === Pseudo.CALL) return `call ${insn.ref ? insn.ref.name : `pc${signed(insn.imm)}`}`;
        if (insn.src === Pseudo.KFUNC_CALL) return `call kernel-function#${insn.imm}`;
        return `call ${helperName(insn.imm) ?? 'unknown'}#${insn.imm}`;
      }
      const target = insn.ref ? insn.ref.name : undefined;
      if (o === JmpOp.ja) {
        if (k === Class.JMP32) return `gotol ${target ?? `pc${signed(insn.imm)}`}`;
        return `goto ${target ?? `pc${signed(insn.off)}`}`;
      }
      if (o === JmpOp.jcond) return `may_goto pc${signed(insn.off)}`;
      const rhs = src(c) === Source.K ? hex(insn.imm) : r(insn.src);
      return `if ${r(insn.dst)} ${JMP_SYM[o]} ${rhs} goto ${target ?? `pc${signed(insn.off)}`}`;
    }
    return `unknown opcode ${code2(c)}`;
  })();
  return `(${code2(c)}) ${body}`;
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
    lines.push(`${String(at[i]).padStart(Math.max(width, 4))}: ${formatInsn(insn, opts)}`);
  });
  return lines.join('\n');
}
