// Every program in examples/ runs to completion and shows what it promises.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const dir = new URL('../../examples/', import.meta.url).pathname;
const run = (...args: string[]) =>
  spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', timeout: 30_000 });

describe('examples', () => {
  it('cgroup-packet-counter counts five datagrams', () => {
    const r = run('cgroup-packet-counter.mjs');
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/sent 5 packets, 640 bytes/);
  });

  it('trace-exec sees an exec', () => {
    const r = run('trace-exec.mjs', '1');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/true: \/bin\/true/);
  });

  it('pin-map-for-another-process reads what the other process wrote', () => {
    const r = run('pin-map-for-another-process.mjs');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^(\d+): hello from process \1$/m);
  });

  it('unit-test-xdp passes under node --test', () => {
    const r = run('--test', 'unit-test-xdp.test.mjs');
    expect(r.stdout).toMatch(/# pass 1/);
    expect(r.status).toBe(0);
  });
});
