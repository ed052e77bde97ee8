// USDT probes of our own fixture (usdt_target.c, <sys/sdt.h>) read by a BPF program built
// against libbpf's <bpf/usdt.bpf.h> (usdt_args.bpf.c), unmodified: the argument values it reads
// back, semaphores, the pid filter, a probe in a shared library, and the typed errors.
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  attachCollection,
  attachUsdt,
  encodeUsdtSpec,
  parseUsdtArg,
  UsdtArgType,
  UsdtProbeNotFoundError,
  usdtProbes,
} from '@bpfkit/link';
import { type Collection, loadCollection } from '@bpfkit/loader';
import { describe, expect, it } from 'vitest';

const dir = new URL('./fixtures/', import.meta.url).pathname;
const target = `${dir}usdt_target`;
const lib = `${dir}libusdt_lib.so`;
const object = `${dir}usdt_args.bpf.o`;

/** The target, driven a line at a time: `fire()` resolves with the line it printed. */
function start() {
  const child: ChildProcessWithoutNullStreams = spawn(target, [lib]);
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    pid: child.pid!,
    async fire(cmd = 'go'): Promise<string> {
      child.stdin.write(`${cmd}\n`);
      const r = await lines.next();
      return String(r.value);
    },
    async [Symbol.asyncDispose]() {
      child.stdin.end();
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}

function seen(
  coll: Collection,
  cookie: bigint,
): { hits: bigint; argCnt: bigint; args: bigint[] } | undefined {
  const k = Buffer.alloc(8);
  k.writeBigUInt64LE(cookie);
  const v = coll.maps.seen!.getBytes(k);
  if (!v) return undefined;
  const b = Buffer.from(v);
  const args = Array.from({ length: 12 }, (_, i) => b.readBigInt64LE(16 + i * 8));
  return { hits: b.readBigUInt64LE(0), argCnt: b.readBigInt64LE(8), args };
}

describe('USDT argument specs', () => {
  it('decodes x86-64 constants, registers and memory operands', () => {
    expect(parseUsdtArg('-4@%eax')).toEqual({
      type: UsdtArgType.REG,
      valOff: 0n,
      regOff: 80,
      signed: true,
      bitshift: 32,
    });
    expect(parseUsdtArg('4@%r12d')).toEqual({
      type: UsdtArgType.REG,
      valOff: 0n,
      regOff: 24,
      signed: false,
      bitshift: 32,
    });
    expect(parseUsdtArg('8@-16(%rbp)')).toEqual({
      type: UsdtArgType.REG_DEREF,
      valOff: 2n ** 64n - 16n,
      regOff: 32,
      signed: false,
      bitshift: 0,
    });
    expect(parseUsdtArg('-8@(%rsi)')).toMatchObject({ type: UsdtArgType.REG_DEREF, valOff: 0n, regOff: 104 });
    expect(parseUsdtArg('-4@$5')).toEqual({
      type: UsdtArgType.CONST,
      valOff: 5n,
      regOff: 0,
      signed: true,
      bitshift: 32,
    });
    expect(parseUsdtArg('-4@$-7')).toMatchObject({ valOff: 2n ** 64n - 7n });
    expect(parseUsdtArg('-1@%al')).toMatchObject({ regOff: 80, bitshift: 56, signed: true });
    expect(() => parseUsdtArg('3@%eax')).toThrow(/size 3/);
    expect(() => parseUsdtArg('4@%xmm0')).toThrow(/unknown register 'xmm0'/);
  });

  it('decodes arm64 ones', () => {
    expect(parseUsdtArg('-4@[x0, 8]', 'arm64')).toEqual({
      type: UsdtArgType.REG_DEREF,
      valOff: 8n,
      regOff: 0,
      signed: true,
      bitshift: 32,
    });
    expect(parseUsdtArg('8@[sp]', 'arm64')).toMatchObject({
      type: UsdtArgType.REG_DEREF,
      valOff: 0n,
      regOff: 248,
    });
    expect(parseUsdtArg('8@x1', 'arm64')).toEqual({
      type: UsdtArgType.REG,
      valOff: 0n,
      regOff: 8,
      signed: false,
      bitshift: 0,
    });
    expect(parseUsdtArg('4@5', 'arm64')).toEqual({
      type: UsdtArgType.CONST,
      valOff: 5n,
      regOff: 0,
      signed: false,
      bitshift: 32,
    });
    expect(parseUsdtArg('-2@-3', 'arm64')).toMatchObject({ valOff: 2n ** 64n - 3n, bitshift: 48 });
    expect(() => parseUsdtArg('8@x31', 'arm64')).toThrow(/unknown register/);
  });

  it('encodes struct __bpf_usdt_spec as usdt.bpf.h lays it out', () => {
    const b = encodeUsdtSpec('-4@%edi 8@-16(%rbp)', 0x1234n);
    expect(b.length).toBe(208);
    expect(b.readBigUInt64LE(0)).toBe(0n);
    expect([b.readUInt32LE(8), b.readInt16LE(12), b[14], b[15]]).toEqual([1, 112, 1, 32]);
    expect(b.readBigInt64LE(16)).toBe(-16n);
    expect([b.readUInt32LE(24), b.readInt16LE(28), b[30], b[31]]).toEqual([2, 32, 0, 0]);
    expect(b.readBigUInt64LE(192)).toBe(0x1234n);
    expect(b.readInt16LE(200)).toBe(2);
  });

  it('reads the notes of the fixture: sites, semaphores, arguments', () => {
    const probes = usdtProbes(target);
    expect(probes.map((p) => `${p.provider}:${p.name}`).sort()).toEqual([
      'bpfkit:consts',
      'bpfkit:guarded',
      'bpfkit:round',
      'bpfkit:sizes',
    ]);
    const consts = probes.find((p) => p.name === 'consts')!;
    expect(consts.args).toBe('-4@$42 -4@$-7 -8@(%rsi) -4@8(%rsi)');
    expect(probes.every((p) => p.semaphoreOffset > 0 && p.offset > 0)).toBe(true);
    expect(usdtProbes(lib).map((p) => `${p.provider}:${p.name}`)).toEqual(['bpfkit_lib:fired']);
  });
});

describe('attachUsdt', () => {
  it('the probes fire with their exact arguments, only in the pid asked for; the semaphore is raised while attached', async () => {
    using coll = loadCollection(object);
    const prog = coll.program('record');
    await using a = start();
    await using other = start();
    expect(await a.fire()).toBe('semaphore 0');
    {
      using _s = attachUsdt(prog, target, 'bpfkit', 'sizes', { collection: coll, pid: a.pid, cookie: 1n });
      using _c = attachUsdt(prog, target, 'bpfkit', 'consts', { collection: coll, pid: a.pid, cookie: 2n });
      using _g = attachUsdt(prog, target, 'bpfkit', 'guarded', { collection: coll, pid: a.pid, cookie: 3n });
      expect(await other.fire()).toBe('semaphore 0'); // not its pid: no semaphore, no hits
      expect(await a.fire()).toBe('semaphore 1');
      expect(await a.fire()).toBe('semaphore 1');
    }
    expect(await a.fire()).toBe('semaphore 0'); // detached: the kernel lowered it again
    const sizes = seen(coll, 1n)!;
    expect(sizes.hits).toBe(2n);
    expect(sizes.argCnt).toBe(6n);
    expect(sizes.args.slice(0, 6)).toEqual([
      -5n,
      65000n,
      -123456n,
      4000000000n,
      -9000000000000n,
      BigInt.asIntN(64, 0xfedcba9876543210n),
    ]);
    const consts = seen(coll, 2n)!;
    expect(consts.hits).toBe(2n);
    expect(consts.args.slice(0, 4)).toEqual([42n, -7n, -77777777777n, 31337n]);
    const guarded = seen(coll, 3n)!;
    expect(guarded.hits).toBe(2n); // only rounds 2 and 3 saw the semaphore raised
    expect(guarded.args[0]).toBe(3n); // the round of the last hit
  });

  it('a probe in a shared library, by the library path', async () => {
    using coll = loadCollection(object);
    await using a = start();
    expect(await a.fire('lib')).toBe('lib 1'); // loaded now; the uprobe covers the mapping
    {
      using _l = attachUsdt(coll.program('record'), lib, 'bpfkit_lib', 'fired', {
        collection: coll,
        cookie: 9n,
      });
      expect(await a.fire('lib')).toBe('lib 1');
    }
    expect(await a.fire('lib')).toBe('lib 1');
    const s = seen(coll, 9n)!;
    expect(s.hits).toBe(1n);
    expect(s.args.slice(0, 2)).toEqual([2n, 4n]);
  });

  it('no such probe: a typed error listing the probes the binary has; nothing attached', () => {
    using coll = loadCollection(object);
    let err: unknown;
    try {
      attachUsdt(coll.program('record'), target, 'bpfkit', 'nope', { collection: coll });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsdtProbeNotFoundError);
    expect(String(err)).toMatch(/no USDT probe 'bpfkit:nope'.*bpfkit:sizes.*bpfkit:guarded/);
  });

  it('an object without usdt.bpf.h’s maps: an error saying so', () => {
    using coll = loadCollection(new URL('./fixtures/attach_sections.bpf.o', import.meta.url).pathname, {
      programs: ['on_unlink'],
    });
    expect(() =>
      attachUsdt(coll.program('on_unlink'), target, 'bpfkit', 'round', { collection: coll }),
    ).toThrow(/must include <bpf\/usdt.bpf.h>/);
  });
});

describe('against libbpf 1.1', () => {
  it('bpf_program__attach_usdt writes the same __bpf_usdt_specs entries, byte for byte', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpfkit-usdt-'));
    try {
      const bin = join(dir, 'usdt_specs');
      execFileSync(
        'cc',
        ['-O1', '-o', bin, new URL('./libbpf/usdt_specs.c', import.meta.url).pathname, '-lbpf'],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      const probes: [string, string, string, bigint][] = [
        [target, 'bpfkit', 'sizes', 1n],
        [target, 'bpfkit', 'consts', 2n],
        [target, 'bpfkit', 'guarded', 3n],
        [lib, 'bpfkit_lib', 'fired', 0x1122334455667788n],
      ];
      const theirs = execFileSync(bin, [object, 'record', ...probes.map((p) => p.join(':'))], {
        encoding: 'utf8',
      })
        .trim()
        .split('\n');
      using coll = loadCollection(object);
      const attached = probes.map(([b, prov, name, cookie]) =>
        attachUsdt(coll.program('record'), b, prov, name, { collection: coll, cookie }),
      );
      const specs = coll.maps.__bpf_usdt_specs!;
      const dump = () => {
        const out: string[] = [];
        for (let id = 0; id < specs.maxEntries; id++) {
          const k = Buffer.alloc(4);
          k.writeUInt32LE(id);
          const v = Buffer.from(specs.getBytes(k)!);
          if (v.some((x) => x !== 0)) out.push(`${id} ${v.toString('hex')}`);
        }
        return out;
      };
      expect(theirs).toHaveLength(4);
      expect(dump()).toEqual(theirs);
      for (const a of attached) a.detach();
      expect(dump()).toEqual([]); // detaching freed (and cleared) every slot
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('collection.attach()', () => {
  it('attaches usdt/BINARY:PROVIDER:NAME sections (BPF_USDT), leaving plain usdt alone', async () => {
    using coll = loadCollection(object);
    const path = process.env.PATH;
    process.env.PATH = `${dir}:${path}`; // the section names the binary, found on PATH
    let group: ReturnType<typeof attachCollection>;
    try {
      group = attachCollection(coll);
    } finally {
      process.env.PATH = path;
    }
    await using a = start();
    try {
      expect(Object.keys(group.attached)).toEqual(['on_round']);
      expect(group.skipped.record).toMatch(/names no binary, provider and probe/);
      expect(await a.fire()).toBe('semaphore 0');
      expect(await a.fire()).toBe('semaphore 0');
    } finally {
      group.detach();
    }
    expect(await a.fire()).toBe('semaphore 0');
    expect([seen(coll, 1001n)?.args[0], seen(coll, 1002n)?.args[0], seen(coll, 1003n)]).toEqual([
      1n,
      2n,
      undefined,
    ]);
  });
});
