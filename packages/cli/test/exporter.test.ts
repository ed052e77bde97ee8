// `bpfkit exporter`: serves /metrics from a config, reloads on SIGHUP, detaches and exits 0 on
// SIGTERM; a bad config exits 1 naming the line and field.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const bin = new URL('../dist/bin.js', import.meta.url).pathname;

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => res.socket.once('close', () => resolve(body)));
    }).on('error', reject);
  });
}

describe('bpfkit exporter', () => {
  it('serves, reloads on SIGHUP and detaches on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpfkit-cli-exporter-'));
    try {
      const config = join(dir, 'exporter.yaml');
      writeFileSync(config, 'programs:\n  - { name: execs, builtin: execs }\n');
      const child = spawn(
        process.execPath,
        [bin, 'exporter', '--config', config, '--listen', '127.0.0.1:0'],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      const waiters: [RegExp, (m: RegExpMatchArray) => void][] = [];
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (d: string) => {
        stderr += d;
        for (const [i, [re, done]] of [...waiters.entries()].reverse()) {
          const m = stderr.match(re);
          if (m) {
            waiters.splice(i, 1);
            done(m);
          }
        }
      });
      const line = (re: RegExp) =>
        new Promise<RegExpMatchArray>((resolve) => {
          const m = stderr.match(re);
          if (m) resolve(m);
          else waiters.push([re, resolve]);
        });
      const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      const url = (await line(/serving (http:\/\/\S+)/))[1]!;
      expect(await httpGet(url)).toContain('# TYPE bpfkit_execs_total counter');
      writeFileSync(
        config,
        'programs:\n  - { name: execs, builtin: execs }\n  - { name: sys, builtin: syscalls }\n',
      );
      child.kill('SIGHUP');
      await line(/reloaded: execs, sys/);
      expect(await httpGet(url)).toContain('# TYPE bpfkit_syscalls_total counter');
      child.kill('SIGTERM');
      expect(await exit).toBe(0);
      expect(stderr).toContain('detached everything');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a bad config exits 1 naming the line and field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpfkit-cli-exporter-'));
    try {
      const config = join(dir, 'exporter.yaml');
      writeFileSync(config, 'programs:\n  - name: a\n    builtin: execs\n    colour: blue\n');
      const r = spawnSync(process.execPath, [bin, 'exporter', '--config', config], { encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`${config}:4: programs[0].colour: unknown field 'colour'`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
