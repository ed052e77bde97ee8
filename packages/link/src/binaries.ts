// Where a uprobe's binary is: a path as given, a program name looked up on PATH, or a shared
// library name (`libc.so.6`) looked up in the dynamic linker's cache (/etc/ld.so.cache), as
// libbpf resolves them; and where in the file a function or variable of it is (the file offsets
// uprobes take), by name or by glob.
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { type ElfSection, parseElf, SHN_UNDEF, STT } from '@bpfkit/loader';
import { closeNames, globPattern } from './ksyms.js';

const CACHE_MAGIC = 'glibc-ld.so.cache1.1';
/** struct cache_file_new: magic+version (20), nlibs, len_strings, flags + 3 pad, extension_offset, 3 unused. */
const HEADER = 48;
/** struct file_entry_new: flags (i32), key, value, osversion (u32), hwcap (u64). */
const ENTRY = 24;

/** The libraries of /etc/ld.so.cache (new format): name → path, the first for each name (the cache's order of preference). */
export function ldSoCache(file = '/etc/ld.so.cache'): Map<string, string> {
  const out = new Map<string, string>();
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch {
    return out;
  }
  const start = data.indexOf(CACHE_MAGIC, 0, 'latin1');
  if (start < 0 || data.length < start + HEADER) return out;
  const nlibs = data.readUInt32LE(start + 20);
  const str = (off: number) => {
    const at = start + off;
    const end = data.indexOf(0, at);
    return data.toString('utf8', at, end < 0 ? data.length : end);
  };
  for (let i = 0; i < nlibs; i++) {
    const e = start + HEADER + i * ENTRY;
    if (e + ENTRY > data.length) break;
    const name = str(data.readUInt32LE(e + 4));
    if (!out.has(name)) out.set(name, str(data.readUInt32LE(e + 8)));
  }
  return out;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The path of a uprobe target: `binary` itself when it has a `/`; a library name (`libc.so.6`,
 * anything with `.so`) from the ld.so cache; otherwise the first executable of that name on PATH.
 */
export function resolveBinary(binary: string, env: NodeJS.ProcessEnv = process.env): string {
  if (binary.includes('/')) return binary;
  if (/\.so(\.|$)/.test(binary)) {
    const path = ldSoCache().get(binary);
    if (!path) throw new TypeError(`no library '${binary}' in /etc/ld.so.cache (give its path)`);
    return path;
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const path = join(dir, binary);
    if (executable(path)) return path;
  }
  throw new TypeError(`no program '${binary}' on PATH (give its path)`);
}

const SHT_NOBITS = 8;

type FileSection = Pick<ElfSection, 'addr' | 'offset' | 'size' | 'type'>;

/**
 * The file offset of virtual address `addr` of an ELF executable or library, as the uprobe PMU
 * takes it: through section `index` when a symbol names it, otherwise the loaded section with
 * file contents (not NOBITS) that holds the address.
 */
export function fileOffset(sections: readonly FileSection[], addr: bigint | number, index?: number): number {
  const a = Number(addr);
  if (index !== undefined) {
    const sec = sections[index];
    if (!sec)
      throw new TypeError(`address 0x${a.toString(16)} points at section ${index}, which does not exist`);
    return a - sec.addr + sec.offset;
  }
  const at = fileOffsetOrUndefined(sections, a);
  if (at === undefined) throw new TypeError(`address 0x${a.toString(16)} lies in no section of the file`);
  return at;
}

function fileOffsetOrUndefined(sections: readonly FileSection[], a: number): number | undefined {
  const sec = sections.find(
    (s) => s.addr !== 0 && s.type !== SHT_NOBITS && a >= s.addr && a < s.addr + s.size,
  );
  return sec && a - sec.addr + sec.offset;
}

/**
 * The defined functions (or variables) of an ELF executable or shared library, name → file
 * offset: the symbol table first, then the dynamic symbols (the first of each name wins). Symbols
 * with no bytes in the file (.bss) are left out: nothing there can be probed or counted.
 */
export function binarySymbols(binary: string, kind: 'func' | 'object' = 'func'): Map<string, number> {
  const elf = parseElf(readFileSync(binary), { anyMachine: true });
  const type = kind === 'func' ? STT.FUNC : STT.OBJECT;
  const out = new Map<string, number>();
  for (const s of [...elf.symbols, ...elf.dynamicSymbols]) {
    if (s.type !== type || s.shndx === SHN_UNDEF || s.value === 0 || !s.name || out.has(s.name)) continue;
    const at = fileOffsetOrUndefined(elf.sections, s.value);
    if (at !== undefined) out.set(s.name, at);
  }
  return out;
}

/** No function (or variable) of that name, or none matching a pattern, in a binary; with close names. */
export class SymbolNotFoundError extends TypeError {
  override name = 'SymbolNotFoundError';
  constructor(
    readonly binary: string,
    /** The name, or the glob pattern. */
    readonly symbol: string,
    readonly suggestions: readonly string[] = [],
    readonly kind: 'func' | 'object' = 'func',
    pattern = false,
  ) {
    const what = kind === 'func' ? 'function' : 'variable';
    super(
      `${pattern ? `no ${what} matching '${symbol}'` : `no ${what} '${symbol}'`} in ${binary}${suggestions.length ? `; did you mean ${suggestions.join(', ')}?` : ''}`,
    );
  }
}

/** The file offset of each name in `symbols` (of a table from {@link binarySymbols}); a missing one is a {@link SymbolNotFoundError} with close names. */
export function symbolOffsets(
  binary: string,
  symbols: readonly string[],
  table: Map<string, number> = binarySymbols(binary),
  kind: 'func' | 'object' = 'func',
): number[] {
  return symbols.map((name) => {
    const at = table.get(name);
    if (at === undefined) throw new SymbolNotFoundError(binary, name, closeNames(name, table.keys()), kind);
    return at;
  });
}

/** The functions of `binary` whose names match the glob `pattern` (`*`, `?`), sorted by name, with their file offsets. */
export function matchSymbols(
  binary: string,
  pattern: string,
  table: Map<string, number> = binarySymbols(binary),
): { name: string; offset: number }[] {
  const re = globPattern(pattern);
  const out = [...table]
    .filter(([name]) => re.test(name))
    .map(([name, offset]) => ({ name, offset }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (out.length === 0) throw new SymbolNotFoundError(binary, pattern, [], 'func', true);
  return out;
}
