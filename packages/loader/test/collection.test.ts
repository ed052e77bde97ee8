import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { Btf } from '@bpfkit/btf';
import { kernelConfig, linuxKernelVersion, loadCollection, ObjectFile, VerifierError } from '@bpfkit/loader';
import { CodecMismatchError, possibleCpus, struct, u32, u64 } from '@bpfkit/maps';
import { NativeBuffer, rawTracepointOpen } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';

/** BPF_RAW_TRACEPOINT_OPEN straight from sys (attaching is @bpfkit/link's, a layer above). */
function attachRawTracepoint(program: { fd: { value: number } }, name: string) {
  using tp = NativeBuffer.from(name);
  return rawTracepointOpen({ name: tp.ptr, progFd: program.fd.value }, `raw tracepoint ${name}`);
}

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;
const XDP_DROP = 1;
const XDP_PASS = 2;

describe('loadCollection', () => {
  it('basics: programs with bpf-to-bpf calls and a legacy map run', () => {
    using c = loadCollection(fixture('basics.bpf.o'));
    expect(Object.keys(c.programs)).toEqual(['xdp_pass', 'xdp_by_len', 'count_packets']);
    expect(c.program('xdp_by_len').testRun({ data: new Uint8Array(64) }).retval).toBe(XDP_PASS);
    expect(c.program('xdp_by_len').testRun({ data: new Uint8Array(20) }).retval).toBe(XDP_DROP);
    // count_packets returns twice_plus_two(len) = (len + 1) * 2 + 1, len = 64 - 14
    expect(c.program('count_packets').testRun({ data: new Uint8Array(64), repeat: 3 }).retval).toBe(103);
    expect(c.map('legacy_counts').getBytes(new Uint8Array(4))).toEqual(
      new Uint8Array([3, 0, 0, 0, 0, 0, 0, 0]),
    );
    expect(c.program('count_packets').info.btfId).toBeGreaterThan(0); // loaded with func/line info
    expect(() => c.map('nope')).toThrow(/no map 'nope' \(maps: legacy_counts\)/);
  });

  it('maps: BTF-typed values, per-CPU values, map-in-map and prog-array initial slots', () => {
    using c = loadCollection(fixture('maps.bpf.o'));
    expect(c.program('tail_entry').testRun({ data: new Uint8Array(64) }).retval).toBe(42);
    c.program('use_maps').testRun({ data: new Uint8Array(64) });
    const stats = [
      ...c
        .map<number, { packets: bigint; bytes: bigint; last_len: number; seen: number }>('stats_map')
        .entries(),
    ];
    expect(stats).toHaveLength(1);
    expect(stats[0]![1]).toEqual({ packets: 1n, bytes: 50n, last_len: 50, seen: 1 });
    const percpu = c.map<Uint8Array, Uint8Array[]>('percpu').getBytes(new Uint8Array([1, 0, 0, 0]))!;
    expect(percpu.length).toBe(8 * possibleCpus());
    expect(c.map('outer').get(0 as never)).toBe(c.map('inner_a').info.id);
    expect(c.map<number, number>('inner_a').get(0)).toBe(50);
    expect(c.map('jumps').get(1 as never)).toBe(c.program('tail_target').info.id);
    expect(c.map<bigint, bigint>('pinned_lru').get(50n)).toBe(1n);
    expect(c.map('events').info.typeName).toBe('ringbuf');
    expect(c.map('stats_map').info.btfId).toBeGreaterThan(0);
  });

  it('globals: .rodata constants set from TypeScript, .data/.bss, .kconfig and weak ksym externs', () => {
    using c = loadCollection(fixture('globals.bpf.o'), { constants: { cfg_multiplier: 5, cfg_offset: -9n } });
    expect(c.program('globals').testRun({ data: new Uint8Array(64), repeat: 2 }).retval).toBe(
      'h'.charCodeAt(0),
    );
    const bss = c.map<number, Record<string, bigint>>('.bss').get(0)!;
    const config = kernelConfig();
    expect(bss).toMatchObject({
      bss_counter: 10n,
      out_version: BigInt(linuxKernelVersion()),
      out_jit: config.get('CONFIG_BPF_JIT') === 'y' ? 1n : 0n,
      out_hz: BigInt(config.get('CONFIG_HZ')!),
      out_missing: 0n,
      out_offset: -9n,
      out_ksym_missing: 1n,
    });
    expect(c.map<number, Record<string, bigint>>('.data').get(0)).toEqual({ data_counter: 9n });
    expect(c.map<number, Record<string, number>>('.data.custom').get(0)).toEqual({ custom_val: 13 });
    expect(c.map<number, Record<string, unknown>>('.rodata').get(0)).toMatchObject({
      cfg_multiplier: 5,
      cfg_offset: -9n,
      greeting: 'hi',
    });
    expect(() => c.map('.rodata').setBytes(new Uint8Array(4), new Uint8Array(19))).toThrow(
      expect.objectContaining({ code: 'EPERM' }),
    );
  });

  it('kfunc externs resolve through the kernel BTF; a kernel without the kfunc says so', () => {
    using c = loadCollection(fixture('kfunc.bpf.o'));
    expect(c.program('kern_len').testRun({ data: new Uint8Array(64) }).retval).toBe(1);
    // the kernel's own sk_buff, reached through the kfunc: 64 bytes less the Ethernet header
    expect(c.map<number, Record<string, bigint>>('.bss').get(0)).toEqual({ out_kern_len: 50n });
    const notAKernel = ObjectFile.read(fixture('basics.bpf.o')).btf!;
    expect(() => loadCollection(fixture('kfunc.bpf.o'), { kernelBtf: notAKernel })).toThrow(
      expect.objectContaining({
        name: 'KfuncNotSupportedError',
        program: 'kern_len',
        section: 'socket',
        symbol: 'bpf_cast_to_kern_ctx',
        message: expect.stringMatching(
          /^kfunc bpf_cast_to_kern_ctx \(called by program 'kern_len' in section 'socket'\) is not supported by this kernel/,
        ),
      }),
    );
  });

  it('rejects bad constants before creating anything', () => {
    expect(() => loadCollection(fixture('globals.bpf.o'), { constants: { nope: 1 } })).toThrow(
      /no global variable 'nope'/,
    );
    expect(() =>
      loadCollection(fixture('globals.bpf.o'), { constants: { cfg_multiplier: 2 ** 32 } }),
    ).toThrow(/'cfg_multiplier' \(32-bit unsigned\) cannot hold 4294967296/);
    expect(() => loadCollection(fixture('globals.bpf.o'), { constants: { greeting: 'too long' } })).toThrow(
      /char\[3\]/,
    );
  });

  it('map(name, codecs): one view per codec pair, called in a loop without holding more fds', () => {
    using c = loadCollection(fixture('maps.bpf.o'));
    const first = c.map('percpu', { key: u32 });
    const fds = readdirSync('/proc/self/fd').length;
    for (let i = 0; i < 100; i++) expect(c.map('percpu', { key: u32 })).toBe(first);
    expect(readdirSync('/proc/self/fd').length).toBe(fds);
    // another pair is another view (its own fd), itself returned again
    const other = c.map('percpu', { key: u32, value: u64 });
    expect(other === (first as unknown)).toBe(false);
    expect(c.map('percpu', { key: u32, value: u64 })).toBe(other);
    expect(readdirSync('/proc/self/fd').length).toBe(fds + 1);
    // a view the caller closed is not handed out again
    other.close();
    const again = c.map('percpu', { key: u32, value: u64 });
    expect(again === other).toBe(false); // (not.toBe would iterate the closed map to describe it)
    expect(again.get(0)).toHaveLength(possibleCpus()); // a working view: per-CPU values
    expect(readdirSync('/proc/self/fd').length).toBe(fds + 1);
  });

  it('map(name, codecs): a typed view checked against the map BTF, refused where it does not fit', () => {
    using c = loadCollection(fixture('core.bpf.o'), { constants: { target_tgid: process.pid } });
    const fields = {
      comm_size: u32,
      task_exists: u32,
      missing_field_exists: u32,
      missing_type_exists: u32,
      task_size: u64,
      ringbuf_enum_exists: u32,
      ringbuf_enum_value: u32,
      missing_enum_exists: u32,
      task_type_id: u32,
      prio_from_flavor: u64,
      exit_signal_signed: u64,
      reset_on_fork: u64,
      mm_exists: u32,
    };
    const calls = c.map('calls', { key: u32, value: u64 });
    {
      using _link = attachRawTracepoint(c.program('on_sys_enter_raw'), 'sys_enter');
      for (let i = 0; i < 5; i++) closeSync(openSync('/proc/self/stat', 'r'));
    }
    const n: bigint | undefined = calls.get(process.pid);
    expect(n).toBeGreaterThanOrEqual(10n); // the typed view reads what the program wrote
    const facts = c.map('facts', { key: u32, value: struct(fields) }).get(0)!;
    expect(facts.comm_size).toBe(16);
    expect(() => c.map('calls', { value: u32 })).toThrow(
      /map 'calls' value: codec u32 does not fit the BTF type int .*: it is 4 bytes, the type 8/,
    );
    expect(() => c.map('facts', { value: u64 })).toThrow(CodecMismatchError);
    const { comm_size: _, ...rest } = fields;
    expect(() => c.map('facts', { value: struct({ comm_sz: u32, ...rest }) })).toThrow(
      /field 'comm_sz' is not a member \(members: comm_size, task_exists,/,
    );
    const { task_exists, ...others } = fields;
    expect(() => c.map('facts', { value: struct({ task_exists, ...others }) })).toThrow(
      /field 'task_exists' is at byte 0, the member at byte 4/,
    );
  });

  it('core: CO-RE relocations against this kernel, read back from maps', () => {
    const kernel = Btf.kernel();
    using c = loadCollection(fixture('core.bpf.o'), { constants: { target_tgid: process.pid } });
    {
      using _link = attachRawTracepoint(c.program('on_sys_enter_raw'), 'sys_enter');
      for (let i = 0; i < 20; i++) closeSync(openSync('/proc/self/stat', 'r'));
    }
    expect(c.map<number, bigint>('calls').get(process.pid)).toBeGreaterThanOrEqual(40n);
    expect([...c.map<number, bigint>('calls').keys()]).toEqual([process.pid]); // .rodata filter held
    const facts = c.map<number, Record<string, number | bigint>>('facts').get(0)!;
    const task = kernel.find('task_struct', 'struct');
    const status = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
    expect(facts).toEqual({
      comm_size: 16,
      task_exists: 1,
      missing_field_exists: 0,
      missing_type_exists: 0,
      task_size: BigInt(kernel.sizeof(task.id)),
      ringbuf_enum_exists: 1,
      ringbuf_enum_value: Number(kernel.enumValues('bpf_map_type').get('BPF_MAP_TYPE_RINGBUF')),
      missing_enum_exists: 0,
      task_type_id: task.id,
      prio_from_flavor: BigInt(Number(status[15]) + 100), // /proc prio is kernel prio - 100
      exit_signal_signed: 1n,
      reset_on_fork: 0n,
      mm_exists: 1,
    });
  });

  it('a CO-RE relocation this kernel cannot satisfy is poisoned and explained', () => {
    let err: unknown;
    try {
      loadCollection(fixture('core_fail.bpf.o'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VerifierError);
    expect((err as VerifierError).log).toContain('195896080');
    expect((err as Error).message).toMatch(
      /CO-RE relocations that could not be satisfied on this kernel:\n {2}instruction \d+: field_byte_offset of struct 'task_struct___fake' \(access 0:0\): 'bpfkit_field_that_does_not_exist' of struct 'task_struct' not found/,
    );
  });

  it('an object without a license section has no license, as with libbpf: GPL-only helpers are refused', () => {
    const stripped = withoutLicense(readFileSync(fixture('core.bpf.o')));
    expect(ObjectFile.read(stripped).license).toBe('');
    const before = new Set(readFdTargets());
    // core.bpf.o's CO-RE reads call bpf_probe_read_kernel, which the kernel keeps for GPL programs
    expect(() => loadCollection(stripped, { constants: { target_tgid: process.pid } })).toThrow(
      expect.objectContaining({ name: 'VerifierError', log: expect.stringMatching(/GPL/) }),
    );
    expect(readFdTargets().filter((t) => !before.has(t))).toEqual([]);
    using licensed = loadCollection(fixture('core.bpf.o'), { constants: { target_tgid: process.pid } });
    expect(licensed.program('on_getppid').info.gplCompatible).toBe(1);
  });

  it('closes everything it created when a load fails', () => {
    const before = new Set(readFdTargets());
    expect(() => loadCollection(fixture('core_fail.bpf.o'))).toThrow(VerifierError);
    expect(readFdTargets().filter((t) => !before.has(t))).toEqual([]);
    const obj = ObjectFile.read(fixture('basics.bpf.o'));
    using twice = loadCollection(obj);
    expect(Object.keys(twice.maps)).toEqual(['legacy_counts']);
  });
});

/**
 * `object` as if it had no license section: the section (and the BTF DATASEC that describes it,
 * so the object stays consistent) renamed to 'licensX'.
 */
function withoutLicense(object: Uint8Array): Uint8Array {
  const out = Buffer.from(object);
  let n = 0;
  for (let at = out.indexOf('\0license\0'); at >= 0; at = out.indexOf('\0license\0', at + 1), n++)
    out[at + 7] = 'X'.charCodeAt(0);
  if (n === 0) throw new Error('fixture has no license section');
  return new Uint8Array(out);
}

function readFdTargets(): string[] {
  const { readdirSync, readlinkSync } = require('node:fs') as typeof import('node:fs');
  return readdirSync('/proc/self/fd').map((f) => {
    try {
      return `${f}:${readlinkSync(`/proc/self/fd/${f}`)}`;
    } catch {
      return '';
    }
  });
}
