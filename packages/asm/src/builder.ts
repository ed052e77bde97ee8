import { AsmError } from './errors.js';
import { helperId } from './helpers.js';
import { type Insn, type Ref, slotIndex } from './insn.js';
import {
  AluOp,
  type AluOpName,
  Atomic,
  Class,
  type CondJmpName,
  JmpOp,
  LD_IMM64,
  Mode,
  Pseudo,
  Size,
  type SizeName,
  Source,
} from './opcodes.js';

export const R0 = 0;
export const R1 = 1;
export const R2 = 2;
export const R3 = 3;
export const R4 = 4;
export const R5 = 5;
export const R6 = 6;
export const R7 = 7;
export const R8 = 8;
export const R9 = 9;
/** The read-only frame pointer. */
export const R10 = 10;
export type Reg = number;

/** A register operand, or an immediate. Registers are plain numbers 0..10 wrapped by {@link reg}. */
export type Operand = RegOperand | number;
export interface RegOperand {
  readonly reg: number;
}
/** Mark a number as a register operand: `b.add64(R1, reg(R2))`. Plain numbers are immediates. */
export const reg = (r: number): RegOperand => ({ reg: r });

export type SizeArg = SizeName | 1 | 2 | 4 | 8;
const sizeOf = (s: SizeArg): number => {
  const name = typeof s === 'number' ? ({ 1: 'b', 2: 'h', 4: 'w', 8: 'dw' } as const)[s] : s;
  const v = name === undefined ? undefined : Size[name];
  if (v === undefined) throw new AsmError(`bad access size ${String(s)} (use b, h, w, dw or 1, 2, 4, 8)`);
  return v;
};

/** A reference to a map inside assembled instructions, to be filled with an fd at load. */
export interface MapRef {
  /** Index in `insns` (not slots). */
  insn: number;
  name: string;
  kind: 'map' | 'mapValue';
  offset: number;
}

/** The result of {@link Builder.assemble}: instructions with labels resolved, and map references. */
export interface Assembled {
  insns: Insn[];
  mapRefs: MapRef[];
  /** Label → slot index. */
  labels: Map<string, number>;
  /** Subprogram name → slot index. */
  functions: Map<string, number>;
}

/**
 * Writes eBPF programs in TypeScript. Methods append one instruction and return the builder;
 * jumps and calls take label names, resolved by {@link assemble}; maps are referenced by name
 * and resolved to fds when the program is loaded.
 *
 * ```ts
 * const b = new Builder()
 *   .mov64(R0, 0)
 *   .jeq(R1, 0, 'out')
 *   .mov64(R0, 1)
 *   .label('out')
 *   .exit();
 * ```
 */
export class Builder {
  readonly insns: Insn[] = [];
  readonly #labels = new Map<string, number>();
  readonly #functions = new Set<string>();
  #slots = 0;

  #reg(r: number, what = 'register'): number {
    if (!Number.isInteger(r) || r < 0 || r > 10)
      throw new AsmError(`${what} r${r} is out of range (r0..r10)`, this.#slot());
    return r;
  }
  #imm(v: number): number {
    if (!Number.isInteger(v) || v < -(2 ** 31) || v > 2 ** 32 - 1)
      throw new AsmError(`immediate ${v} does not fit in 32 bits`, this.#slot());
    return v | 0;
  }
  #slot(): number {
    return this.#slots;
  }
  #push(insn: Insn): this {
    this.insns.push(insn);
    this.#slots += insn.code === LD_IMM64 ? 2 : 1;
    return this;
  }

  /** Append raw instructions (for example decoded ones). */
  raw(...insns: Insn[]): this {
    for (const i of insns) this.#push({ ...i });
    return this;
  }

  // ---- labels and functions ------------------------------------------------------------------

  /** Name the next instruction as a jump target. */
  label(name: string): this {
    if (this.#labels.has(name)) throw new AsmError(`label '${name}' is defined twice`, this.#slot());
    this.#labels.set(name, this.insns.length);
    return this;
  }
  /** Start a subprogram (a bpf-to-bpf call target) named `name`. */
  func(name: string): this {
    this.#functions.add(name);
    return this.label(name);
  }

  // ---- ALU -----------------------------------------------------------------------------------

  /** `dst op= src` in 64 (ALU64) or 32 (ALU) bits; `off` selects signed div/mod and sign-extending mov. */
  alu(opName: AluOpName, bits: 32 | 64, dst: number, operand: Operand, off = 0): this {
    const klass = bits === 64 ? Class.ALU64 : Class.ALU;
    this.#reg(dst, 'destination');
    if (typeof operand === 'number') {
      return this.#push({
        code: klass | AluOp[opName] | Source.K,
        dst,
        src: 0,
        off,
        imm: this.#imm(operand),
      });
    }
    return this.#push({
      code: klass | AluOp[opName] | Source.X,
      dst,
      src: this.#reg(operand.reg, 'source'),
      off,
      imm: 0,
    });
  }
  add64 = (d: number, s: Operand) => this.alu('add', 64, d, s);
  sub64 = (d: number, s: Operand) => this.alu('sub', 64, d, s);
  mul64 = (d: number, s: Operand) => this.alu('mul', 64, d, s);
  div64 = (d: number, s: Operand) => this.alu('div', 64, d, s);
  sdiv64 = (d: number, s: Operand) => this.alu('div', 64, d, s, 1);
  mod64 = (d: number, s: Operand) => this.alu('mod', 64, d, s);
  smod64 = (d: number, s: Operand) => this.alu('mod', 64, d, s, 1);
  or64 = (d: number, s: Operand) => this.alu('or', 64, d, s);
  and64 = (d: number, s: Operand) => this.alu('and', 64, d, s);
  xor64 = (d: number, s: Operand) => this.alu('xor', 64, d, s);
  lsh64 = (d: number, s: Operand) => this.alu('lsh', 64, d, s);
  rsh64 = (d: number, s: Operand) => this.alu('rsh', 64, d, s);
  arsh64 = (d: number, s: Operand) => this.alu('arsh', 64, d, s);
  mov64 = (d: number, s: Operand) => this.alu('mov', 64, d, s);
  neg64 = (d: number) => this.alu('neg', 64, d, 0);
  add32 = (d: number, s: Operand) => this.alu('add', 32, d, s);
  sub32 = (d: number, s: Operand) => this.alu('sub', 32, d, s);
  mul32 = (d: number, s: Operand) => this.alu('mul', 32, d, s);
  div32 = (d: number, s: Operand) => this.alu('div', 32, d, s);
  sdiv32 = (d: number, s: Operand) => this.alu('div', 32, d, s, 1);
  mod32 = (d: number, s: Operand) => this.alu('mod', 32, d, s);
  smod32 = (d: number, s: Operand) => this.alu('mod', 32, d, s, 1);
  or32 = (d: number, s: Operand) => this.alu('or', 32, d, s);
  and32 = (d: number, s: Operand) => this.alu('and', 32, d, s);
  xor32 = (d: number, s: Operand) => this.alu('xor', 32, d, s);
  lsh32 = (d: number, s: Operand) => this.alu('lsh', 32, d, s);
  rsh32 = (d: number, s: Operand) => this.alu('rsh', 32, d, s);
  arsh32 = (d: number, s: Operand) => this.alu('arsh', 32, d, s);
  mov32 = (d: number, s: Operand) => this.alu('mov', 32, d, s);
  neg32 = (d: number) => this.alu('neg', 32, d, 0);
  /** `dst = (s8|s16|s32) src`, sign-extending, in 64 or 32 bits. */
  movsx64 = (d: number, s: number, bits: 8 | 16 | 32) => this.alu('mov', 64, d, reg(s), bits);
  movsx32 = (d: number, s: number, bits: 8 | 16) => this.alu('mov', 32, d, reg(s), bits);

  /** Convert `dst` to little-endian (`le`) or big-endian (`be`), or swap unconditionally (`bswap`). */
  endian(kind: 'le' | 'be' | 'bswap', dst: number, bits: 16 | 32 | 64): this {
    this.#reg(dst, 'destination');
    if (bits !== 16 && bits !== 32 && bits !== 64)
      throw new AsmError(`byte swap width must be 16, 32 or 64, got ${bits}`, this.#slot());
    const klass = kind === 'bswap' ? Class.ALU64 : Class.ALU;
    const s = kind === 'be' ? Source.X : Source.K;
    return this.#push({ code: klass | AluOp.end | s, dst, src: 0, off: 0, imm: bits });
  }

  // ---- jumps ---------------------------------------------------------------------------------

  /** `if dst <op> operand goto label`, in 64 (JMP) or 32 (JMP32) bits. */
  jmp(opName: CondJmpName, bits: 32 | 64, dst: number, operand: Operand, target: string): this {
    const klass = bits === 64 ? Class.JMP : Class.JMP32;
    this.#reg(dst, 'destination');
    const ref: Ref = { kind: 'label', name: target };
    if (typeof operand === 'number')
      return this.#push({
        code: klass | JmpOp[opName] | Source.K,
        dst,
        src: 0,
        off: 0,
        imm: this.#imm(operand),
        ref,
      });
    return this.#push({
      code: klass | JmpOp[opName] | Source.X,
      dst,
      src: this.#reg(operand.reg, 'source'),
      off: 0,
      imm: 0,
      ref,
    });
  }
  jeq = (d: number, s: Operand, l: string) => this.jmp('jeq', 64, d, s, l);
  jne = (d: number, s: Operand, l: string) => this.jmp('jne', 64, d, s, l);
  jgt = (d: number, s: Operand, l: string) => this.jmp('jgt', 64, d, s, l);
  jge = (d: number, s: Operand, l: string) => this.jmp('jge', 64, d, s, l);
  jlt = (d: number, s: Operand, l: string) => this.jmp('jlt', 64, d, s, l);
  jle = (d: number, s: Operand, l: string) => this.jmp('jle', 64, d, s, l);
  jsgt = (d: number, s: Operand, l: string) => this.jmp('jsgt', 64, d, s, l);
  jsge = (d: number, s: Operand, l: string) => this.jmp('jsge', 64, d, s, l);
  jslt = (d: number, s: Operand, l: string) => this.jmp('jslt', 64, d, s, l);
  jsle = (d: number, s: Operand, l: string) => this.jmp('jsle', 64, d, s, l);
  jset = (d: number, s: Operand, l: string) => this.jmp('jset', 64, d, s, l);
  jeq32 = (d: number, s: Operand, l: string) => this.jmp('jeq', 32, d, s, l);
  jne32 = (d: number, s: Operand, l: string) => this.jmp('jne', 32, d, s, l);
  jgt32 = (d: number, s: Operand, l: string) => this.jmp('jgt', 32, d, s, l);
  jge32 = (d: number, s: Operand, l: string) => this.jmp('jge', 32, d, s, l);
  jlt32 = (d: number, s: Operand, l: string) => this.jmp('jlt', 32, d, s, l);
  jle32 = (d: number, s: Operand, l: string) => this.jmp('jle', 32, d, s, l);
  jsgt32 = (d: number, s: Operand, l: string) => this.jmp('jsgt', 32, d, s, l);
  jsge32 = (d: number, s: Operand, l: string) => this.jmp('jsge', 32, d, s, l);
  jslt32 = (d: number, s: Operand, l: string) => this.jmp('jslt', 32, d, s, l);
  jsle32 = (d: number, s: Operand, l: string) => this.jmp('jsle', 32, d, s, l);
  jset32 = (d: number, s: Operand, l: string) => this.jmp('jset', 32, d, s, l);

  /** Unconditional jump (16-bit offset). */
  ja(target: string): this {
    return this.#push({
      code: Class.JMP | JmpOp.ja,
      dst: 0,
      src: 0,
      off: 0,
      imm: 0,
      ref: { kind: 'label', name: target },
    });
  }
  /** Unconditional jump with a 32-bit offset (`gotol`, JMP32|JA). */
  gotol(target: string): this {
    return this.#push({
      code: Class.JMP32 | JmpOp.ja,
      dst: 0,
      src: 0,
      off: 0,
      imm: 0,
      ref: { kind: 'label', name: target },
    });
  }

  /** Call a helper by name (`'map_lookup_elem'` / `'bpf_map_lookup_elem'`) or id. */
  call(helper: string | number): this {
    return this.#push({
      code: Class.JMP | JmpOp.call,
      dst: 0,
      src: 0,
      off: 0,
      imm: helperId(helper, this.#slot()),
    });
  }
  /** Call a subprogram started with {@link func}. */
  callSub(name: string): this {
    return this.#push({
      code: Class.JMP | JmpOp.call,
      dst: 0,
      src: Pseudo.CALL,
      off: 0,
      imm: 0,
      ref: { kind: 'subprog', name },
    });
  }
  /** Call a kernel function by BTF id (`off` selects the module BTF in fd_array, 0 for vmlinux). */
  callKfunc(btfId: number, fdArrayIndex = 0): this {
    return this.#push({
      code: Class.JMP | JmpOp.call,
      dst: 0,
      src: Pseudo.KFUNC_CALL,
      off: fdArrayIndex,
      imm: this.#imm(btfId),
    });
  }
  exit(): this {
    return this.#push({ code: Class.JMP | JmpOp.exit, dst: 0, src: 0, off: 0, imm: 0 });
  }

  // ---- memory --------------------------------------------------------------------------------

  /** `dst = *(size *)(src + off)`. */
  ldx(sz: SizeArg, dst: number, src: number, off: number): this {
    return this.#push({
      code: Class.LDX | Mode.MEM | sizeOf(sz),
      dst: this.#reg(dst),
      src: this.#reg(src),
      off,
      imm: 0,
    });
  }
  /** Sign-extending load: `dst = *(s8|s16|s32 *)(src + off)`. */
  ldxsx(sz: Exclude<SizeArg, 'dw' | 8>, dst: number, src: number, off: number): this {
    return this.#push({
      code: Class.LDX | Mode.MEMSX | sizeOf(sz),
      dst: this.#reg(dst),
      src: this.#reg(src),
      off,
      imm: 0,
    });
  }
  /** `*(size *)(dst + off) = imm`. */
  st(sz: SizeArg, dst: number, off: number, imm: number): this {
    return this.#push({
      code: Class.ST | Mode.MEM | sizeOf(sz),
      dst: this.#reg(dst),
      src: 0,
      off,
      imm: this.#imm(imm),
    });
  }
  /** `*(size *)(dst + off) = src`. */
  stx(sz: SizeArg, dst: number, off: number, src: number): this {
    return this.#push({
      code: Class.STX | Mode.MEM | sizeOf(sz),
      dst: this.#reg(dst),
      src: this.#reg(src),
      off,
      imm: 0,
    });
  }
  /** Atomic `*(size *)(dst + off) op= src`; with `fetch`, `src` receives the old value. */
  atomic(
    opName: 'add' | 'and' | 'or' | 'xor',
    sz: 'w' | 'dw' | 4 | 8,
    dst: number,
    off: number,
    src: number,
    opts: { fetch?: boolean } = {},
  ): this {
    const imm = Atomic[opName] | (opts.fetch ? Atomic.fetch : 0);
    return this.#push({
      code: Class.STX | Mode.ATOMIC | sizeOf(sz),
      dst: this.#reg(dst),
      src: this.#reg(src),
      off,
      imm,
    });
  }
  /** `src = xchg(*(size *)(dst + off), src)`. */
  xchg(sz: 'w' | 'dw' | 4 | 8, dst: number, off: number, src: number): this {
    return this.#push({
      code: Class.STX | Mode.ATOMIC | sizeOf(sz),
      dst: this.#reg(dst),
      src: this.#reg(src),
      off,
      imm: Atomic.xchg,
    });
  }
  /** `r0 = cmpxchg(*(size *)(dst + off), r0, src)`. */
  cmpxchg(sz: 'w' | 'dw' | 4 | 8, dst: number, off: number, src: number): this {
    return this.#push({
      code: Class.STX | Mode.ATOMIC | sizeOf(sz),
      dst: this.#reg(dst),
      src: this.#reg(src),
      off,
      imm: Atomic.cmpxchg,
    });
  }
  /** Legacy packet access (socket filters): `r0 = *(size *)skb[imm]`. */
  ldAbs(sz: Exclude<SizeArg, 'dw' | 8>, imm: number): this {
    return this.#push({
      code: Class.LD | Mode.ABS | sizeOf(sz),
      dst: 0,
      src: 0,
      off: 0,
      imm: this.#imm(imm),
    });
  }
  /** Legacy packet access: `r0 = *(size *)skb[src + imm]`. */
  ldInd(sz: Exclude<SizeArg, 'dw' | 8>, src: number, imm: number): this {
    return this.#push({
      code: Class.LD | Mode.IND | sizeOf(sz),
      dst: 0,
      src: this.#reg(src),
      off: 0,
      imm: this.#imm(imm),
    });
  }

  // ---- 64-bit immediates -----------------------------------------------------------------------

  #wide(dst: number, srcReg: number, value: bigint, ref?: Ref): this {
    const v = BigInt.asUintN(64, value);
    const insn: Insn = {
      code: LD_IMM64,
      dst: this.#reg(dst),
      src: srcReg,
      off: 0,
      imm: Number(BigInt.asIntN(32, v)),
      imm64Hi: Number(BigInt.asIntN(32, v >> 32n)),
    };
    if (ref) insn.ref = ref;
    return this.#push(insn);
  }
  /** `dst = imm64`. */
  ldImm64(dst: number, value: bigint | number): this {
    return this.#wide(dst, 0, BigInt(value));
  }
  /** `dst = &map` for the map named `name` (resolved to an fd when loaded). */
  ldMap(dst: number, name: string): this {
    return this.#wide(dst, Pseudo.MAP_FD, 0n, { kind: 'map', name });
  }
  /** `dst = &map.value[0] + offset` for an array map named `name` (direct value access). */
  ldMapValue(dst: number, name: string, offset = 0): this {
    return this.#wide(dst, Pseudo.MAP_VALUE, BigInt(offset) << 32n, { kind: 'mapValue', name, offset });
  }
  /** `dst = &map` for a map fd you already hold. */
  ldMapFd(dst: number, fd: number): this {
    return this.#wide(dst, Pseudo.MAP_FD, BigInt(fd));
  }
  /** `dst = &ksym` by vmlinux BTF id. */
  ldBtfId(dst: number, btfId: number): this {
    return this.#wide(dst, Pseudo.BTF_ID, BigInt(btfId));
  }
  /** `dst = &subprogram` (for callbacks such as bpf_loop). */
  ldFunc(dst: number, name: string): this {
    return this.#wide(dst, Pseudo.FUNC, 0n, { kind: 'func', name });
  }

  // ---- assembly ------------------------------------------------------------------------------

  /** Resolve labels and subprogram references. Map references stay symbolic (see {@link MapRef}). */
  assemble(): Assembled {
    return assemble(this.insns, this.#labels, this.#functions);
  }
}

/** Resolve label, subprogram and function references of `insns` against `labels` (insn indices). */
export function assemble(
  insns: readonly Insn[],
  labels: Map<string, number>,
  functions: Set<string> = new Set(),
): Assembled {
  const { at, total } = slotIndex(insns);
  const slotOf = (name: string, i: number): number => {
    const target = labels.get(name);
    if (target === undefined) throw new AsmError(`unresolved label '${name}'`, at[i]);
    return target < insns.length ? at[target]! : total;
  };
  const out: Insn[] = [];
  const mapRefs: MapRef[] = [];
  insns.forEach((insn, i) => {
    const copy: Insn = { ...insn };
    const ref = insn.ref;
    if (ref) {
      const here = at[i]!;
      switch (ref.kind) {
        case 'label': {
          const delta = slotOf(ref.name, i) - (here + 1);
          if (insn.code === (Class.JMP32 | JmpOp.ja)) copy.imm = delta;
          else {
            if (delta < -32768 || delta > 32767)
              throw new AsmError(
                `jump to '${ref.name}' is ${delta} slots away, beyond a 16-bit offset; use gotol`,
                here,
              );
            copy.off = delta;
          }
          break;
        }
        case 'subprog':
        case 'func':
          if (!functions.has(ref.name) && !labels.has(ref.name))
            throw new AsmError(`unresolved subprogram '${ref.name}'`, here);
          copy.imm = slotOf(ref.name, i) - (here + 1);
          break;
        case 'ksym':
        case 'kfunc':
          break;
        case 'map':
        case 'mapValue':
          mapRefs.push({
            insn: i,
            name: ref.name,
            kind: ref.kind,
            offset: ref.kind === 'mapValue' ? ref.offset : 0,
          });
          break;
      }
    }
    out.push(copy);
  });
  const slotLabels = new Map<string, number>();
  for (const [name, idx] of labels) slotLabels.set(name, idx < insns.length ? at[idx]! : total);
  const fnSlots = new Map<string, number>();
  for (const f of functions) fnSlots.set(f, slotLabels.get(f)!);
  return { insns: out, mapRefs, labels: slotLabels, functions: fnSlots };
}
