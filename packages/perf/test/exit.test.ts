// Issue 13: a pending read never keeps a thread or the process from ending.
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
// Loaded here, as an app that starts bpfkit workers does: the thread that creates a worker closes
// the fds it leaves open when terminate() ends it (no JavaScript runs in the worker then).
import '@bpfkit/sys';
import { describe, expect, it } from 'vitest';

const script = new URL('./fixtures/pending-read.mjs', import.meta.url);

describe('pending reads and the end of a thread', () => {
  it('process.exit() with a PerfReader.read() and a RingBufReader.read() pending exits (child process)', () => {
    // The timeout only catches the hang this test is about.
    const run = spawnSync(process.execPath, [script.pathname], { encoding: 'utf8', timeout: 280_000 });
    expect(run.signal).toBeNull();
    expect(run.stdout.trim()).toBe('exiting');
    expect(run.status).toBe(3);
  });

  it('worker.terminate() with reads pending resolves, and the worker’s fds are closed', async () => {
    const before = new Set((await import('node:fs')).readdirSync('/proc/self/fd'));
    const w = new Worker(script);
    const exited = new Promise<number>((r) => w.once('exit', r));
    await new Promise<void>((resolve, reject) => {
      w.once('error', reject);
      w.on('message', (m) => m === 'reading' && resolve());
    });
    await w.terminate();
    expect(await exited).toBe(1);
    const { readdirSync, readlinkSync } = await import('node:fs');
    const left = readdirSync('/proc/self/fd')
      .filter((f) => !before.has(f))
      .map((f) => {
        try {
          return readlinkSync(`/proc/self/fd/${f}`);
        } catch {
          return '';
        }
      })
      .filter((t) => t.startsWith('anon_inode:'));
    expect(left).toEqual([]);
  });
});
