// Label decoders against the running system: kallsyms, cgroups, /proc, block devices, the
// generated syscall table, and addresses.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { kallsyms } from '@bpfkit/loader';
import { describe, expect, it } from 'vitest';
import { cgroup2Root } from '../../../tools/testing/kernel.js';
import {
  blockDevice,
  cgroupPath,
  cString,
  decoderFor,
  ipv6,
  ksym,
  pidComm,
  X86_64_SYSCALLS,
} from '../src/index.js';

const int = (size: number) => ({ path: 'f', offset: 0, size, kind: 'int' as const, signed: false });

describe('decoders', () => {
  it('syscall numbers from the generated table', () => {
    expect(X86_64_SYSCALLS.get(0)).toBe('read');
    expect(X86_64_SYSCALLS.get(59)).toBe('execve');
    expect(X86_64_SYSCALLS.get(110)).toBe('getppid');
    const d = decoderFor({ name: 's', field: 'f', decoder: 'syscall' }, int(4), 't');
    expect(d(110)).toBe('getppid');
    expect(d(100_000)).toBe('syscall_100000');
  });

  it('IPv4 and IPv6 addresses', () => {
    const v4 = decoderFor({ name: 'a', field: 'f', decoder: 'ipv4' }, int(4), 't');
    expect(v4(0x0100007f)).toBe('127.0.0.1'); // network order read little-endian
    const v6 = (s: number[]) => ipv6(Uint8Array.from(s));
    expect(v6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])).toBe('2001:db8::1');
    expect(v6(new Array(16).fill(0))).toBe('::');
    expect(v6([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 7])).toBe('10.0.0.7');
    expect(v6([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])).toBe('1:0:1::1');
  });

  it('static maps, strings and hex', () => {
    const m = decoderFor(
      { name: 'a', field: 'f', decoder: 'static_map', values: { '2': 'ipv4' } },
      int(2),
      't',
    );
    expect(m(2)).toBe('ipv4');
    expect(m(3)).toBe('3');
    expect(cString(Uint8Array.from([0x62, 0x61, 0x73, 0x68, 0, 0x78]))).toBe('bash');
    const h = decoderFor({ name: 'a', field: 'f', decoder: 'hex' }, int(8), 't');
    expect(h(255)).toBe('0xff');
  });

  it('refuses a decoder for the wrong field kind', () => {
    expect(() =>
      decoderFor({ name: 'a', field: 'f', decoder: 'ipv6' }, int(4), "metric 'm' label 'a'"),
    ).toThrow(
      /metric 'm' label 'a': decoder 'ipv6' cannot read field 'f' \(4-byte int\); it reads bytes of 16 bytes/,
    );
  });

  it('kernel symbols by address', () => {
    const addr = kallsyms(new Set(['schedule'])).get('schedule');
    expect(addr).toBeDefined();
    expect(ksym(addr!)).toBe('schedule');
    expect(ksym(addr! + 4n)).toBe('schedule+0x4');
  });

  it('cgroup ids to paths', () => {
    const own = readFileSync('/proc/self/cgroup', 'utf8').match(/^0::(.*)$/m)?.[1] ?? '';
    const id = statSync(`${cgroup2Root()}${own}`, { bigint: true }).ino;
    expect(cgroupPath(id)).toBe(own === '' ? '/' : own);
    expect(cgroupPath(1n << 60n)).toBe(String(1n << 60n));
  });

  it('pids to command names', () => {
    expect(pidComm(process.pid)).toBe(readFileSync('/proc/self/comm', 'utf8').trim());
    expect(pidComm(0x3fffffff)).toBe(String(0x3fffffff));
  });

  it('block devices by kernel dev_t', () => {
    const mm = readdirSync('/sys/dev/block')[0];
    if (mm === undefined) {
      expect(blockDevice(0)).toBe('0:0');
      return;
    }
    const [major, minor] = mm.split(':').map(Number) as [number, number];
    const name = /^DEVNAME=(.*)$/m.exec(readFileSync(`/sys/dev/block/${mm}/uevent`, 'utf8'))?.[1];
    expect(blockDevice(major * 0x100000 + minor)).toBe(name);
  });
});
