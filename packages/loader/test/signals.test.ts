// A process under a CPU profiler gets SIGPROF every few microseconds; the verifier gives up with
// EAGAIN whenever a signal is pending. Loading must still succeed every time.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const execsnoop = new URL('../../cli/bpf/execsnoop.bpf.o', import.meta.url).pathname;
const bigObject = new URL('./fixtures/core_big.bpf.o', import.meta.url).pathname;

describe('loading under signals', () => {
  it('every load of a CO-RE object succeeds while a profiler interrupts the process', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpfkit-prof-'));
    try {
      const script = `
        import { loadCollection } from '@bpfkit/loader';
        let n = 0;
        for (let i = 0; i < 10; i++) for (const o of ${JSON.stringify([execsnoop, bigObject])}) { loadCollection(o).close(); n++; }
        console.log('loaded', n);`;
      const r = spawnSync(
        process.execPath,
        [
          '--cpu-prof',
          `--cpu-prof-dir=${dir}`,
          '--cpu-prof-interval',
          '20',
          '--input-type=module',
          '-e',
          script,
        ],
        { cwd: new URL('..', import.meta.url), encoding: 'utf8', timeout: 280_000 },
      );
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('loaded 20');
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
