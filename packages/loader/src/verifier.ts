import { disassemble, type Insn, slotIndex } from '@bpfkit/asm';
import { BpfError } from '@bpfkit/sys';

/** The verifier rejected a program. Carries the whole log and, where it names one, the offending instruction. */
export class VerifierError extends BpfError {
  override name = 'VerifierError';
  /** The complete verifier log. */
  readonly log: string;
  /** Slot index of the instruction the log complains about last, if any. */
  readonly insnIndex: number | undefined;
  /** That instruction disassembled with its neighbours (`>` marks it). */
  readonly excerpt: string | undefined;
  /** True only when the log hit the kernel's maximum size and lost its beginning. */
  readonly truncated: boolean;

  constructor(
    cause: BpfError,
    detail: string,
    log: string,
    insns: readonly Insn[] | undefined,
    truncated: boolean,
  ) {
    const insnIndex = lastInsnIndex(log);
    const excerpt = insns && insnIndex !== undefined ? excerptAround(insns, insnIndex) : undefined;
    const tail = logTail(log);
    super(
      'BPF_PROG_LOAD',
      cause.errno,
      detail,
      `verifier: ${tail}${insnIndex !== undefined ? ` (at instruction ${insnIndex})` : ''}${excerpt ? `\n${excerpt}` : ''}`,
    );
    this.log = log;
    this.insnIndex = insnIndex;
    this.excerpt = excerpt;
    this.truncated = truncated;
  }
}

/** The last instruction index the verifier printed (`12: (85) call ...`). */
export function lastInsnIndex(log: string): number | undefined {
  let found: number | undefined;
  for (const m of log.matchAll(/^(\d+): \(/gm)) found = Number(m[1]);
  return found;
}

/** The last lines that say what went wrong (skipping the statistics trailer). */
export function logTail(log: string, lines = 2): string {
  const useful = log
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^processed \d+ insns|^verification time|^stack depth|^\d+: \(|^; /.test(l));
  return useful.slice(-lines).join(' | ') || 'the program was rejected (empty log)';
}

/** Disassembly of `insns` around slot `index`, the instruction itself marked with `>`. */
export function excerptAround(insns: readonly Insn[], index: number, radius = 3): string {
  const { at } = slotIndex(insns);
  const pos = at.indexOf(index);
  if (pos < 0) return '';
  const from = Math.max(0, pos - radius);
  const lines = disassemble(insns).split('\n');
  return lines
    .slice(from, Math.min(lines.length, pos + radius + 1))
    .map((l, i) => (from + i === pos ? `> ${l}` : `  ${l}`))
    .join('\n');
}
