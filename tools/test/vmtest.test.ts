// vmtest: host only: the VM runner's pure parts: no kernel
// The VM test runner's pure parts: kernel package choice, module dependencies, the initramfs
// archive and the matrix. (`pnpm test:kernels` boots the kernels themselves.)
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cpio, initScript, isStaticElf, lsmList } from '../vmtest/initramfs.mjs';
import { compareVersions, modinfo, moduleClosure, pickImagePackage, softPre } from '../vmtest/kernels.mjs';
import {
  classify,
  hostOnlyExcludes,
  hostOnlyFiles,
  markdown,
  matrixRows,
  verdict,
} from '../vmtest/report.mjs';

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
      'linux-image-5.10.0-30-amd64',
      'linux-image-5.10.0-35-amd64',
      'linux-image-5.10.0-35-rt-amd64',
      'linux-image-5.10.0-35-amd64-dbg',
    ];
    expect(pickImagePackage('6.1', names)).toBe('linux-image-6.1.0-56-amd64');
    expect(pickImagePackage('6.12', names)).toBe('linux-image-6.12.117+deb12-amd64');
    expect(pickImagePackage('5.10', names)).toBe('linux-image-5.10.0-35-amd64');
    expect(pickImagePackage('5.4', names)).toBeUndefined();
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
      mkdirSync(join(dir, 'kernel/lib'), { recursive: true });
      mkdirSync(join(dir, 'kernel/crypto'), { recursive: true });
      writeFileSync(
        join(dir, 'kernel/lib/libcrc32c.ko'),
        fakeModule({ depends: '', softdep: 'pre: crc32c' }),
      );
      writeFileSync(
        join(dir, 'kernel/crypto/crc32c_generic.ko'),
        fakeModule({ depends: '', alias: 'crc32c' }),
      );
      writeFileSync(
        join(dir, 'modules.order'),
        [
          'kernel/fs/9p/9p.ko',
          'kernel/net/9p/9pnet.ko',
          'kernel/fs/netfs/netfs.ko',
          'kernel/net/9p/9pnet_virtio.ko',
          'kernel/lib/libcrc32c.ko',
          'kernel/crypto/crc32c_generic.ko',
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
      // a soft dependency first (libcrc32c's init asks the crypto API for crc32c)
      expect(moduleClosure(dir, ['libcrc32c']).map((m: { name: string }) => m.name)).toEqual([
        'crc32c_generic',
        'libcrc32c',
      ]);
      expect(softPre('pre: a b-c post: d')).toEqual(['a', 'b_c']);
      expect(softPre('post: d')).toEqual([]);
      // optional modules: loaded where shipped, left out where built in or absent
      expect(
        moduleClosure(dir, ['9pnet'], ['9pnet_virtio', 'fscache', 'netkit']).map(
          (m: { name: string }) => m.name,
        ),
      ).toEqual(['9pnet', '9pnet_virtio']);
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
    for (const fs of ['bpf', 'tracefs', 'cgroup2', 'devtmpfs', 'overlay', 'securityfs'])
      expect(init).toContain(`mount -t ${fs}`);
    expect(init).toMatch(/trans=virtio,version=9p2000\.L,ro/);
    expect(init).not.toMatch(/\$R\/tmp\b/); // a checkout under /tmp must stay visible
    expect(init).toMatch(/export PATH=.* BPFKIT_VMTEST_GUEST=1/); // tools/testing/features.js reads it
  });

  it('adds bpf to the kernel default LSM list, once and last', () => {
    expect(lsmList('CONFIG_X=y\nCONFIG_LSM="landlock,lockdown,yama,apparmor"\n')).toBe(
      'landlock,lockdown,yama,apparmor,bpf',
    );
    expect(lsmList('CONFIG_LSM="bpf,landlock,apparmor"\n')).toBe('landlock,apparmor,bpf');
    expect(() => lsmList('CONFIG_X=y\n')).toThrow(/no CONFIG_LSM/);
  });
});

describe('host-only test files', () => {
  it('are the ones marked in their first lines, each with its reason', () => {
    const root = mkdtempSync(join(tmpdir(), 'bpfkit-hostonly-'));
    try {
      mkdirSync(join(root, 'packages', 'a', 'test'), { recursive: true });
      mkdirSync(join(root, 'tools', 'test'), { recursive: true });
      writeFileSync(
        join(root, 'packages', 'a', 'test', 'pure.test.ts'),
        '// vmtest: host only: no kernel here\nit();\n',
      );
      writeFileSync(join(root, 'packages', 'a', 'test', 'kernel.test.ts'), '// loads a program\nit();\n');
      writeFileSync(
        join(root, 'tools', 'test', 'late.test.ts'),
        `${'//\n'.repeat(40)}// vmtest: host only: too late\n`,
      );
      writeFileSync(join(root, 'tools', 'test', 'helper.ts'), '// vmtest: host only: not a test file\n');
      expect(hostOnlyFiles(root)).toEqual([{ file: 'packages/a/test/pure.test.ts', why: 'no kernel here' }]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('in this repository: each says why, and the guests run every other file but none of them', () => {
    const root = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');
    const files = hostOnlyFiles(root);
    expect(files.map((f) => f.file)).toContain('tools/test/vmtest-boot.test.ts');
    expect(files.map((f) => f.file)).toContain('packages/cli/test/gen.test.ts');
    for (const f of files) expect(f.why.length).toBeGreaterThan(10);
    // what vitest would run with the guests' arguments
    const listed = execFileSync(
      join(root, 'node_modules', '.bin', 'vitest'),
      ['list', '--filesOnly', ...hostOnlyExcludes(root)],
      { cwd: root, encoding: 'utf8' },
    );
    for (const f of files) expect(listed).not.toContain(f.file);
    expect(listed).toContain('packages/cli/test/codegen.test.ts');
    expect(listed).toContain('tools/test/guest-capabilities.test.ts');
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

  it('judges a run: failures and silent skips are problems; unsupported needs a pass elsewhere', () => {
    const old = { name: '5.4', title: '5.4', result: classify(report, root) };
    const problems = verdict([old]);
    // the assertion, the load error, the silent skip, and the batch test passing on no leg
    expect(problems).toHaveLength(4);
    expect(problems.filter((p) => /batch operations/.test(p))).toEqual([
      expect.stringMatching(
        /^5\.4: maps: maps batch — unsupported here and passed on no leg of this run \(5\.4\)/,
      ),
    ]);
    const broken = {
      name: '6.1',
      title: '6.1',
      result: { broken: 'killed after 30 min', packages: {}, tests: [] },
    };
    expect(verdict([broken])).toEqual(['6.1: killed after 30 min']);
    // a leg whose report holds no test at all fails too (a filter matched nothing)
    const empty = { name: '6.12', title: '6.12', result: { packages: {}, tests: [] } };
    expect(verdict([empty])).toEqual(['6.12: the leg ran no test']);
    expect(matrixRows([old, broken])).toEqual([
      ['maps', '1 passed, 1 failed, 1 unsupported, 1 skipped', 'not run'],
      ['tools', '0 passed, 1 failed', 'not run'],
    ]);
    expect(markdown([old])).toMatch(
      /\| package \| 5\.4 \|[\s\S]*Unsupported on 5\.4:[\s\S]*- batch operations.*passes on no leg of this run/,
    );
  });

  const leg = (name: string, tests: { name: string; outcome: string; reason?: string }[]) => {
    const loader: Record<string, number> = { passed: 0, failed: 0, unsupported: 0, skipped: 0 };
    for (const t of tests) loader[t.outcome] = (loader[t.outcome] ?? 0) + 1;
    return {
      name,
      title: name,
      result: { packages: { loader }, tests: tests.map((t) => ({ pkg: 'loader', ...t })) },
    };
  };

  it('reads a host skip marked unsupported by tools/testing/features.js as unsupported, with its reason', () => {
    const r = classify(
      {
        testResults: [
          {
            name: '/repo/tools/test/guest-capabilities.test.ts',
            status: 'passed',
            assertionResults: [
              {
                fullName: 'kprobes',
                status: 'skipped',
                failureMessages: [],
                meta: {
                  unsupported:
                    'kprobes is not supported by this kernel (Linux 6.18): CONFIG_KPROBES is not set in /proc/config.gz',
                },
              },
            ],
          },
        ],
      },
      root,
    );
    expect(r.tests).toEqual([
      {
        pkg: 'tools',
        name: 'kprobes',
        outcome: 'unsupported',
        reason:
          'kprobes is not supported by this kernel (Linux 6.18): CONFIG_KPROBES is not set in /proc/config.gz',
      },
    ]);
  });

  it('allows the host unsupported only where it shows the lack and another leg of the run passes', () => {
    const lacks =
      'fentry is not supported by this kernel (Linux 6.18): the kernel refused the probe load (BPF_PROG_LOAD: EPERM)';
    const vague = 'fentry is not supported by this kernel (Linux 6.18)';
    const host = leg('host', [
      { name: 'fentry', outcome: 'unsupported', reason: lacks },
      { name: 'lsm', outcome: 'unsupported', reason: vague },
      { name: 'token', outcome: 'passed' },
    ]);
    const guest = leg('6.1', [
      { name: 'fentry', outcome: 'passed' },
      { name: 'lsm', outcome: 'passed' },
      {
        name: 'token',
        outcome: 'unsupported',
        reason: 'BPF_TOKEN_CREATE is not supported; it first appeared in Linux 6.9',
      },
    ]);
    expect(verdict([host, guest])).toEqual([
      expect.stringMatching(
        /^host: loader: lsm — unsupported on the host without showing that the host lacks it/,
      ),
    ]);
    // without the guest the host's unsupported tests pass nowhere; without the host, the token test
    expect(verdict([host]).filter((p) => /passed on no leg of this run \(host\)/.test(p))).toHaveLength(2);
    expect(verdict([guest])).toEqual([
      expect.stringMatching(/^6\.1: loader: token — unsupported here and passed on no leg/),
    ]);
    expect(matrixRows([host, guest])).toEqual([
      ['loader', '1 passed, 2 unsupported (pass on 6.1)', '2 passed, 1 unsupported (pass on host)'],
    ]);
    expect(markdown([host, guest])).toContain(`- ${lacks} (1 test; passes on 6.1)`);
  });
});
