import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { ObjectFile } from '@bpfkit/loader';
import { generateTs } from 'bpfkit';
import { describe, expect, it } from 'vitest';

describe('generated TypeScript', () => {
  const obj = ObjectFile.read(new URL('../../loader/test/fixtures/maps.bpf.o', import.meta.url).pathname);
  const btf = obj.btf!;
  const stats = btf.find('stats', 'struct');

  it('generates @bpfkit/maps codecs that match the C layout', async () => {
    const { code, names } = generateTs(btf, [stats.id]);
    expect(names.get(stats.id)).toBe('stats');
    expect(code).toContain('export type Stats = ValueOf<typeof stats>;');
    const dir = new URL('./.gen/', import.meta.url);
    mkdirSync(dir, { recursive: true });
    const file = new URL('stats.ts', dir);
    writeFileSync(file, code);
    try {
      const mod = await import(file.pathname);
      expect(mod.stats.size).toBe(stats.size);
      expect(mod.stats.offsets).toEqual({ packets: 0, bytes: 8, last_len: 16, seen: 20 });
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
