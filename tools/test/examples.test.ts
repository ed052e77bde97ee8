// Every program in examples/ runs to completion and shows what it promises.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';

const dir = new URL('../../examples/', import.meta.url).pathname;
// the limit only catches a hang: on a busy machine loading an object may take many seconds
const run = (...args: string[]) =>
  spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', timeout: 300_000 });

describe('examples', () => {
  it('cgroup-packet-counter counts five datagrams', () => {
    const r = run('cgroup-packet-counter.mjs');
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/sent 5 packets, 640 bytes/);
  });

  it('trace-exec sees an exec, and stops on Ctrl-C', async () => {
    // it would trace for ten minutes: its own exec shows up, then Ctrl-C ends it cleanly
    const child = spawn(process.execPath, ['trace-exec.mjs', '600'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const closed = once(child, 'close');
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        if (/true: \/bin\/true/.test(out)) resolve();
      });
      closed.then(() => reject(new Error(`ended before the exec showed: ${out}${err}`)));
    });
    child.kill('SIGINT');
    const [code, signal] = await closed;
    expect(err).toBe('');
    expect([code, signal]).toEqual([0, null]);
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
