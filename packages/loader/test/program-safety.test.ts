// Issue 13: testRun options out of the kernel's u32 range fail before the syscall (repeat -1
// would run the program 2^32-1 times), and a program whose Fd was closed never reaches the kernel.
import { Builder, R0 } from '@bpfkit/asm';
import { Program } from '@bpfkit/loader';
import { ClosedError } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';

const load = () =>
  Program.load({ type: 'socket_filter', license: 'GPL', instructions: new Builder().mov64(R0, 3).exit() });

describe('Program.testRun options', () => {
  it('repeat and the other numeric options must be whole numbers 0..2^32-1', () => {
    using prog = load();
    const data = new Uint8Array(20);
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 32, Number.POSITIVE_INFINITY, '3' as unknown as number])
      for (const k of ['repeat', 'dataOutSize', 'ctxOutSize', 'flags', 'cpu'] as const)
        expect(() => prog.testRun({ data, [k]: bad }), `${k} ${String(bad)}`).toThrow(
          `testRun ${k} must be a`,
        );
    expect(() => prog.testRun({ data, repeat: -1 })).toThrow(
      'testRun repeat must be a whole number in 0..4294967295, got -1',
    );
    expect(prog.testRun({ data, repeat: 0 }).retval).toBe(3);
    expect(prog.testRun({ data, repeat: 2 }).retval).toBe(3);
  });

  it('closing program.fd closes the program: it no longer reaches the kernel', () => {
    const prog = load();
    prog.fd.close();
    expect(() => prog.testRun({ data: new Uint8Array(20) })).toThrow(ClosedError);
    expect(() => prog.info).toThrow(ClosedError);
    prog.close();
  });
});
