#!/usr/bin/env node
// Installs the Debian packages the test suite calls (first step of `pnpm test`), so a fresh
// machine needs nothing but Node and npm: bpftool for the pinning interop tests, cc for C
// programs. With --bench also libbpf's headers and library for the benchmarks' C consumer.
// Runs apt-get only when something is missing.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const NEEDED = [
  ['bpftool', 'bpftool'],
  ['cc', 'gcc'],
];

const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const missing = NEEDED.filter(([cmd]) => !have(cmd)).map(([, pkg]) => pkg);
// --bench: libbpf's headers and library for the benchmarks' C consumer
if (process.argv.includes('--bench') && !existsSync('/usr/include/bpf/libbpf.h')) missing.push('libbpf-dev');
if (missing.length === 0) process.exit(0);
if (process.getuid?.() !== 0) {
  console.error(
    `setup: missing ${missing.join(', ')}; install them (apt-get install ${missing.join(' ')}) or run as root`,
  );
  process.exit(1);
}
console.log(`setup: installing ${missing.join(', ')} with apt-get`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
execFileSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env });
