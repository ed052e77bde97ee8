// BPF iterators written in TypeScript: iter/task prints every task's tgid (this process is among
// them), iter/bpf_map_elem writes a map's entries, iter/cgroup walks a cgroup tree in the order
// asked. Reads go through BPF_ITER_CREATE files, as chunks or whole.
import { mkdirSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Builder, R0, R1, R2, R3, R4, R5, R6, R7, R8, R10, reg } from '@bpfkit/asm';
import { Btf } from '@bpfkit/btf';
import { attachIter, BpfIterator } from '@bpfkit/link';
import { Program } from '@bpfkit/loader';
import { BpfMap, u32, u64 } from '@bpfkit/maps';
import { ClosedError } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';
import { requireFeature } from '../../../tools/testing/features.js';
import { tempCgroup } from '../../../tools/testing/kernel.js';

/** The byte offset of `member` in kernel struct `struct`, from the kernel's BTF. */
function offsetOf(struct: string, member: string): number {
  const t = Btf.kernel().find(struct, 'struct') as { members: { name: string; bitOffset: number }[] };
  const m = t.members.find((x) => x.name === member);
  if (!m) throw new Error(`no ${struct}.${member} in vmlinux BTF`);
  return m.bitOffset / 8;
}

/** A read-only (frozen, BPF_F_RDONLY_PROG) map holding bpf_seq_printf's format string. */
function formatMap(fmt: string) {
  const bytes = new Uint8Array(Buffer.from(`${fmt}\0`));
  const m = BpfMap.create({
    type: 'array',
    key: u32,
    value: bytes.length,
    maxEntries: 1,
    flags: ['rdonly_prog'],
  });
  m.set(0, bytes);
  m.freeze();
  return { map: m, size: bytes.length };
}

/** Append: r1 = ctx->meta->seq (ctx in r6). */
const seqOf = (b: Builder) => b.ldx('dw', R1, R6, 0).ldx('dw', R1, R1, 0);

/** An iterator program printing `%d\n` of the u32 at `offset` of the object at ctx+8 (after following `via`). */
function printer(
  target: string,
  fmtMap: BpfMap<number, Uint8Array>,
  fmtSize: number,
  path: number[],
  size: 'w' | 'dw',
) {
  const b = new Builder().mov64(R6, reg(R1)).ldx('dw', R7, R6, 8).jeq(R7, 0, 'out');
  path.slice(0, -1).forEach((off) => {
    b.ldx('dw', R7, R7, off).jeq(R7, 0, 'out');
  });
  b.ldx(size, R1, R7, path[path.length - 1]!).stx('dw', R10, -8, R1);
  seqOf(b)
    .ldMapValue(R2, 'fmt', 0)
    .mov64(R3, fmtSize)
    .mov64(R4, reg(R10))
    .add64(R4, -8)
    .mov64(R5, 8)
    .call('seq_printf')
    .label('out')
    .mov64(R0, 0)
    .exit();
  return Program.load({
    type: 'tracing',
    attachType: 'trace_iter',
    attachTo: target,
    license: 'GPL',
    instructions: b,
    maps: { fmt: fmtMap },
  });
}

describe('iterators', () => {
  it('iter/task lists this process; chunks as an async iterable, a fresh walk per open', async () => {
    const fmt = formatMap('%d\n');
    using _fmt = fmt.map;
    using prog = printer('task', fmt.map, fmt.size, [offsetOf('task_struct', 'tgid')], 'w');
    using link = attachIter(prog);
    const tgids = (await link.readAllText()).trim().split('\n').map(Number);
    expect(tgids).toContain(process.pid);
    let chunks = 0;
    let text = '';
    {
      using it = link.open();
      for await (const c of it) {
        chunks++;
        text += Buffer.from(c).toString();
      }
      expect(it.readChunk()).toBeUndefined(); // the walk is over
    }
    expect(chunks).toBeGreaterThan(0);
    expect(text.split('\n').map(Number)).toContain(process.pid);
    const it = link.open();
    it.close();
    expect(() => it.readChunk()).toThrow(ClosedError);
    expect(it).toBeInstanceOf(BpfIterator);
  });

  it('iter/bpf_map_elem with a map walks its entries', (ctx) => {
    using m = BpfMap.create({ type: 'hash', key: u32, value: u64, maxEntries: 8 });
    for (const [k, v] of [
      [1, 10n],
      [2, 20n],
      [3, 300n],
    ] as const)
      m.set(k, v);
    // ctx: meta, map, key, value; write { u32 key, u32 0, u64 value } per element
    const b = new Builder()
      .mov64(R6, reg(R1))
      .ldx('dw', R7, R6, 16)
      .jeq(R7, 0, 'out')
      .ldx('dw', R8, R6, 24)
      .jeq(R8, 0, 'out')
      .st('dw', R10, -16, 0)
      .ldx('w', R1, R7, 0)
      .stx('w', R10, -16, R1)
      .ldx('dw', R1, R8, 0)
      .stx('dw', R10, -8, R1);
    seqOf(b)
      .mov64(R2, reg(R10))
      .add64(R2, -16)
      .mov64(R3, 16)
      .call('seq_write')
      .label('out')
      .mov64(R0, 0)
      .exit();
    const load = () =>
      Program.load({
        type: 'tracing',
        attachType: 'trace_iter',
        attachTo: 'bpf_map_elem',
        license: 'GPL',
        instructions: b,
      });
    // some environments refuse this iterator's load even to root (EPERM): the guests run it then
    requireFeature(ctx, 'iter/bpf_map_elem', { probe: () => load().close() });
    using prog = load();
    using link = attachIter(prog, { map: m });
    using it = link.open();
    const out = it.readAll();
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    const seen = new Map<number, bigint>();
    for (let o = 0; o < out.length; o += 16)
      seen.set(view.getUint32(o, true), view.getBigUint64(o + 8, true));
    expect(out.length).toBe(48);
    expect(seen).toEqual(
      new Map([
        [1, 10n],
        [2, 20n],
        [3, 300n],
      ]),
    );
    expect(() => attachIter(prog, { map: m, task: { pid: 1 } })).toThrow(/at most one/);
  });

  it('iter/cgroup walks a cgroup tree in the order asked', async () => {
    using root = tempCgroup();
    const a = join(root.path, 'a');
    const ab = join(a, 'b');
    mkdirSync(a);
    mkdirSync(ab);
    try {
      const fmt = formatMap('%llu\n');
      using _fmt = fmt.map;
      // cgroup->kn->id: the cgroup id, which is the inode number of its directory
      using prog = printer(
        'cgroup',
        fmt.map,
        fmt.size,
        [offsetOf('cgroup', 'kn'), offsetOf('kernfs_node', 'id')],
        'dw',
      );
      const ino = (p: string) => statSync(p).ino;
      const walk = async (
        order: 'descendants_pre' | 'descendants_post' | 'self_only' | 'ancestors_up',
        at: string,
      ) => {
        using link = attachIter(prog, { cgroup: { target: at, order } });
        return (await link.readAllText()).trim().split('\n').map(Number);
      };
      expect(await walk('descendants_pre', root.path)).toEqual([ino(root.path), ino(a), ino(ab)]);
      expect(await walk('descendants_post', root.path)).toEqual([ino(ab), ino(a), ino(root.path)]);
      expect(await walk('self_only', a)).toEqual([ino(a)]);
      expect((await walk('ancestors_up', ab)).slice(0, 3)).toEqual([ino(ab), ino(a), ino(root.path)]);
    } finally {
      rmdirSync(ab);
      rmdirSync(a);
    }
  });
});
