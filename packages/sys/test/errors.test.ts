import { execFileSync } from 'node:child_process';
import { BpfCmd, BpfError, errnoName, NotSupportedError } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';

describe('BpfError', () => {
  it('names command, errno and a hint', () => {
    const e = new BpfError(BpfCmd.OBJ_GET, 2, '/sys/fs/bpf/x');
    expect(e).toBeInstanceOf(Error);
    expect(e.cmd).toBe('BPF_OBJ_GET');
    expect(e.code).toBe('ENOENT');
    expect(e.errno).toBe(2);
    expect(e.message).toBe(
      'BPF_OBJ_GET (/sys/fs/bpf/x) failed: ENOENT (No such file or directory) — nothing is pinned at that path',
    );
    expect(errnoName(1)).toBe('EPERM');
  });

  it('gives EPERM with a capabilities hint to a process without privileges', () => {
    const script = `
      process.setgid(65534); process.setuid(65534);
      const { mapFdById, MapType, mapCreate } = await import('@bpfkit/sys');
      const out = [];
      for (const f of [() => mapFdById(1), () => mapCreate({ mapType: MapType.HASH, keySize: 4, valueSize: 4, maxEntries: 1 })]) {
        try { f(); out.push('ok'); } catch (e) { out.push({ code: e.code, cmd: e.cmd, name: e.name, hint: e.hint }); }
      }
      console.log(JSON.stringify(out));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: new URL('..', import.meta.url),
      encoding: 'utf8',
    });
    const [byId, create] = JSON.parse(out);
    expect(byId).toMatchObject({ code: 'EPERM', cmd: 'BPF_MAP_GET_FD_BY_ID', name: 'BpfError' });
    expect(byId.hint).toMatch(/CAP_BPF.*CAP_SYS_ADMIN/);
    expect(create).toMatchObject({ code: 'EPERM', cmd: 'BPF_MAP_CREATE' });
  });

  it('NotSupportedError names the feature, this kernel and the first kernel with it', () => {
    const e = new NotSupportedError('map type arena', '6.9');
    expect(e.message).toMatch(
      /^map type arena is not supported by this kernel \(Linux .+\); it first appeared in Linux 6\.9$/,
    );
  });
});
