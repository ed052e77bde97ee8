import { existsSync, readFileSync } from 'node:fs';
import { Btf, type BtfType, btfFromKernel } from '@bpfkit/btf';
import { parseElf } from '@bpfkit/loader';
import { btfToC } from '../codegen/c.js';
import type { OutputOptions } from '../output.js';
import { CliError } from './objects.js';

/** BTF by object id, from a raw BTF file (/sys/kernel/btf/...) or from an ELF object's .BTF. */
export function readBtf(target: string): Btf {
  if (/^\d+$/.test(target)) return btfFromKernel(Number(target));
  if (target === 'vmlinux') target = '/sys/kernel/btf/vmlinux';
  if (!existsSync(target))
    throw new CliError(`no BTF '${target}': give a BTF id, a BTF file or an object file`, 2);
  const bytes = readFileSync(target);
  if (bytes[0] === 0x7f && bytes[1] === 0x45) {
    const sec = parseElf(bytes).section('.BTF');
    if (!sec) throw new CliError(`${target} has no .BTF section (compile with -g)`);
    return Btf.parse(sec.data);
  }
  const base =
    target.startsWith('/sys/kernel/btf/') && !target.endsWith('/vmlinux') ? Btf.kernel() : undefined;
  return Btf.parse(bytes, base);
}

/** One type the way `bpftool btf dump` prints it. */
export function formatType(t: BtfType): string {
  const q = (s: string) => `'${s || '(anon)'}'`;
  const head = `[${t.id}] ${t.kind.toUpperCase()} ${q(t.name)}`;
  switch (t.kind) {
    case 'int':
      return `${head} size=${t.size} bits_offset=${t.offset} nr_bits=${t.bits} encoding=${t.bool ? 'BOOL' : t.char ? 'CHAR' : t.signed ? 'SIGNED' : '(none)'}`;
    case 'ptr':
    case 'typedef':
    case 'volatile':
    case 'const':
    case 'restrict':
    case 'type_tag':
      return `${head} type_id=${t.type}`;
    case 'array':
      return `${head} type_id=${t.type} index_type_id=${t.indexType} nr_elems=${t.nelems}`;
    case 'struct':
    case 'union':
      return [
        `${head} size=${t.size} vlen=${t.members.length}`,
        ...t.members.map(
          (m) =>
            `\t${q(m.name)} type_id=${m.type} bits_offset=${m.bitOffset}${m.bitSize ? ` bitfield_size=${m.bitSize}` : ''}`,
        ),
      ].join('\n');
    case 'enum':
    case 'enum64':
      return [
        `${head} encoding=${t.signed ? 'SIGNED' : 'UNSIGNED'} size=${t.size} vlen=${t.values.length}`,
        ...t.values.map((v) => `\t${q(v.name)} val=${v.value}`),
      ].join('\n');
    case 'fwd':
      return `${head} fwd_kind=${t.union ? 'union' : 'struct'}`;
    case 'func':
      return `${head} type_id=${t.type} linkage=${['static', 'global', 'extern'][t.linkage] ?? t.linkage}`;
    case 'func_proto':
      return [
        `${head} ret_type_id=${t.returnType} vlen=${t.params.length}`,
        ...t.params.map((p) => `\t${q(p.name)} type_id=${p.type}`),
      ].join('\n');
    case 'var':
      return `${head} type_id=${t.type}, linkage=${['static', 'global-alloc', 'global-extern'][t.linkage] ?? t.linkage}`;
    case 'datasec':
      return [
        `${head} size=${t.size} vlen=${t.vars.length}`,
        ...t.vars.map((v) => `\ttype_id=${v.type} offset=${v.offset} size=${v.size}`),
      ].join('\n');
    case 'float':
      return `${head} size=${t.size}`;
    case 'decl_tag':
      return `${head} type_id=${t.type} component_idx=${t.componentIdx}`;
    default:
      return head;
  }
}

export function btfDump(target: string, opts: OutputOptions & { type?: string; format?: string }): void {
  const btf = readBtf(target);
  if (opts.format === 'c') {
    if (opts.type || opts.json)
      throw new CliError('--format c writes every type: it takes neither --type nor --json', 2);
    process.stdout.write(btfToC(btf));
    return;
  }
  const types = [...btf.types()].filter((t) => !opts.type || t.name === opts.type);
  if (opts.type && types.length === 0) throw new CliError(`no type named '${opts.type}' in ${target}'s BTF`);
  if (opts.json) console.log(JSON.stringify(types, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2));
  else for (const t of types) console.log(formatType(t));
}
