// uprobe.multi, uretprobe.multi and uprobe.session links on a library of our own
// (fixtures/libumulti_lib.c, driven by fixtures/umulti_target.c): calls counted per function
// through cookies, return values, the session's entry deciding the return run, the pid filter,
// a reference counter, attach by section, sleepable programs reading a string argument, and the
// typed errors. Kernels before 6.6 (uprobe_multi) and 6.13 (uprobe.session) get NotSupportedError.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { delimiter } from 'node:path';
import { createInterface } from 'node:readline';
import { Builder, R0 } from '@bpfkit/asm';
import {
  attachCollection,
  attachUprobe,
  attachUprobeMulti,
  attachUprobeSession,
  resolveUprobePattern,
  SymbolNotFoundError,
  symbolOffset,
} from '@bpfkit/link';
import { type Collection, loadCollection, Program } from '@bpfkit/loader';
import { bytes, i64, u32, u64 } from '@bpfkit/maps';
import { describe, expect, it } from 'vitest';
import { errorOf } from '../../../tools/testing/features.js';

const dir = new URL('./fixtures/', import.meta.url).pathname;
const lib = `${dir}libumulti_lib.so`;
const target = `${dir}umulti_target`;
const object = `${dir}umulti.bpf.o`;

/** The target, driven a line at a time: `run(cmd)` resolves with the line it printed. */
function start() {
  const child: ChildProcessWithoutNullStreams = spawn(target, [lib]);
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    pid: child.pid!,
    async run(cmd: string): Promise<string> {
      child.stdin.write(`${cmd}\n`);
      const r = await lines.next();
      if (r.done) throw new Error(`umulti_target exited before answering '${cmd}'`);
      return String(r.value);
    },
    async [Symbol.asyncDispose]() {
      child.stdin.end();
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}

/** Cookie → value of a hash map the fixture fills. */
function byCookie(coll: Collection, name: string, signed = false): Map<bigint, bigint> {
  const m = coll.map(name, { key: u64, value: signed ? i64 : u64 });
  return new Map(m.entries());
}

/** The string the sleepable program stored under `slot`. */
function stored(coll: Collection, slot: number): string {
  const v = coll.map('strs', { key: u32, value: bytes(32) }).get(slot)!;
  const b = Buffer.from(v);
  return b.toString('latin1', 0, b.indexOf(0) < 0 ? b.length : b.indexOf(0));
}

describe('uprobe.multi', () => {
  it('resolves a glob over the library’s function symbols, in name order; no match names pattern and binary', () => {
    const fns = resolveUprobePattern(lib, 'umulti_*');
    expect(fns.map((f) => f.name)).toEqual(['umulti_add', 'umulti_mul', 'umulti_sub']);
    expect(fns.map((f) => f.offset)).toEqual(fns.map((f) => symbolOffset(lib, f.name)));
    const e = errorOf(() => resolveUprobePattern(lib, 'nothing_*'));
    expect(e).toBeInstanceOf(SymbolNotFoundError);
    expect(e.message).toBe(`no function matching 'nothing_*' in ${lib}`);
  });

  it('over umulti_*: cookies count exactly the calls made to each function; uretprobe.multi sums what they returned', async () => {
    using coll = loadCollection(object, { programs: ['count_entry', 'sum_return'] });
    await using t = start();
    const cookies = [1n, 2n, 3n]; // umulti_add, umulti_mul, umulti_sub
    const sums: string[] = [];
    {
      using link = attachUprobeMulti(coll.program('count_entry'), {
        binary: lib,
        pattern: 'umulti_*',
        cookies,
      });
      using _r = attachUprobeMulti(coll.program('sum_return'), {
        binary: lib,
        pattern: 'umulti_*',
        cookies,
        retprobe: true,
      });
      expect(link.info.typeName).toBe('uprobe_multi');
      sums.push(await t.run('add 3 10')); // 10 + 11 + 12
      sums.push(await t.run('mul 2 7')); // 0 + 7
      sums.push(await t.run('other 5 1')); // other_add: not matched
    }
    expect(sums).toEqual(['33', '7', '15']);
    expect(await t.run('add 4 1')).toBe('10'); // detached: not counted
    expect(byCookie(coll, 'calls')).toEqual(
      new Map([
        [1n, 3n],
        [2n, 2n],
      ]),
    );
    expect(byCookie(coll, 'rets', true)).toEqual(
      new Map([
        [1n, 33n],
        [2n, 7n],
      ]),
    );
  });

  it('by symbols and by offsets; a reference counter is raised while attached', async () => {
    using coll = loadCollection(object, { programs: ['count_entry'] });
    await using t = start();
    expect(await t.run('sem')).toBe('0');
    {
      using _s = attachUprobeMulti(coll.program('count_entry'), {
        binary: lib,
        symbols: ['umulti_sub', 'other_add'],
        cookies: [7n, 8n],
      });
      using _o = attachUprobeMulti(coll.program('count_entry'), {
        binary: lib,
        offsets: [symbolOffset(lib, 'umulti_mul')],
        refCtrOffsets: [symbolOffset(lib, 'umulti_semaphore', 'object')],
        cookies: [9n],
      });
      expect(await t.run('sem')).toBe('1');
      await t.run('sub 2 0');
      await t.run('other 1 0');
      await t.run('mul 4 0');
    }
    expect(await t.run('sem')).toBe('0');
    expect(byCookie(coll, 'calls')).toEqual(
      new Map([
        [7n, 2n],
        [8n, 1n],
        [9n, 4n],
      ]),
    );
  });

  it('pid: only the calls of that process', async () => {
    using coll = loadCollection(object, { programs: ['count_entry'] });
    await using a = start();
    await using b = start();
    {
      using _l = attachUprobeMulti(coll.program('count_entry'), {
        binary: lib,
        symbols: ['umulti_add'],
        cookies: [1n],
        pid: a.pid,
      });
      await a.run('add 3 0');
      await b.run('add 5 0');
      await a.run('add 1 0');
    }
    expect(byCookie(coll, 'calls')).toEqual(new Map([[1n, 4n]]));
  });

  it('attach by section: uprobe.multi/umulti_target:umt_* finds the program on PATH', async () => {
    using coll = loadCollection(object);
    await using t = start();
    const path = process.env.PATH;
    process.env.PATH = `${dir}${delimiter}${path ?? ''}`;
    try {
      using group = attachCollection(coll);
      expect(Object.keys(group.attached).sort()).toEqual(['by_section', 'by_section_ret']);
      expect(group.skipped.count_entry).toMatch(
        /section 'uprobe.multi' its section names no binary and function pattern/,
      );
      expect(await t.run('tick 4')).toBe('12'); // 0 + 2 + 4 + 6
    } finally {
      process.env.PATH = path;
    }
    await t.run('tick 2'); // detached
    expect(byCookie(coll, 'calls').get(100n)).toBe(4n);
    expect(byCookie(coll, 'rets', true).get(100n)).toBe(12n);
  });

  it('bad input is refused before the syscall, with the pattern, name and binary', () => {
    using coll = loadCollection(object, { programs: ['count_entry'] });
    const p = coll.program('count_entry');
    const none = errorOf(() => attachUprobeMulti(p, { binary: lib, pattern: 'nope_*' }));
    expect(none).toBeInstanceOf(SymbolNotFoundError);
    expect(none.message).toBe(`no function matching 'nope_*' in ${lib}`);
    const typo = errorOf(() => attachUprobeMulti(p, { binary: lib, symbols: ['umulti_ad'] }));
    expect(typo.message).toMatch(new RegExp(`no function 'umulti_ad' in ${lib}; did you mean umulti_add`));
    expect(() => attachUprobeMulti(p, { binary: lib, symbols: ['umulti_add'], cookies: [1n, 2n] })).toThrow(
      RangeError,
    );
    expect(() => attachUprobeMulti(p, { binary: lib, symbols: ['umulti_add'], pattern: 'umulti_*' })).toThrow(
      /exactly one of symbols, pattern or offsets/,
    );
    expect(() => attachUprobeMulti(p, { binary: lib, offsets: [-1] })).toThrow(RangeError);
    expect(() => attachUprobeMulti(p, { binary: 'libnothing-here.so.9', pattern: '*' })).toThrow(
      /no library 'libnothing-here.so.9'/,
    );
    expect(() =>
      attachUprobeSession(p, { binary: lib, pattern: 'umulti_*', retprobe: true } as never),
    ).toThrow(/retprobe does not apply/);
  });
});

describe('uprobe.session', () => {
  it('the entry run’s return value decides whether the return run happens', async () => {
    // a session link of a program built here first: an older kernel answers NotSupportedError
    {
      using probe = Program.load({
        type: 'kprobe',
        license: 'GPL',
        attachType: 'trace_uprobe_session',
        instructions: new Builder().mov64(R0, 0).exit(),
      });
      attachUprobeSession(probe, { binary: lib, symbols: ['umulti_add'] }).close();
    }
    using coll = loadCollection(`${dir}umulti_session.bpf.o`);
    await using t = start();
    {
      using _s = attachUprobeSession(coll.program('session'), {
        binary: lib,
        pattern: 'umulti_*',
        cookies: [1n, 2n, 3n],
      });
      await t.run('add 5 0'); // second arguments 0..4: returns seen for 0, 2, 4
      await t.run('sub 1 0');
      await t.run('mul 2 0');
    }
    const entries = new Map(coll.map('entries', { key: u64, value: u64 }).entries());
    const returns = new Map(coll.map('returns', { key: u64, value: u64 }).entries());
    expect(entries).toEqual(
      new Map([
        [1n, 5n],
        [2n, 2n],
        [3n, 1n],
      ]),
    );
    expect(returns).toEqual(
      new Map([
        [1n, 3n],
        [2n, 1n],
        [3n, 1n],
      ]),
    );
  });
});

describe('sleepable uprobes', () => {
  it('uprobe.s reads a string argument with bpf_copy_from_user', async () => {
    using coll = loadCollection(object, { programs: ['read_string_s'] });
    await using t = start();
    {
      using _u = attachUprobe(coll.program('read_string_s'), lib, 'umstr_len', { cookie: 1n, mode: 'link' });
      expect(await t.run('str hello-from-bpfkit')).toBe('17');
    }
    expect(stored(coll, 1)).toBe('hello-from-bpfkit');
  });

  it('uprobe.multi.s reads it too', async () => {
    using coll = loadCollection(object, { programs: ['read_string_multi_s'] });
    await using t = start();
    {
      using _u = attachUprobeMulti(coll.program('read_string_multi_s'), {
        binary: lib,
        symbols: ['umstr_len'],
        cookies: [2n],
      });
      expect(await t.run('str sleepy')).toBe('6');
    }
    expect(stored(coll, 2)).toBe('sleepy');
  });
});
