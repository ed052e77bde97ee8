import { readFileSync } from 'node:fs';
import { encode } from '@bpfkit/asm';
import {
  Btf,
  BtfLoadError,
  btfFromKernel,
  CoreReloKind,
  decodeValue,
  encodeBtf,
  encodeValue,
  formatValue,
  loadBtf,
  parseBtfExt,
  patchCoreRelo,
  resolveCoreRelo,
  vmlinuxBtfId,
} from '@bpfkit/btf';
import { describe, expect, it } from 'vitest';
import { BlobWriter } from '../../../tools/testing/btf.js';

// The loader's ELF reader is a layer above; read the .BTF sections by hand here.
function elfSection(path: string, name: string): Uint8Array {
  const b = readFileSync(new URL(`../../loader/test/fixtures/${path}`, import.meta.url));
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const shoff = Number(dv.getBigUint64(40, true));
  const shnum = dv.getUint16(60, true);
  const strndx = dv.getUint16(62, true);
  const sh = (i: number) => ({
    name: dv.getUint32(shoff + i * 64, true),
    off: Number(dv.getBigUint64(shoff + i * 64 + 24, true)),
    size: Number(dv.getBigUint64(shoff + i * 64 + 32, true)),
  });
  const names = sh(strndx);
  for (let i = 0; i < shnum; i++) {
    const s = sh(i);
    const n = b.subarray(names.off + s.name, b.indexOf(0, names.off + s.name)).toString();
    if (n === name) return new Uint8Array(b.subarray(s.off, s.off + s.size));
  }
  throw new Error(`${path} has no ${name}`);
}
const strip = (btf: Btf) =>
  JSON.stringify([...btf.types()], (_, v) => (typeof v === 'bigint' ? String(v) : v));

describe('encode', () => {
  it('round-trips the kernel’s BTF and an object’s BTF through encode and parse', () => {
    const kernel = Btf.kernel();
    const again = Btf.parse(encodeBtf([...kernel.types()], kernel.raw.strings));
    expect(again.typeCount).toBe(kernel.typeCount);
    expect(strip(again)).toBe(strip(kernel));
    const obj = Btf.parse(elfSection('core.bpf.o', '.BTF'));
    const re = encodeBtf([...obj.types()], obj.raw.strings);
    expect(strip(Btf.parse(re))).toBe(strip(obj));
    // the original string table is kept, so line info offsets stay valid
    expect(Btf.parse(re).raw.strings.subarray(0, obj.raw.strings.length)).toEqual(obj.raw.strings);
  });

  it('loads into the kernel, and a bad blob gives the kernel’s BTF log', () => {
    const w = new BlobWriter();
    w.type('int', 1, 0, 4, [(1 << 24) | 32]);
    w.type('s', 4, 1, 4, [w.str('x'), 1, 0]);
    using fd = loadBtf(w.build(), { name: 'test' });
    expect(fd.closed).toBe(false);
    const bad = new BlobWriter();
    bad.type('s', 4, 1, 4, [bad.str('x'), 77, 0]); // member of a type that does not exist
    let err: unknown;
    try {
      loadBtf(bad.build(), { name: 'bad' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BtfLoadError);
    expect((err as BtfLoadError).log).toMatch(/Invalid member|Invalid type_id/);
    expect((err as Error).message).toMatch(/^BPF_BTF_LOAD \(BTF of bad\) failed: EINVAL .* BTF log: /);
  });

  it('reads the kernel’s BTF back by id', () => {
    // by the id the kernel lists it under (before 5.11 it lists none: NotSupportedError)
    const vmlinux = btfFromKernel(vmlinuxBtfId());
    expect(vmlinux.typeCount).toBe(Btf.kernel().typeCount);
  });
});

describe('.BTF.ext', () => {
  it('parses func info, line info and CO-RE relocations', () => {
    const btf = Btf.parse(elfSection('core.bpf.o', '.BTF'));
    const ext = parseBtfExt(elfSection('core.bpf.o', '.BTF.ext'), btf.raw.strings);
    expect(ext.funcInfoRecSize).toBe(8);
    expect(ext.lineInfoRecSize).toBe(16);
    expect([...ext.funcInfo.keys()].sort()).toEqual([
      'raw_tp/sys_enter',
      'tracepoint/syscalls/sys_enter_getppid',
    ]);
    const relos = ext.coreRelos.get('raw_tp/sys_enter')!;
    const kinds = new Set(relos.map((r) => r.kind));
    for (const k of [
      CoreReloKind.FIELD_BYTE_OFFSET,
      CoreReloKind.FIELD_BYTE_SIZE,
      CoreReloKind.FIELD_EXISTS,
      CoreReloKind.FIELD_SIGNED,
      CoreReloKind.FIELD_LSHIFT_U64,
      CoreReloKind.FIELD_RSHIFT_U64,
      CoreReloKind.TYPE_ID_TARGET,
      CoreReloKind.TYPE_EXISTS,
      CoreReloKind.TYPE_SIZE,
      CoreReloKind.ENUMVAL_EXISTS,
      CoreReloKind.ENUMVAL_VALUE,
    ])
      expect(kinds.has(k), `kind ${k}`).toBe(true);
    expect(() => parseBtfExt(new Uint8Array(10), btf.raw.strings)).toThrow(/shorter than its header/);
  });
});

describe('CO-RE', () => {
  const btf = Btf.parse(elfSection('core.bpf.o', '.BTF'));
  const ext = parseBtfExt(elfSection('core.bpf.o', '.BTF.ext'), btf.raw.strings);
  const kernel = Btf.kernel();
  const relos = ext.coreRelos.get('raw_tp/sys_enter')!;

  it('resolves field offsets against the kernel’s layout', () => {
    const task = kernel.find('task_struct', 'struct');
    const tgidOff = kernel.member(task.id, 'tgid').bitOffset / 8;
    const localTask = btf.find('task_struct', 'struct');
    const tgid = relos.find(
      (r) =>
        r.kind === CoreReloKind.FIELD_BYTE_OFFSET &&
        r.typeId === localTask.id &&
        r.access === `0:${localTask.members.findIndex((m) => m.name === 'tgid')}`,
    );
    expect(tgid).toBeDefined();
    const res = resolveCoreRelo(btf, kernel, tgid!);
    expect(res).toMatchObject({ poison: false, targetTypeId: task.id });
    expect(res.target.value).toBe(BigInt(tgidOff));
  });

  it('every relocation of the fixture resolves; a missing field poisons', () => {
    for (const r of relos)
      expect(resolveCoreRelo(btf, kernel, r).poison, `${r.kind} ${r.access}`).toBe(false);
    const fake = btf.find('task_struct___mine', 'struct');
    const missing = {
      insnOff: 0,
      typeId: fake.id,
      access: '0:1',
      kind: CoreReloKind.FIELD_BYTE_OFFSET,
    } as const;
    const res = resolveCoreRelo(btf, kernel, missing);
    expect(res.poison).toBe(true);
    expect(res.reason).toMatch(/'no_such_field_in_any_kernel' of struct 'task_struct' not found/);
    const ldxw = { code: 0x61, dst: 0, src: 1, off: 4, imm: 0 }; // r0 = *(u32 *)(r1 + 4)
    const code = encode(patchCoreRelo(ldxw, missing, res));
    expect([...code]).toEqual([0x85, 0, 0, 0, 0x10, 0x23, 0xad, 0x0b]); // call 0xbad2310
  });
});

describe('values and generated TypeScript', () => {
  const btf = Btf.parse(elfSection('maps.bpf.o', '.BTF'));
  const stats = btf.find('stats', 'struct');

  it('decodes, encodes and formats by type', () => {
    const bytes = new Uint8Array(stats.size);
    const view = new DataView(bytes.buffer);
    encodeValue(btf, stats.id, view, 0, { packets: 3n, bytes: 1500n, last_len: 500, seen: 1 });
    expect(decodeValue(btf, stats.id, view)).toEqual({ packets: 3n, bytes: 1500n, last_len: 500, seen: 1 });
    expect(JSON.parse(formatValue(btf, stats.id, bytes))).toEqual({
      packets: 3,
      bytes: 1500,
      last_len: 500,
      seen: 1,
    });
    expect(() => encodeValue(btf, stats.id, view, 0, { last_len: -1 })).toThrow(
      /last_len \(32-bit unsigned\) cannot hold -1/,
    );
  });
});
