// The eBPF instruction encoding (RFC 9669). Values come from the generated uapi constants;
// the few the build machine's uapi headers predate (sign-extending loads, may_goto) are
// spelled out here from the RFC.
import { Defines as D } from '@bpfkit/sys';

export const Class = {
  LD: D.BPF_LD,
  LDX: D.BPF_LDX,
  ST: D.BPF_ST,
  STX: D.BPF_STX,
  ALU: D.BPF_ALU,
  JMP: D.BPF_JMP,
  JMP32: D.BPF_JMP32,
  ALU64: D.BPF_ALU64,
} as const;

/** Source operand: immediate (K) or register (X). For END: to little (K) / big (X) endian. */
export const Source = { K: D.BPF_K, X: D.BPF_X } as const;

export const AluOp = {
  add: D.BPF_ADD,
  sub: D.BPF_SUB,
  mul: D.BPF_MUL,
  div: D.BPF_DIV,
  or: D.BPF_OR,
  and: D.BPF_AND,
  lsh: D.BPF_LSH,
  rsh: D.BPF_RSH,
  neg: D.BPF_NEG,
  mod: D.BPF_MOD,
  xor: D.BPF_XOR,
  mov: D.BPF_MOV,
  arsh: D.BPF_ARSH,
  end: D.BPF_END,
} as const;
export type AluOpName = keyof typeof AluOp;

export const JmpOp = {
  ja: D.BPF_JA,
  jeq: D.BPF_JEQ,
  jgt: D.BPF_JGT,
  jge: D.BPF_JGE,
  jset: D.BPF_JSET,
  jne: D.BPF_JNE,
  jsgt: D.BPF_JSGT,
  jsge: D.BPF_JSGE,
  call: D.BPF_CALL,
  exit: D.BPF_EXIT,
  jlt: D.BPF_JLT,
  jle: D.BPF_JLE,
  jslt: D.BPF_JSLT,
  jsle: D.BPF_JSLE,
  /** RFC 9669 §5.3 (may_goto); not in older uapi headers. */
  jcond: 0xe0,
} as const;
export type JmpOpName = keyof typeof JmpOp;
export type CondJmpName = Exclude<JmpOpName, 'ja' | 'call' | 'exit' | 'jcond'>;

export const Size = { w: D.BPF_W, h: D.BPF_H, b: D.BPF_B, dw: D.BPF_DW } as const;
export type SizeName = keyof typeof Size;
export const sizeBytes: Record<SizeName, number> = { b: 1, h: 2, w: 4, dw: 8 };

export const Mode = {
  IMM: D.BPF_IMM,
  ABS: D.BPF_ABS,
  IND: D.BPF_IND,
  MEM: D.BPF_MEM,
  /** RFC 9669 §5.2: sign-extending load; not in older uapi headers. */
  MEMSX: 0x80,
  ATOMIC: D.BPF_ATOMIC,
} as const;

/** Atomic operations, carried in the immediate of an ATOMIC store. */
export const Atomic = {
  add: D.BPF_ADD,
  or: D.BPF_OR,
  and: D.BPF_AND,
  xor: D.BPF_XOR,
  fetch: D.BPF_FETCH,
  xchg: D.BPF_XCHG,
  cmpxchg: D.BPF_CMPXCHG,
} as const;

/** src_reg values of ld_imm64 and call that make them references. */
export const Pseudo = {
  MAP_FD: D.BPF_PSEUDO_MAP_FD,
  MAP_VALUE: D.BPF_PSEUDO_MAP_VALUE,
  BTF_ID: D.BPF_PSEUDO_BTF_ID,
  FUNC: D.BPF_PSEUDO_FUNC,
  MAP_IDX: D.BPF_PSEUDO_MAP_IDX,
  MAP_IDX_VALUE: D.BPF_PSEUDO_MAP_IDX_VALUE,
  CALL: D.BPF_PSEUDO_CALL,
  KFUNC_CALL: D.BPF_PSEUDO_KFUNC_CALL,
} as const;

export const cls = (code: number) => code & 0x07;
export const op = (code: number) => code & 0xf0;
export const src = (code: number) => code & 0x08;
export const size = (code: number) => code & 0x18;
export const mode = (code: number) => code & 0xe0;
export const isAlu = (code: number) => cls(code) === Class.ALU || cls(code) === Class.ALU64;
export const isJmp = (code: number) => cls(code) === Class.JMP || cls(code) === Class.JMP32;
/** The 16-byte ld_imm64. */
export const LD_IMM64 = Class.LD | Mode.IMM | Size.dw;
