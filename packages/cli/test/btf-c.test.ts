// `bpfkit btf dump … --format c`: the header is checked by the compiler. The kernel's BTF becomes
// a vmlinux.h that our CO-RE fixtures compile against (clang -target bpf) and that reproduces
// every struct and union size the BTF states; each fixture object's own BTF (map definitions,
// function prototypes, pointers to arrays) compiles too.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Btf } from '@bpfkit/btf';
import { loadCollection, ObjectFile } from '@bpfkit/loader';
import { btfToC } from 'bpfkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = (p: string) => new URL(p, import.meta.url).pathname;
const bin = here('../dist/bin.js');
const multiarch = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' }[process.arch as 'x64' | 'arm64'];
const targetArch = { x64: 'x86', arm64: 'arm64' }[process.arch as 'x64' | 'arm64'];
const clang = (args: string[]) => spawnSync('clang', args, { encoding: 'utf8', maxBuffer: 1 << 26 });

/**
 * `_Static_assert`s of the size of every struct and union whose tag is unique in `btf` (C has one
 * namespace for struct, union and enum tags: a second one is renamed `name___2`). Types that
 * embed `__builtin_va_list` are left out: it is the compiler's, and a pointer on the BPF target.
 */
function sizeAsserts(btf: Btf): string {
  const tags = new Map<string, number>();
  for (const t of btf.types())
    if ((t.kind === 'struct' || t.kind === 'union' || t.kind === 'enum' || t.kind === 'enum64') && t.name)
      tags.set(t.name, (tags.get(t.name) ?? 0) + 1);
  const vaList = new Map<number, boolean>();
  const embedsVaList = (id: number): boolean => {
    const have = vaList.get(id);
    if (have !== undefined) return have;
    vaList.set(id, false);
    const t = btf.typeById(id);
    let r = false;
    if (t.kind === 'typedef') r = t.name === '__builtin_va_list' || embedsVaList(t.type);
    else if (t.kind === 'const' || t.kind === 'volatile' || t.kind === 'array') r = embedsVaList(t.type);
    else if (t.kind === 'struct' || t.kind === 'union') r = t.members.some((m) => embedsVaList(m.type));
    vaList.set(id, r);
    return r;
  };
  const out: string[] = [];
  for (const t of btf.types())
    if (
      (t.kind === 'struct' || t.kind === 'union') &&
      t.name &&
      tags.get(t.name) === 1 &&
      !embedsVaList(t.id)
    ) {
      out.push(`_Static_assert(sizeof(${t.kind} ${t.name}) == ${t.size}, "${t.kind} ${t.name}");`);
      for (const m of t.members)
        if (m.name && !m.bitSize)
          out.push(
            `_Static_assert(__builtin_offsetof(${t.kind} ${t.name}, ${m.name}) == ${m.bitOffset / 8}, "${t.name}.${m.name}");`,
          );
    }
  return out.join('\n');
}

describe('btf dump --format c', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bpfkit-btf-c-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("writes a vmlinux.h from the kernel's BTF that CO-RE programs compile against, with every size and offset right", () => {
    const r = spawnSync(process.execPath, [bin, 'btf', 'dump', 'vmlinux', '--format', 'c'], {
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const header = r.stdout;
    expect(header).toMatch(/^#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n/);
    expect(header).toContain(
      '#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)',
    );
    expect(header).toMatch(/\nstruct task_struct \{\n/);
    const include = join(dir, 'include');
    execFileSync('mkdir', ['-p', include]);
    writeFileSync(join(include, 'vmlinux.h'), header);
    const flags = ['-O2', '-g', '-target', 'bpf', '-mcpu=v3', `-D__TARGET_ARCH_${targetArch}`];
    flags.push(`-I/usr/include/${multiarch}`, `-I${include}`);

    // Every struct and union is the size the kernel's BTF says.
    const asserts = join(dir, 'sizes.c');
    writeFileSync(asserts, `#include "vmlinux.h"\n${sizeAsserts(Btf.fromFile('/sys/kernel/btf/vmlinux'))}\n`);
    const sized = clang([...flags, '-fsyntax-only', asserts]);
    expect(sized.stderr).toBe('');
    expect(sized.status).toBe(0);

    // The fixtures that include vmlinux.h compile against it; one loads, CO-RE and all.
    for (const src of [here('../../loader/test/fixtures/core.bpf.c'), here('../bpf/execsnoop.bpf.c')]) {
      const out = join(dir, basename(src).replace(/\.c$/, '.o'));
      const c = clang([...flags, '-c', src, '-o', out]);
      expect(c.stderr).toBe('');
      expect(c.status).toBe(0);
    }
    const built = ObjectFile.read(join(dir, 'execsnoop.bpf.o'));
    const shipped = ObjectFile.read(here('../bpf/execsnoop.bpf.o'));
    expect([...built.maps.keys()]).toEqual([...shipped.maps.keys()]);
    using c = loadCollection(built);
    expect(Object.keys(c.programs)).toEqual([...shipped.programs.keys()]);
  });

  it("turns each fixture object's BTF into a header that compiles, sizes checked", () => {
    const dirs = [here('../../loader/test/fixtures/'), here('../bpf/')];
    const objects = dirs.flatMap((d) =>
      readdirSync(d)
        .filter((f) => f.endsWith('.bpf.o'))
        .map((f) => join(d, f)),
    );
    for (const o of objects) {
      const btf = ObjectFile.read(o).btf!;
      const file = join(dir, `${basename(o)}.c`);
      writeFileSync(file, `${btfToC(btf, { guard: '__OBJ_H__' })}\n${sizeAsserts(btf)}\n`);
      const c = clang(['-target', 'bpf', '-fsyntax-only', file]);
      expect({ object: basename(o), stderr: c.stderr }).toEqual({ object: basename(o), stderr: '' });
      expect(c.status).toBe(0);
    }
  });

  it('--format c takes no --type, an unknown format is a usage error, a missing --type a failure', () => {
    const withType = spawnSync(
      process.execPath,
      [bin, 'btf', 'dump', 'vmlinux', '--format', 'c', '--type', 'x'],
      {
        encoding: 'utf8',
      },
    );
    expect(withType.status).toBe(2);
    expect(withType.stderr).toContain('--format c writes every type');
    expect(spawnSync(process.execPath, [bin, 'btf', 'dump', 'vmlinux', '--format', 'go']).status).toBe(2);
    const missing = spawnSync(
      process.execPath,
      [bin, 'btf', 'dump', 'vmlinux', '--type', 'bpfkit_no_such_type'],
      {
        encoding: 'utf8',
      },
    );
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe("bpfkit: no type named 'bpfkit_no_such_type' in vmlinux's BTF\n");
  });
});
