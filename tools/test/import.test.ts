// vmtest: host only: it checks what importing a package does (no native call, no file read): no kernel
// Importing a package does no work beyond binding what it uses: no native code loaded (koffi
// itself loads on the first native call), no file read, no process spawned. Each import runs in
// a fresh process under tools/testing/import-probe.cjs, which records those from package code.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const tools = new URL('..', import.meta.url).pathname;
const probe = new URL('../testing/import-probe.cjs', import.meta.url).pathname;
const packages = [
  '@bpfkit/sys',
  '@bpfkit/asm',
  '@bpfkit/btf',
  '@bpfkit/maps',
  '@bpfkit/loader',
  '@bpfkit/link',
  '@bpfkit/pin',
  '@bpfkit/cgroup',
  '@bpfkit/perf',
  '@bpfkit/exporter',
  'bpfkit',
];

interface Probed {
  kind: string;
  what: string;
  stack: string;
}

/** Run `code` (an ES module body) under the probe; it sets `out` to what it wants back. */
function probed(code: string): unknown {
  const r = spawnSync(
    process.execPath,
    ['--require', probe, '--input-type=module', '-e', `let out; ${code}; console.log(JSON.stringify(out))`],
    // the limit only catches a hang
    { cwd: tools, encoding: 'utf8', timeout: 280_000 },
  );
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout);
}

const seen = 'globalThis.__bpfkitImportProbe.map((r) => r.kind + " " + r.what)';

describe('importing', () => {
  it.each(packages)('%s loads no native code, reads no file, spawns nothing', (name) => {
    const out = probed(`await import(${JSON.stringify(name)}); out = globalThis.__bpfkitImportProbe`);
    // the stacks say who did it when this fails
    expect(out as Probed[]).toEqual([]);
  });

  it('the probe sees native loads and file reads once something is used', () => {
    const out = probed(`
      const sys = await import('@bpfkit/sys');
      const maps = await import('@bpfkit/maps');
      const before = ${seen};
      new sys.NativeBuffer(8).free();
      maps.onlineCpus();
      out = { before, after: ${seen} };`) as { before: string[]; after: string[] };
    expect(out.before).toEqual([]);
    expect(out.after).toContainEqual(expect.stringMatching(/^require koffi$/));
    expect(out.after).toContainEqual(expect.stringMatching(/^dlopen .*koffi\.node$/));
    expect(out.after).toContainEqual('fs readFileSync(/sys/devices/system/cpu/online)');
  });

  it('bpfkit --help does no native work either', () => {
    const out = probed(`
      process.argv = [process.execPath, 'bpfkit', '--help'];
      const write = process.stdout.write;
      let help = '';
      process.stdout.write = (s) => (help += s);
      await import('./node_modules/bpfkit/dist/bin.js');
      process.stdout.write = write;
      out = { help, code: process.exitCode, seen: ${seen} };`);
    expect(out).toEqual({ help: expect.stringMatching(/Usage: bpfkit/), code: 0, seen: [] });
  });
});
