#!/usr/bin/env node
// Installs the Debian packages the test suite calls (first step of `pnpm test`), so a fresh
// machine needs nothing but Node and npm: bpftool for the pinning interop tests, cc for C
// programs, iproute2 for the network namespaces and veth pairs of the XDP tests, prometheus for
// the exporter's end-to-end test (a real server scraping the agent). clang and libbpf's headers and library for the C loaders that tests compare with; with
// --vmtest QEMU, a static busybox and xz for the kernel matrix (tools/vmtest).
// Runs apt-get only when something is missing.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { uapiInclude } from '../abigen/uapi.mjs';
import { isStaticElf } from '../vmtest/initramfs.mjs';

const NEEDED = [
  ['bpftool', 'bpftool'],
  ['cc', 'gcc'],
  ['clang', 'clang'], // the CLI's C compile (bpfkit gen from .bpf.c, the vmlinux.h test)
  ['ip', 'iproute2'],
  ['prometheus', 'prometheus'],
];

const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const missing = NEEDED.filter(([cmd]) => !have(cmd)).map(([, pkg]) => pkg);
// libbpf's headers and library: the tests' C loaders (compared with libbpf) and the benchmarks' C consumer
if (!existsSync('/usr/include/bpf/libbpf.h')) missing.push('libbpf-dev');
// <sys/sdt.h> for the USDT fixture programs (tools/fixtures/build.mjs)
if (!existsSync('/usr/include/sys/sdt.h')) missing.push('systemtap-sdt-dev');
// --vmtest: QEMU, a static busybox for the guest's initramfs, xz for compressed modules
if (process.argv.includes('--vmtest')) {
  if (!have('qemu-system-x86_64')) missing.push('qemu-system-x86');
  if (!isStaticElf('/bin/busybox')) missing.push('busybox-static');
  if (!have('xz')) missing.push('xz-utils');
  if (!have('dpkg')) missing.push('dpkg');
}
// newer uapi headers for the ABI generator and its test (a guest cannot fetch them itself)
const fetchUapi = () => uapiInclude((l) => console.log(`setup: ${l}`));
if (missing.length === 0) {
  fetchUapi();
  process.exit(0);
}
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
fetchUapi();
