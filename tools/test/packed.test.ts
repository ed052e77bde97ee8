// vmtest: host only: it installs the packed tarballs from the package registry, which a guest cannot reach; what it runs on the kernel, the loader and codegen tests run on every leg
// The user's path, end to end: the packages are packed, the tarballs installed into a fresh
// project outside the workspace (a flat node_modules, nothing linked to the workspace), the
// installed CLI generates a module from a C program (compiled with the system clang against a
// vmlinux.h bpfkit writes), and a strict TypeScript program on it is compiled with tsc and run
// against the kernel: typed maps, a constant, a live variable and a typed ring record. The install
// resolves typescript, @types/node, koffi, commander and cli-table3 from the pnpm store (the
// registry only for their metadata).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { strictCompilerOptions } from '../testing/strict-tsconfig.js';

const root = new URL('../../', import.meta.url).pathname;
const PACKAGES = {
  sys: '@bpfkit/sys',
  asm: '@bpfkit/asm',
  btf: '@bpfkit/btf',
  maps: '@bpfkit/maps',
  loader: '@bpfkit/loader',
  link: '@bpfkit/link',
  perf: '@bpfkit/perf',
  pin: '@bpfkit/pin',
  exporter: '@bpfkit/exporter',
  cli: 'bpfkit',
};
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

  it('a strict TypeScript program on a module generated from C compiles with tsc and runs', () => {
    const tarballs = join(dir, 'tarballs');
    mkdirSync(tarballs);
    const deps: Record<string, string> = {};
    for (const [dirName, name] of Object.entries(PACKAGES)) {
      const r = pnpm(join(root, 'packages', dirName), 'pack', '--pack-destination', tarballs);
      expect(r.status, r.stderr).toBe(0);
      const file = `${name.replace('@', '').replace('/', '-')}-${JSON.parse(readFileSync(join(root, 'packages', dirName, 'package.json'), 'utf8')).version}.tgz`;
      deps[name] = `file:${join(tarballs, file)}`;
    }
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
