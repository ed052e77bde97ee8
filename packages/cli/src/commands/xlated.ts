// `prog dump xlated`: a loaded program's translated instructions the way bpftool prints them,
// with function signatures and source lines from its BTF, and calls named from kallsyms.
import { decode, disassemble, type Insn, Pseudo } from '@bpfkit/asm';
import { type Btf, type BtfType, btfFromKernel } from '@bpfkit/btf';
import { kallsyms, kallsymsAt } from '@bpfkit/loader';
import { type ProgInfoDetail, progFdById, progInfo } from '@bpfkit/sys';

const CALL = 0x85;
const signed = (v: number) => (v < 0 ? `${v}` : `+${v}`);

/** A type as bpftool writes it before a name: `int `, `struct __sk_buff * `, `const char * `. */
function typePrefix(btf: Btf, id: number, depth = 0): string {
  if (id === 0) return 'void ';
  if (depth > 32) return '? ';
  const t: BtfType = btf.typeById(id);
  switch (t.kind) {
    case 'ptr':
      return `${typePrefix(btf, t.type, depth + 1)}* `;
    case 'const':
    case 'volatile':
    case 'restrict':
      return `${t.kind} ${typePrefix(btf, t.type, depth + 1)}`;
    case 'type_tag':
      return typePrefix(btf, t.type, depth + 1);
    case 'struct':
    case 'union':
    case 'enum':
      return `${t.kind} ${t.name || '(anon)'} `;
    case 'enum64':
      return `enum ${t.name || '(anon)'} `;
    case 'fwd':
      return `${t.union ? 'union' : 'struct'} ${t.name} `;
    default:
      return `${t.name || '(anon)'} `;
  }
}

/** A BTF FUNC as bpftool prints it above the function's first instruction: `int f(struct x * ctx)`. */
export function funcSignature(btf: Btf, funcTypeId: number): string {
  const fn = btf.typeById(funcTypeId);
  if (fn.kind !== 'func') return `${fn.name}()`;
  const proto = btf.typeById(fn.type);
  if (proto.kind !== 'func_proto') return `${fn.name}()`;
  const params = proto.params.map((p) =>
    p.type === 0 && !p.name ? '...' : `${typePrefix(btf, p.type)}${p.name}`.trimEnd(),
  );
  return `${typePrefix(btf, proto.returnType)}${fn.name}(${params.join(', ')})`;
}

export interface XlatedOptions {
  /** Add each source line's file, line and column (bpftool's `linum`). */
  linum?: boolean;
  /** Read symbols from this file instead of /proc/kallsyms. */
  kallsymsPath?: string;
}

/** The text of `bpftool prog dump xlated id <id> [linum]` for a loaded program. */
export function xlatedText(info: ProgInfoDetail, opts: XlatedOptions = {}): string {
  if (!info.xlatedInsns?.length)
    throw new Error(
      `program ${info.id} shows no instructions (needs CAP_SYS_ADMIN; kernel.kptr_restrict may hide them)`,
    );
  const insns = decode(info.xlatedInsns);
  const btf = info.btfId ? btfFromKernel(info.btfId) : undefined;
  const path = opts.kallsymsPath ?? '/proc/kallsyms';
  // Helper and kfunc calls hold their target relative to __bpf_call_base; subprogram calls name
  // their JITed image by index. Both are named from kallsyms, as bpftool does.
  const base = kallsyms(new Set(['__bpf_call_base']), path).get('__bpf_call_base');
  const ksyms = info.jitedKsyms ?? [];
  const target = (insn: Insn): bigint | undefined => {
    if (insn.code !== CALL) return undefined;
    if (insn.src === Pseudo.CALL) return ksyms[insn.imm];
    return base === undefined || base === 0n ? undefined : base + BigInt(insn.imm);
  };
  const wanted = new Set<bigint>();
  for (const insn of insns) {
    const a = target(insn);
    if (a !== undefined) wanted.add(a);
  }
  const names = kallsymsAt(wanted, path);
  const callName = (insn: Insn): string | undefined => {
    const a = target(insn);
    if (insn.src === Pseudo.CALL) {
      if (a === undefined) return ksyms.length ? undefined : signed(insn.off);
      return `${signed(insn.off)}#${names.get(a) ?? `0x${a.toString(16)}`}`;
    }
    if (a === undefined) return undefined;
    return names.get(a) ?? `0x${a.toString(16)}`;
  };
  const funcs = new Map<number, number>();
  for (const f of info.funcInfo ?? []) funcs.set(f.insnOff, f.typeId);
  const lines = new Map<number, string>();
  if (btf)
    for (const l of info.lineInfo ?? []) {
      if (lines.has(l.insnOff)) continue;
      const text = btf.raw.name(l.lineOff).trimStart();
      const where = opts.linum
        ? ` [file:${btf.raw.name(l.fileNameOff)} line_num:${l.line} line_col:${l.col}]`
        : '';
      lines.set(l.insnOff, `; ${text}${where}`);
    }
  const before = (slot: number): string[] => {
    const out: string[] = [];
    const fn = funcs.get(slot);
    if (btf && fn !== undefined) out.push(`${funcSignature(btf, fn)}:`);
    const line = lines.get(slot);
    if (line !== undefined) out.push(line);
    return out;
  };
  return disassemble(insns, { xlated: true, callName, before });
}

/** `bpfkit prog dump xlated <id> [linum]`. */
export function progDumpXlated(id: number, opts: XlatedOptions = {}): string {
  using fd = progFdById(id);
  return xlatedText(progInfo(fd, { insns: true, lineInfo: true, jitedKsyms: true }), opts);
}
