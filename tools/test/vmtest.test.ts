// The VM test runner's pure parts: kernel package choice, module dependencies, the initramfs
// archive and the matrix. (`pnpm test:kernels` boots the kernels themselves.)
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cpio, initScript, isStaticElf } from '../vmtest/initramfs.mjs';
import { compareVersions, modinfo, moduleClosure, pickImagePackage } from '../vmtest/kernels.mjs';
import { classify, markdown, matrixRows, verdict } from '../vmtest/report.mjs';

/** A minimal x86-64 ELF relocatable with a `.modinfo` section holding `info`. */
function fakeModule(info: Record<string, string>): Buffer {
  const modinfoBytes = Buffer.from(
    `${Object.entries(info)
      .map(([k, v]) => `${k}=${v}`)
      .join('\0')}\0`,
  );
  const shstr = Buffer.from('\0.modinfo\0.shstrtab\0');
  const dataOff = 64;
  const shstrOff = dataOff + modinfoBytes.length;
  const shoff = Math.ceil((shstrOff + shstr.length) / 8) * 8;
  const out = Buffer.alloc(shoff + 3 * 64);
  out.writeUInt32BE(0x7f454c46, 0);
  out[4] = 2; // 64-bit
  out[5] = 1; // little-endian
  out.writeBigUInt64LE(BigInt(shoff), 0x28);
  out.writeUInt16LE(64, 0x3a);
  out.writeUInt16LE(3, 0x3c);
  out.writeUInt16LE(2, 0x3e); // .shstrtab is section 2
  modinfoBytes.copy(out, dataOff);
  shstr.copy(out, shstrOff);
  const section = (i: number, name: number, off: number, size: number) => {
    out.writeUInt32LE(name, shoff + i * 64);
    out.writeBigUInt64LE(BigInt(off), shoff + i * 64 + 0x18);
    out.writeBigUInt64LE(BigInt(size), shoff + i * 64 + 0x20);
  };
  section(1, 1, dataOff, modinfoBytes.length);
  section(2, 10, shstrOff, shstr.length);
  return out;
}

/** Parse a newc cpio archive back into `{ name, mode, data }`. */
function readCpio(buf: Buffer) {
  const out: { name: string; mode: number; data: Buffer }[] = [];
  let off = 0;
  const align = (n: number) => Math.ceil(n / 4) * 4;
  for (;;) {
    expect(buf.toString('latin1', off, off + 6)).toBe('070701');
    const field = (i: number) =>
      Number.parseInt(buf.toString('latin1', off + 6 + i * 8, off + 14 + i * 8), 16);
    const mode = field(1);
    const size = field(6);
    const nameSize = field(11);
    const name = buf.toString('utf8', off + 110, off + 110 + nameSize - 1);
    const dataStart = align(off + 110 + nameSize);
    if (name === 'TRAILER!!!') return out;
    out.push({ name, mode, data: buf.subarray(dataStart, dataStart + size) });
    off = align(dataStart + size);
  }
}

describe('kernel packages', () => {
  it('picks the newest generic image of a series', () => {
    const names = [
      'linux-image-6.1.0-9-amd64',
      'linux-image-6.1.0-56-amd64',
      'linux-image-6.1.0-56-cloud-amd64',
      'linux-image-6.1.0-56-rt-amd64',
      'linux-image-6.12.9+deb12-amd64',
      'linux-image-6.12.117+deb12-amd64',
      'linux-image-6.10.1-amd64',
      'linux-image-amd64',
    ];
    expect(pickImagePackage('6.1', names)).toBe('linux-image-6.1.0-56-amd64');
    expect(pickImagePackage('6.12', names)).toBe('linux-image-6.12.117+deb12-amd64');
    expect(pickImagePackage('5.10', names)).toBeUndefined();
    expect(compareVersions('6.12.9', '6.12.117')).toBeLessThan(0);
  });

  it('orders modules after their dependencies and skips built-ins', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpfkit-vmtest-mods-'));
    try {
      const mod = (path: string, depends: string) => {
        mkdirSync(join(dir, path, '..'), { recursive: true });
        writeFileSync(join(dir, path), fakeModule({ license: 'GPL', depends, name: path }));
      };
      mod('kernel/fs/9p/9p.ko', 'netfs,9pnet');
      mod('kernel/net/9p/9pnet.ko', '');
      mod('kernel/fs/netfs/netfs.ko', 'fscache');
      mod('kernel/net/9p/9pnet_virtio.ko', '9pnet,virtio_ring');
      writeFileSync(
        join(dir, 'modules.order'),
        [
          'kernel/fs/9p/9p.ko',
          'kernel/net/9p/9pnet.ko',
          'kernel/fs/netfs/netfs.ko',
          'kernel/net/9p/9pnet_virtio.ko',
          '',
        ].join('\n'),
      );
      writeFileSync(
        join(dir, 'modules.builtin'),
        'kernel/fs/fscache/fscache.ko\nkernel/drivers/virtio/virtio_ring.ko\n',
      );
      expect(modinfo(fakeModule({ depends: 'a,b' }))).toMatchObject({ depends: 'a,b' });
      expect(moduleClosure(dir, ['9pnet_virtio', '9p']).map((m: { name: string }) => m.name)).toEqual([
        '9pnet',
        '9pnet_virtio',
        'netfs',
        '9p',
      ]);
      expect(() => moduleClosure(dir, ['overlay'])).toThrow(/overlay is neither built in nor shipped/);
      expect(() => modinfo(Buffer.from('not an elf at all, really'))).toThrow(/not a 64-bit ELF/);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('initramfs', () => {
  it('is a newc archive with directories, files and their modes', () => {
    const archive = cpio([
      { path: 'bin', mode: 0o040755 },
      { path: 'init', mode: 0o100755, data: Buffer.from('#!/bin/sh\n') },
      { path: 'lib/x.ko', mode: 0o100644, data: Buffer.from([1, 2, 3, 4, 5]) },
    ]);
    expect(readCpio(archive)).toEqual([
      { name: 'bin', mode: 0o040755, data: Buffer.alloc(0) },
      { name: 'init', mode: 0o100755, data: Buffer.from('#!/bin/sh\n') },
      { name: 'lib/x.ko', mode: 0o100644, data: Buffer.from([1, 2, 3, 4, 5]) },
    ]);
  });

  it('needs a static busybox: a dynamic binary would find no libc in the guest', () => {
    expect(isStaticElf(process.execPath)).toBe(false); // node links libc
    expect(isStaticElf('/nonexistent')).toBe(false);
  });

  it('loads the modules in order and mounts what a real system has', () => {
    const init = initScript([{ name: 'virtio' }, { name: '9p' }]);
    expect(init).toMatch(/for m in virtio 9p; do insmod/);
    for (const fs of ['bpf', 'tracefs', 'cgroup2', 'devtmpfs', 'overlay'])
      expect(init).toContain(`mount -t ${fs}`);
    expect(init).toMatch(/trans=virtio,version=9p2000\.L,ro/);
    expect(init).not.toMatch(/\$R\/tmp\b/); // a checkout under /tmp must stay visible
  });
});

describe('matrix', () => {
  const root = '/repo';
  const report = {
    testResults: [
      {
        name: '/repo/packages/maps/test/map.test.ts',
        status: 'failed',
        assertionResults: [
          { fullName: 'maps a', status: 'passed', failureMessages: [] },
          {
            fullName: 'maps batch',
            status: 'failed',
            failureMessages: [
              'NotSupportedError: batch operations on hash maps is not supported by this kernel (Linux 5.4); it first appeared in Linux 5.6\n    at x',
            ],
          },
          {
            fullName: 'maps broken',
            status: 'failed',
            failureMessages: ['AssertionError: expected 1 to be 2\n  at y'],
          },
          { fullName: 'maps skipped', status: 'skipped', failureMessages: [] },
        ],
      },
      {
        name: '/repo/tools/test/x.test.ts',
        status: 'failed',
        message: 'SyntaxError: bad',
        assertionResults: [],
      },
    ],
  };

  it('counts passed, failed, unsupported (by NotSupportedError) and silent skips per package', () => {
    const r = classify(report, root);
    expect(r.packages).toEqual({
      maps: { passed: 1, failed: 1, unsupported: 1, skipped: 1 },
      tools: { passed: 0, failed: 1, unsupported: 0, skipped: 0 },
    });
    expect(r.tests.find((t: { name: string }) => t.name === 'maps batch')).toMatchObject({
      outcome: 'unsupported',
      reason: expect.stringMatching(/^batch operations on hash maps .* first appeared in Linux 5\.6$/),
    });
  });

  it('judges a run: failures and silent skips are problems, unsupported only on the host', () => {
    const old = { name: '5.4', title: '5.4', result: classify(report, root) };
    const problems = verdict([old]);
    expect(problems).toHaveLength(3); // the assertion, the load error, the silent skip
    expect(problems.join('\n')).not.toMatch(/batch operations/);
    const host = { name: 'host', title: 'host', result: classify(report, root) };
    expect(verdict([host]).join('\n')).toMatch(/unsupported on the host itself/);
    const broken = {
      name: '6.1',
      title: '6.1',
      result: { broken: 'killed after 30 min', packages: {}, tests: [] },
    };
    expect(verdict([broken])).toEqual(['6.1: killed after 30 min']);
    expect(matrixRows([old, broken])).toEqual([
      ['maps', '1 passed, 1 failed, 1 unsupported, 1 skipped', 'not run'],
      ['tools', '0 passed, 1 failed', 'not run'],
    ]);
    expect(markdown([old])).toMatch(
      /\| package \| 5\.4 \|[\s\S]*Unsupported on 5\.4:[\s\S]*- batch operations/,
    );
  });
});
