// vmtest: host only: it installs the packed tarballs from the package registry, which a guest cannot reach; what it runs on the kernel, the loader and codegen tests run on every leg
// The user's path, end to end: the packages are packed, the tarballs installed into a fresh
// project outside the workspace (a flat node_modules, nothing linked to the workspace), the
// installed CLI generates a module from a C program (compiled with the system clang against a
// vmlinux.h bpfkit writes), and a strict TypeScript program on it is compiled with tsc and run
// against the kernel: typed maps, a constant, a live variable and a typed ring record. The install
// resolves typescript, @types/node, koffi, commander and cli-table3 from the pnpm store (the
// registry only for their metadata).
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { strictCompilerOptions } from '../testing/strict-tsconfig.js';

const root = new URL('../../', import.meta.url).pathname;
/** Every published package: its directory under packages/ and its name. */
const PACKAGES: Record<string, string> = Object.fromEntries(
  readdirSync(join(root, 'packages'))
    .map((d) => [d, JSON.parse(readFileSync(join(root, 'packages', d, 'package.json'), 'utf8'))] as const)
    .filter(([, pkg]) => !pkg.private)
    .map(([d, pkg]) => [d, pkg.name as string]),
);
const pnpm = (cwd: string, ...args: string[]) =>
  spawnSync('npx', ['-y', 'pnpm@10.34.9', ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, CI: '1' },
  });

const SOURCE = `// SPDX-License-Identifier: GPL-2.0
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct event {
	__u32 pid;
	__u64 value;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct event);
	__uint(max_entries, 8);
} last SEC(".maps");

const volatile __u64 multiplier = 1;
__u64 calls;

SEC("socket")
int typed(struct __sk_buff *skb)
{
	__u32 key = 1;
	struct event *e;

	calls++;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = 7;
	e->value = skb->len * multiplier;
	__builtin_memcpy(e->comm, "typed", 6);
	bpf_map_update_elem(&last, &key, e, BPF_ANY);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
`;

const MAIN = `import { RingBufReader } from '@bpfkit/perf';
import { eventCodec, loadTyped, type TypedEvent } from './typed.js';

using c = loadTyped({ constants: { multiplier: 3n } });
using events = RingBufReader.open(c.maps.events, { codec: eventCodec, timeout: 0 });
c.variables.calls.set(41n);
c.programs.typed.testRun({ data: new Uint8Array(64) });
const record: TypedEvent | undefined = (await events.read())?.value;
const last: TypedEvent | undefined = c.maps.last.get(1);
const calls: bigint = c.variables.calls.get();
// @ts-expect-error multiplier is a __u64: a bigint
loadTyped({ constants: { multiplier: 3 } }).close();
console.log(JSON.stringify({ record, last, calls }, (_k, v: unknown) => (typeof v === 'bigint' ? \`\${v}n\` : v)));
`;

describe('packed packages in a fresh project', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bpfkit-packed-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The packages packed once for both tests: each name's tarball. */
  let packed: Record<string, string> | undefined;
  const pack = (): Record<string, string> => {
    if (packed) return packed;
    const tarballs = join(dir, 'tarballs');
    mkdirSync(tarballs);
    const out: Record<string, string> = {};
    for (const [dirName, name] of Object.entries(PACKAGES)) {
      const r = pnpm(join(root, 'packages', dirName), 'pack', '--pack-destination', tarballs);
      expect(r.status, r.stderr).toBe(0);
      const file = `${name.replace('@', '').replace('/', '-')}-${JSON.parse(readFileSync(join(root, 'packages', dirName, 'package.json'), 'utf8')).version}.tgz`;
      out[name] = join(tarballs, file);
    }
    packed = out;
    return out;
  };

  it('each tarball is whole: source maps resolve to sources inside it, README links too, keywords set', () => {
    const files = (d: string): string[] =>
      readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? files(join(d, f)) : [join(d, f)]));
    let maps = 0;
    for (const [name, tarball] of Object.entries(pack())) {
      const out = join(dir, 'unpacked', name);
      mkdirSync(out, { recursive: true });
      const tar = spawnSync('tar', ['-xzf', tarball, '-C', out], { encoding: 'utf8' });
      expect(tar.status, tar.stderr).toBe(0);
      const pkgRoot = join(out, 'package');
      const inside = (target: string) => {
        const rel = relative(pkgRoot, target);
        return !rel.startsWith('..') && existsSync(target) && statSync(target).isFile();
      };
      for (const file of files(pkgRoot).filter((f) => f.endsWith('.map'))) {
        maps++;
        const map = JSON.parse(readFileSync(file, 'utf8')) as { sources: string[]; sourceRoot?: string };
        expect(map.sources.length, file).toBeGreaterThan(0);
        for (const source of map.sources) {
          const target = resolve(dirname(file), map.sourceRoot ?? '', source);
          expect(
            inside(target),
            `${name}: ${relative(pkgRoot, file)} names ${source}, not in the tarball`,
          ).toBe(true);
        }
      }
      // every relative link of the README (markdown or HTML) names a file the tarball holds
      const readme = readFileSync(join(pkgRoot, 'README.md'), 'utf8');
      const links = [...readme.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)|href="([^"]+)"|src="([^"]+)"/g)].map(
        (m) => (m[1] ?? m[2] ?? m[3])!,
      );
      for (const link of links) {
        if (/^([a-z]+:|#)/i.test(link)) continue; // a URL or an anchor in the README itself
        const path = link.split('#')[0]!;
        expect(inside(resolve(pkgRoot, path)), `${name}: README links ${link}, not in the tarball`).toBe(
          true,
        );
      }
      const pkg = JSON.parse(readFileSync(join(pkgRoot, 'package.json'), 'utf8')) as { keywords?: string[] };
      expect(pkg.keywords?.length ?? 0, `${name} has keywords`).toBeGreaterThan(0);
    }
    expect(maps).toBeGreaterThan(Object.keys(PACKAGES).length); // the maps were looked at
  });

  it('a strict TypeScript program on a module generated from C compiles with tsc and runs', () => {
    const deps: Record<string, string> = {};
    for (const [name, tarball] of Object.entries(pack())) deps[name] = `file:${tarball}`;
    const app = join(dir, 'app');
    mkdirSync(join(app, 'src'), { recursive: true });
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'bpfkit-user',
        private: true,
        type: 'module',
        dependencies: { ...deps, typescript: '5.9.3', '@types/node': '^20.19.0' },
        pnpm: { overrides: deps },
      }),
    );
    writeFileSync(join(app, '.npmrc'), 'node-linker=hoisted\n');
    const installed = pnpm(app, 'install', '--prefer-offline');
    expect(installed.status, installed.stdout + installed.stderr).toBe(0);

    writeFileSync(join(app, 'typed.bpf.c'), SOURCE);
    const gen = spawnSync(
      process.execPath,
      [
        join(app, 'node_modules/bpfkit/dist/bin.js'),
        'gen',
        'typed.bpf.c',
        '--type',
        'event',
        '-o',
        'src/typed.ts',
      ],
      { cwd: app, encoding: 'utf8' },
    );
    expect(gen.stderr).toBe('');
    expect(gen.status).toBe(0);
    writeFileSync(join(app, 'src', 'main.ts'), MAIN);
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: strictCompilerOptions,
        include: ['src'],
      }),
    );
    const tsc = spawnSync(process.execPath, [join(app, 'node_modules/typescript/bin/tsc'), '-p', app], {
      encoding: 'utf8',
    });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
    const run = spawnSync(process.execPath, [join(app, 'dist', 'main.js')], { cwd: app, encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    // skb->len is the 64 bytes less the Ethernet header; the constant multiplied it
    const event = { pid: 7, value: `${50 * 3}n`, comm: 'typed' };
    expect(JSON.parse(run.stdout)).toEqual({ record: event, last: event, calls: '42n' });
  });
});
