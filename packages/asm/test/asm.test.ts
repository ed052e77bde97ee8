import {
  AsmError,
  Builder,
  decode,
  disassemble,
  encode,
  formatInsn,
  helperId,
  helperName,
  imm64,
  R0,
  R1,
  R2,
  R6,
  R10,
  reg,
} from '@bpfkit/asm';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

/** A program touching every instruction form. */
function everything() {
  return new Builder()
    .mov64(R6, reg(R1))
    .mov64(R0, 0)
    .mov32(R2, -1)
    .add64(R0, 1)
    .sub64(R0, reg(R2))
    .mul32(R2, 3)
    .div64(R2, 2)
    .sdiv64(R2, reg(R0))
    .mod32(R2, 7)
    .smod64(R2, -3)
    .or64(R2, 1)
    .and32(R2, 0xff)
    .xor64(R2, reg(R2))
    .lsh64(R2, 3)
    .rsh32(R2, 1)
    .arsh64(R2, 2)
    .neg64(R2)
    .neg32(R2)
    .movsx64(R1, R2, 8)
    .movsx64(R1, R2, 32)
    .movsx32(R1, R2, 16)
    .endian('be', R1, 16)
    .endian('le', R1, 32)
    .endian('bswap', R1, 64)
    .st('w', R10, -4, 7)
    .stx('dw', R10, -16, R1)
    .ldx('h', R1, R10, -4)
    .ldxsx('b', R1, R10, -4)
    .ldxsx('w', R1, R10, -8)
    .atomic('add', 'dw', R10, -16, R1)
    .atomic('xor', 'w', R10, -4, R1, { fetch: true })
    .xchg('dw', R10, -16, R1)
    .cmpxchg('dw', R10, -16, R1)
    .ldImm64(R1, 0x1122334455667788n)
    .ldMap(R1, 'counts')
    .ldMapValue(R2, 'config', 8)
    .ldBtfId(R1, 1234)
    .ldFunc(R2, 'sub')
    .ldAbs('b', 12)
    .ldInd('h', R6, 2)
    .jeq(R0, 0, 'out')
    .jne32(R0, reg(R2), 'out')
    .jsgt(R1, -1, 'out')
    .jset32(R1, 4, 'out')
    .ja('out')
    .gotol('out')
    .call('map_lookup_elem')
    .call('bpf_ktime_get_ns')
    .callKfunc(5000)
    .callSub('sub')
    .label('out')
    .exit()
    .func('sub')
    .mov64(R0, 1)
    .exit();
}

describe('Builder and encoding', () => {
  it('assembles every instruction form and round-trips through bytes', () => {
    const { insns, mapRefs, labels, functions } = everything().assemble();
    const bytes = encode(insns);
    expect(bytes.length).toBe((insns.length + 5) * 8); // five ld_imm64 take two slots each
    const back = decode(bytes);
    expect(encode(back)).toEqual(bytes);
    expect(back.map((i) => i.code)).toEqual(insns.map((i) => i.code));
    expect(mapRefs).toEqual([
      { insn: 34, name: 'counts', kind: 'map', offset: 0 },
      { insn: 35, name: 'config', kind: 'mapValue', offset: 8 },
    ]);
    expect(labels.get('out')).toBe(functions.get('sub')! - 1);
    expect(imm64(back[33]!)).toBe(0x1122334455667788n);
  });

  it('resolves jumps, gotol and subprogram calls to relative slot offsets', () => {
    const a = new Builder()
      .ldImm64(R1, 1)
      .jeq(R1, 0, 'end')
      .gotol('end')
      .callSub('f')
      .label('end')
      .exit()
      .func('f')
      .exit()
      .assemble();
    // slots: 0-1 ld_imm64, 2 jeq, 3 gotol, 4 call, 5 exit (end), 6 exit (f)
    expect(a.insns[1]!.off).toBe(2);
    expect(a.insns[2]!.imm).toBe(1);
    expect(a.insns[3]!.imm).toBe(1);
    expect(a.functions.get('f')).toBe(6);
  });

  it('disassembles like bpftool', () => {
    const text = disassemble(everything().assemble().insns);
    const lines = text.split('\n');
    expect(lines[0]).toBe('   0: (bf) r6 = r1');
    expect(lines[2]).toBe('   2: (b4) w2 = -1');
    expect(text).toContain('(3f) r2 s/= r0');
    expect(text).toContain('(97) r2 s%= -3');
    expect(text).toContain('(87) r2 = -r2');
    expect(text).toContain('(bf) r1 = (s8)r2');
    expect(text).toContain('(dc) r1 = be16 r1');
    expect(text).toContain('(d4) r1 = le32 r1');
    expect(text).toContain('(d7) r1 = bswap64 r1');
    expect(text).toContain('(62) *(u32 *)(r10 -4) = 7');
    expect(text).toContain('(7b) *(u64 *)(r10 -16) = r1');
    expect(text).toContain('(69) r1 = *(u16 *)(r10 -4)');
    expect(text).toContain('(91) r1 = *(s8 *)(r10 -4)');
    expect(text).toContain('(db) lock *(u64 *)(r10 -16) += r1');
    expect(text).toContain('(c3) r1 = atomic_fetch_xor((u32 *)(r10 -4), r1)');
    expect(text).toContain('(db) r1 = atomic64_xchg((u64 *)(r10 -16), r1)');
    expect(text).toContain('(db) r0 = atomic64_cmpxchg((u64 *)(r10 -16), r0, r1)');
    expect(text).toContain('(18) r1 = 0x1122334455667788');
    expect(text).toContain('(18) r1 = map[counts]');
    expect(text).toContain('(18) r2 = map[config][0]+8');
    expect(text).toContain('(30) r0 = *(u8 *)skb[12]');
    expect(text).toContain('(48) r0 = *(u16 *)skb[r6 + 2]');
    expect(text).toContain('(15) if r0 == 0x0 goto out');
    expect(text).toContain('(5e) if w0 != w2 goto out');
    expect(text).toContain('(85) call bpf_map_lookup_elem#1');
    expect(text).toContain('(85) call kernel-function#5000');
    expect(text).toContain('(85) call sub');
    expect(text).toContain('(95) exit');
    // decoded (no symbols) shows pc-relative targets
    const raw = disassemble(decode(encode(everything().assemble().insns)));
    expect(raw).toMatch(/\(15\) if r0 == 0x0 goto pc\+\d+/);
    expect(raw).toMatch(/\(06\) gotol pc\+\d+/);
    expect(formatInsn({ code: 0x95, dst: 0, src: 0, off: 0, imm: 0 })).toBe('(95) exit');
  });

  it('prints the kernel-internal and newer forms as the kernel disassembler does', () => {
    const f = (code: number, dst: number, src: number, off: number, imm: number, extra = {}) =>
      formatInsn({ code, dst, src, off, imm, ...extra }, { xlated: true });
    // the per-CPU address mov of inlined lookups, not a sign-extending mov of width -1
    expect(f(0xbf, 0, 0, -1, 0)).toBe('(bf) r0 = &(void __percpu *)(r0)');
    expect(f(0xbf, 1, 2, 1, (1 << 16) | 0)).toBe('(bf) r1 = addr_space_cast(r2, 1, 0)');
    // a mov whose off is no sign-extension width is a plain mov
    expect(f(0xbf, 1, 2, 3, 0)).toBe('(bf) r1 = r2');
    expect(f(0x15, 1, 0, 2, -1)).toBe('(15) if r1 == 0xffffffff goto pc+2');
    expect(f(0xdb, 1, 2, 8, 0x100)).toBe('(db) r1 = load_acquire((u64 *)(r2 +8))');
    expect(f(0xc3, 1, 2, -4, 0x110)).toBe('(c3) store_release((u32 *)(r1 -4), r2)');
    expect(f(0x18, 2, 4, 0, 3, { imm64Hi: 0 })).toBe('(18) r2 = subprog[+3]');
    expect(f(0x18, 2, 6, 0, 1, { imm64Hi: 16 })).toBe('(18) r2 = map[idx:1]+16');
    expect(f(0x18, 1, 1, 0, 7, { imm64Hi: 0 })).toBe('(18) r1 = map[id:7]');
    // xlated subprogram calls: pc offset in off, imm is the subprogram's index
    expect(f(0x85, 0, 1, 7, 2)).toBe('(85) call pc+7');
    expect(
      formatInsn(
        { code: 0x85, dst: 0, src: 1, off: 7, imm: 2 },
        { xlated: true, callName: (i) => `+${i.off}#sub${i.imm}` },
      ),
    ).toBe('(85) call pc+7#sub2');
    expect(
      formatInsn({ code: 0x85, dst: 0, src: 2, off: 0, imm: 99 }, { callName: () => 'bpf_obj_new_impl' }),
    ).toBe('(85) call bpf_obj_new_impl#99');
    // the helper table comes first, as in the kernel
    expect(formatInsn({ code: 0x85, dst: 0, src: 0, off: 0, imm: 1 }, { callName: () => 'x' })).toBe(
      '(85) call bpf_map_lookup_elem#1',
    );
    expect(f(0x72, 10, 0, -8, 0)).toBe('(72) *(u8 *)(r10 -8) = 0');
    expect(f(0xd2, 0, 0, 0, 0)).toBe('(d2) nospec');
    expect(f(0xe1, 0, 0, 0, 0)).toBe('BUG_e1');
  });

  it('maps helper names and ids both ways', () => {
    expect(helperId('map_lookup_elem')).toBe(1);
    expect(helperId('bpf_trace_printk')).toBe(6);
    expect(helperName(1)).toBe('bpf_map_lookup_elem');
  });
});

describe('bad input is a typed error naming the instruction', () => {
  it('unknown helpers, registers, immediates, labels and sizes', () => {
    expect(() => new Builder().mov64(R0, 0).call('map_lookup')).toThrow(
      /instruction 1: unknown helper 'map_lookup'; did you mean bpf_map_lookup_elem/,
    );
    expect(() => new Builder().mov64(11, 0)).toThrow(/instruction 0: destination r11 is out of range/);
    expect(() => new Builder().mov64(R0, reg(12))).toThrow(AsmError);
    expect(() => new Builder().mov64(R0, 2 ** 33)).toThrow(/does not fit in 32 bits/);
    expect(() => new Builder().ldImm64(R1, 1).ja('nowhere').assemble()).toThrow(
      /instruction 2: unresolved label 'nowhere'/,
    );
    expect(() => new Builder().callSub('nope').exit().assemble()).toThrow(
      /unresolved label 'nope'|unresolved subprogram/,
    );
    expect(() => new Builder().label('a').label('a')).toThrow(/defined twice/);
    expect(() => new Builder().ldx(3 as never, R0, R1, 0)).toThrow(/bad access size/);
    expect(() => decode(new Uint8Array(12))).toThrow(/multiple of 8/);
    expect(() => decode(new Uint8Array([0x18, 0, 0, 0, 0, 0, 0, 0]))).toThrow(/second half/);
  });

  it('jumps beyond a 16-bit offset must use gotol', () => {
    const b = new Builder().ja('far');
    for (let i = 0; i < 40000; i++) b.mov64(R0, 0);
    b.label('far').exit();
    expect(() => b.assemble()).toThrow(/beyond a 16-bit offset; use gotol/);
    const g = new Builder().gotol('far');
    for (let i = 0; i < 40000; i++) g.mov64(R0, 0);
    expect(g.label('far').exit().assemble().insns[0]!.imm).toBe(40000);
  });

  it('decode never throws anything but AsmError, and encode∘decode is the identity (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 8, maxLength: 8 }), { maxLength: 32 }),
        fc.boolean(),
        (slots, zeroHigh) => {
          const bytes = new Uint8Array(slots.length * 8);
          slots.forEach((s, i) => {
            bytes.set(s, i * 8);
            if (zeroHigh && i > 0 && bytes[(i - 1) * 8] === 0x18) bytes.fill(0, i * 8, i * 8 + 4);
          });
          try {
            const insns = decode(bytes);
            expect(encode(insns)).toEqual(bytes);
            for (const i of insns) formatInsn(i);
          } catch (e) {
            if (!(e instanceof AsmError)) throw e;
          }
        },
      ),
      { seed: 7, numRuns: 1000 },
    );
  });
});
