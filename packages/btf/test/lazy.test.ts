// The kernel's BTF is indexed lazily: a lookup decodes only the types it reaches, and what it
// finds is exactly what the eager parse of the same bytes finds.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { Btf } from '@bpfkit/btf';
import { describe, expect, it } from 'vitest';
import { BlobWriter } from '../../../tools/testing/btf.js';

const vmlinux = readFileSync('/sys/kernel/btf/vmlinux');

describe('lazy BTF', () => {
  it('agrees with the eager parse type by type, and by name', () => {
    const eager = Btf.parse(vmlinux);
    const lazy = Btf.parse(vmlinux, undefined, { lazy: true });
    expect(lazy.raw.decoded).toBe(1); // void only: nothing decoded by indexing
    expect(lazy.typeCount).toBe(eager.typeCount);
    // names first (they must not need decoded types), then every type
    const names = new Map<string, number[]>();
    for (const t of eager.types()) if (t.name) names.set(t.name, [...(names.get(t.name) ?? []), t.id]);
    expect(lazy.findAll('task_struct', 'struct').map((t) => t.id)).toEqual(
      eager.findAll('task_struct', 'struct').map((t) => t.id),
    );
    expect(lazy.raw.decoded).toBeLessThan(10);
    // every name and every type, compared in one deep comparison (an expect per type costs
    // minutes under TCG); a difference is then reported for the first name or type that differs
    const byName = [...names.keys()].map((name) => lazy.findAll(name).map((t) => t.id));
    if (!isDeepStrictEqual(byName, [...names.values()]))
      for (const [i, [name, ids]] of [...names].entries()) expect(byName[i], name).toEqual(ids);
    expect(lazy.findAll('no_such_type_bpfkit')).toEqual([]);
    expect(lazy.findAll('')).toEqual([]);
    const eagerTypes = [...eager.types()];
    const lazyTypes = eagerTypes.map((t) => lazy.typeById(t.id));
    if (!isDeepStrictEqual(lazyTypes, eagerTypes))
      for (const [i, t] of eagerTypes.entries()) expect(lazyTypes[i], `type ${t.id}`).toEqual(t);
    expect(lazyTypes.length).toBeGreaterThan(1000);
    expect(lazy.raw.decoded).toBe(lazy.typeCount);
  });

  it('answers by kind from a per-kind index exactly as the eager parse does', () => {
    const eager = Btf.parse(vmlinux);
    const lazy = Btf.parse(vmlinux, undefined, { lazy: true });
    for (const kind of ['struct', 'union', 'enum', 'func', 'typedef'] as const) {
      const byName = new Map<string, number[]>();
      for (const t of eager.types())
        if (t.kind === kind && t.name) byName.set(t.name, [...(byName.get(t.name) ?? []), t.id]);
      expect(byName.size, kind).toBeGreaterThan(10);
      // every name of the smaller kinds, every 16th function (a TCG guest is slow, and the index
      // is the same code for every kind)
      if (kind === 'func')
        for (const [i, name] of [...byName.keys()].entries()) if (i % 16) byName.delete(name);
      for (const [name, ids] of byName)
        expect(
          lazy.findAll(name, kind).map((t) => t.id),
          `${kind} ${name}`,
        ).toEqual(ids);
      expect(lazy.findAll('task_struct', kind).length).toBe(kind === 'struct' ? 1 : 0);
    }
    // only the types looked up were decoded
    expect(lazy.raw.decoded).toBeLessThan(lazy.typeCount);
  });

  it('finds a name stored as the tail of a longer string', () => {
    // one string 'xtask' (an int's name) whose tail, 'task', is the name of a fwd
    const w = new BlobWriter().type('xtask', 1, 0, 4, [32]);
    w.types.push(w.str('xtask') + 1, 7 << 24, 0);
    const blob = w.build();
    const lazy = Btf.parse(blob, undefined, { lazy: true });
    expect(lazy.findAll('task').map((t) => t.kind)).toEqual(['fwd']);
    expect(lazy.findAll('xtask').map((t) => t.kind)).toEqual(['int']);
  });

  it('a CO-RE load decodes a small part of the kernel’s BTF', () => {
    const script = `
      import { Btf } from '@bpfkit/btf';
      import { loadCollection } from '@bpfkit/loader';
      const c = loadCollection(${JSON.stringify(new URL('../../loader/test/fixtures/core.bpf.o', import.meta.url).pathname)}, { constants: { target_tgid: 1 } });
      c.close();
      const k = Btf.kernel();
      console.log(JSON.stringify({ decoded: k.raw.decoded, count: k.typeCount }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: new URL('../../loader/', import.meta.url),
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    const { decoded, count } = JSON.parse(r.stdout);
    expect(count).toBeGreaterThan(10_000);
    expect(decoded).toBeGreaterThan(1);
    expect(decoded).toBeLessThan(count / 20); // well under 5% of the kernel's types
  });
});
