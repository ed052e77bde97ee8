// Where a uprobe's binary is: a path as given, a program name looked up on PATH, or a shared
// library name (`libc.so.6`) looked up in the dynamic linker's cache (/etc/ld.so.cache), as
// libbpf resolves them; and where in that file an address is (uprobes take file offsets).
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { ElfSection } from '@bpfkit/loader';

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

/**
 * The file offset of virtual address `addr` of an ELF executable or library, as the uprobe PMU
 * takes it: through section `index` when a symbol names it, otherwise the loaded section with
 * file contents (not NOBITS) that holds the address.
 */
export function fileOffset(
  sections: readonly Pick<ElfSection, 'addr' | 'offset' | 'size' | 'type'>[],
  addr: number | bigint,
  index?: number,
): number {
  const a = Number(addr);
  const sec =
    index !== undefined
      ? sections[index]
      : sections.find((s) => s.addr !== 0 && s.type !== 8 /* NOBITS */ && a >= s.addr && a < s.addr + s.size);
  if (!sec)
    throw new TypeError(
      index !== undefined
        ? `address 0x${a.toString(16)} points at section ${index}, which does not exist`
        : `address 0x${a.toString(16)} lies in no section of the file`,
    );
  return a - sec.addr + sec.offset;
}
