import { Builder, type Insn, R0, R1, R2, R6, reg } from '@bpfkit/asm';
import { Program, VerifierError } from '@bpfkit/loader';
import { BpfMap, u32 } from '@bpfkit/maps';
import { NotSupportedError, ProgType } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';
import { addToSlot0 } from '../../../tools/testing/programs.js';

const XDP_DROP = 1;
const XDP_PASS = 2;

describe('Program.load and testRun', () => {
  it('runs an XDP program on a packet and returns its verdict and data', () => {
    // Drop packets whose first byte is 0xff, else write 0xab into byte 1 and pass.
    const b = new Builder()
      .ldx('w', R2, R1, 0) // data
      .ldx('w', R1, R1, 4) // data_end
      .mov64(R0, XDP_DROP)
      .mov64(R6, reg(R2))
      .add64(R6, 2)
      .jgt(R6, reg(R1), 'out')
      .ldx('b', R6, R2, 0)
      .jeq(R6, 0xff, 'out')
      .st('b', R2, 1, 0xab)
      .mov64(R0, XDP_PASS)
      .label('out')
      .exit();
    using prog = Program.load({ type: 'xdp', license: 'GPL', name: 'xdp_test', instructions: b });
    const pass = prog.testRun({ data: new Uint8Array(64).fill(1), repeat: 3 });
    expect(pass.retval).toBe(XDP_PASS);
    expect(pass.data[1]).toBe(0xab);
    expect(pass.data.length).toBe(64);
    const drop = prog.testRun({ data: new Uint8Array(64).fill(0xff) });
    expect(drop.retval).toBe(XDP_DROP);
    expect(prog.info).toMatchObject({ name: 'xdp_test', typeName: 'xdp' });
  });

  it('runs a socket filter on a packet', () => {
    using prog = Program.load({
      type: ProgType.SOCKET_FILTER,
      license: 'GPL',
      instructions: new Builder().ldx('w', R0, R1, 0).exit(), // return skb->len
    });
    // test_run treats data as an Ethernet frame and pulls the 14-byte header
    expect(prog.testRun({ data: new Uint8Array(100) }).retval).toBe(86);
  });

  it('accepts encoded bytes and decoded instructions', () => {
    const bytes = new Builder().mov64(R0, 7).exit();
    using a = Program.load({ type: 'socket_filter', license: 'GPL', instructions: bytes.assemble().insns });
    expect(a.testRun({ data: new Uint8Array(20) }).retval).toBe(7);
    using c = Program.fromId(a.info.id);
    expect(c.info.tag).toBe(a.info.tag);
  });
});

describe('the verifier log', () => {
  it('a rejected program gives a VerifierError pointing at the offending instruction', () => {
    const bad = new Builder()
      .mov64(R0, 0)
      .ldx('dw', R1, R2, 8) // R2 is not initialised at entry
      .exit();
    let err: unknown;
    try {
      Program.load({ type: 'socket_filter', license: 'GPL', name: 'bad', instructions: bad });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VerifierError);
    const v = err as VerifierError;
    expect(v.code).toBe('EACCES');
    expect(v.log).toContain('R2 !read_ok');
    expect(v.insnIndex).toBe(1);
    expect(v.excerpt).toBe('     0: (b7) r0 = 0\n>    1: (79) r1 = *(u64 *)(r2 +8)\n     2: (95) exit');
    expect(v.message).toMatch(
      /BPF_PROG_LOAD \(socket_filter 'bad'\) failed: EACCES .* verifier: .*R2 !read_ok.* \(at instruction 1\)/s,
    );
    expect(v.truncated).toBe(false);
  });

  it('grows a small log buffer until the whole log fits, on demand', () => {
    const b = new Builder().mov64(R0, 0);
    for (let i = 0; i < 200; i++) b.add64(R0, 1);
    b.exit();
    using prog = Program.load({
      type: 'socket_filter',
      license: 'GPL',
      instructions: b,
      logLevel: 2,
      logSize: 128,
    });
    expect(prog.verifierLog).toBeDefined();
    expect(prog.verifierLog!.length).toBeGreaterThan(128);
    expect(prog.verifierLog).toMatch(/processed \d+ insns/);
    using quiet = Program.load({ type: 'socket_filter', license: 'GPL', instructions: b });
    expect(quiet.verifierLog).toBeUndefined();
  });
});

describe('bad input', () => {
  it('is caught before the syscall with a clear error', () => {
    const withMap = new Builder().ldMap(R1, 'counts').mov64(R0, 0).exit();
    expect(() => Program.load({ type: 'socket_filter', license: 'GPL', instructions: withMap })).toThrow(
      /instruction 0: map 'counts' is not given/,
    );
    expect(() =>
      Program.load({ type: 'nope' as never, license: 'GPL', instructions: new Builder().exit() }),
    ).toThrow(/unknown program type 'nope'/);
    expect(() =>
      Program.load({ type: 'xdp', license: undefined as never, instructions: new Builder().exit() }),
    ).toThrow(/license is required/);
    // '' is no license (libbpf's reading of an object without one): it loads, not GPL-compatible
    using unlicensed = Program.load({
      type: 'xdp',
      license: '',
      instructions: new Builder().mov64(R0, 2).exit(),
    });
    expect(unlicensed.info.gplCompatible).toBe(0);
    expect(() => Program.load({ type: 'xdp', license: 'GPL', instructions: [] })).toThrow(RangeError);
    expect(() =>
      Program.load({
        type: 'xdp',
        license: 'GPL',
        name: 'way too long a name',
        instructions: new Builder().exit(),
      }),
    ).toThrow(RangeError);
  });

  it('raw instructions with bad jump targets or registers are caught, naming the instruction', () => {
    const load = (insns: Insn[]) =>
      Program.load({ type: 'socket_filter', license: 'GPL', instructions: insns });
    const mov0 = { code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 };
    const exit = { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 };
    expect(() => load([mov0, { code: 0x05, dst: 0, src: 0, off: 5, imm: 0 }, exit])).toThrow(
      /instruction 1: jump target 7 is outside the program \(0..2\)/,
    );
    expect(() =>
      load([
        { code: 0x05, dst: 0, src: 0, off: 1, imm: 0 },
        { code: 0x18, dst: 1, src: 0, off: 0, imm: 1, imm64Hi: 0 },
        mov0,
        exit,
      ]),
    ).toThrow(/instruction 0: jump target 2 is the second half of an ld_imm64/);
    expect(() => load([{ ...mov0, dst: 12 }, exit])).toThrow(
      /instruction 0: destination register r12 is out of range/,
    );
    expect(() => load([mov0, { code: 0x85, dst: 0, src: 1, off: 0, imm: -5 }, exit])).toThrow(
      /call target -3 is outside/,
    );
  });

  it('names a program type the kernel lacks', () => {
    // This kernel is built without CONFIG_BPF_LIRC_MODE2.
    expect(() =>
      Program.load({ type: 'lirc_mode2', license: 'GPL', instructions: new Builder().mov64(R0, 0).exit() }),
    ).toThrow(NotSupportedError);
  });

  it('a failed load reports its own error: a program-type probe run after it never replaces it', () => {
    // A BTF tracepoint program without its attach_btf_id: the kernel says EINVAL, with its reason
    // in the log. The EINVAL makes Program.load ask whether the kernel knows tracing programs at
    // all; that probe may fail on its own (EPERM here, where fentry loads are refused) or answer
    // "yes" — either way the error stays the load's.
    const load = (logLevel?: number) =>
      Program.load({
        type: 'tracing',
        attachType: 'trace_raw_tp',
        license: 'GPL',
        name: 'no_target',
        instructions: new Builder().mov64(R0, 0).exit(),
        ...(logLevel ? { logLevel } : {}),
      });
    for (const level of [undefined, 1]) {
      let err: unknown;
      try {
        load(level).close();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(VerifierError);
      expect(err).not.toBeInstanceOf(NotSupportedError);
      expect((err as VerifierError).code).toBe('EINVAL');
      expect((err as VerifierError).message).toContain("tracing 'no_target'");
      expect((err as VerifierError).log).toMatch(/Tracing programs must provide btf_id/);
    }
  });

  it('a closed program refuses use', () => {
    const prog = Program.load({
      type: 'socket_filter',
      license: 'GPL',
      instructions: new Builder().mov64(R0, 0).exit(),
    });
    prog.close();
    prog.close();
    expect(() => prog.testRun()).toThrow(/is closed/);
  });
});

describe('maps in programs', () => {
  it('resolves map references by name and reads values back', () => {
    using counts = BpfMap.create({ type: 'array', key: u32, value: u32, maxEntries: 1 });
    const b = addToSlot0(new Builder(), 'counts', 5, 'w').label('out').mov64(R0, 0).exit();
    using prog = Program.load({ type: 'socket_filter', license: 'GPL', instructions: b, maps: { counts } });
    prog.testRun({ data: new Uint8Array(20), repeat: 4 });
    expect(counts.get(0)).toBe(20);
    expect(prog.info.mapIds).toEqual([counts.info.id]);
  });

  it('reads an array map value directly with ldMapValue', () => {
    using cfg = BpfMap.create({ type: 'array', key: u32, value: 8, maxEntries: 1 });
    cfg.set(0, new Uint8Array([0, 0, 0, 0, 42, 0, 0, 0]));
    const b = new Builder().ldMapValue(R1, 'cfg', 4).ldx('w', R0, R1, 0).exit();
    using prog = Program.load({ type: 'socket_filter', license: 'GPL', instructions: b, maps: { cfg } });
    expect(prog.testRun({ data: new Uint8Array(20) }).retval).toBe(42);
  });
});
