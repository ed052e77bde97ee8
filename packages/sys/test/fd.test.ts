import { spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { ClosedError, Fd, MapType, mapCreate } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';
import { leakedFds, openFds } from '../../../tools/vitest/fds.js';

const target = (fd: number) => readlinkSync(`/proc/self/fd/${fd}`);

describe('Fd', () => {
  it('owns one kernel fd: close is idempotent, use after close throws, dispose closes', () => {
    const fd = mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 });
    const n = fd.value;
    expect(target(n)).toBe('anon_inode:bpf-map');
    fd.close();
    fd.close();
    expect(fd.closed).toBe(true);
    expect(() => fd.value).toThrow(ClosedError);
    expect(() => target(n)).toThrow();
    let held: Fd | undefined;
    {
      using scoped = mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 });
      expect(scoped.closed).toBe(false);
      held = scoped;
    }
    expect(held.closed).toBe(true);
  });

  it('dup gives an independent owner; release hands the number out', () => {
    using a = mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 });
    using b = a.dup();
    expect(b.value).not.toBe(a.value);
    a.close();
    expect(target(b.value)).toBe('anon_inode:bpf-map');
    const c = b.dup();
    const raw = c.release();
    expect(c.closed).toBe(true);
    new Fd(raw).close();
    expect(() => new Fd(-1)).toThrow(RangeError);
  });

  it('closes a forgotten fd when it is garbage-collected (unless persistent), and can say where it was made', () => {
    const script = `
      import { MapType, mapCreate } from '@bpfkit/sys';
      import { readdirSync, readlinkSync } from 'node:fs';
      const count = () => readdirSync('/proc/self/fd').filter((f) => { try { return readlinkSync('/proc/self/fd/' + f) === 'anon_inode:bpf-map'; } catch { return false; } }).length;
      (() => { for (let i = 0; i < 10; i++) mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 }); })();
      (() => { for (let i = 0; i < 2; i++) mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 }).persistent(); })();
      const before = count();
      // finalizers run in a task after a collection: collect and yield until they have (bounded by rounds)
      for (let i = 0; i < 100 && count() > 2; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
      console.log(JSON.stringify({ before, after: count() }));
    `;
    const run = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
      cwd: new URL('..', import.meta.url),
      env: { ...process.env, BPFKIT_LEAK_TRACE: '1' },
      encoding: 'utf8',
    });
    expect(run.status).toBe(0);
    const { before, after } = JSON.parse(run.stdout.trim().split('\n').pop()!);
    expect(before).toBe(12);
    expect(after).toBe(2); // persistent fds (links, program arrays) are never closed by the collector
    expect(run.stderr).toMatch(
      /bpf-map \(fd \d+\) was never closed; the collector closed it; created at\n\s+at /,
    );
    expect(run.stderr).toMatch(/was never closed; the collector left it open/);
  });
});

describe('the fd leak check used by every test', () => {
  it('reports an fd opened and not closed, and nothing once it is closed', () => {
    const before = openFds();
    const fd = mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 });
    const leaks = leakedFds(before, openFds());
    expect(leaks).toEqual([{ fd: fd.value, target: 'anon_inode:bpf-map' }]);
    fd.close();
    expect(leakedFds(before, openFds())).toEqual([]);
  });
});
