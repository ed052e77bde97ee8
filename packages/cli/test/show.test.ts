// vmtest: host only: it compares with the host's bpftool output; the objects it lists are loaded and attached on every leg by the loader and link tests
// `bpfkit prog show`, `map show` and `link list` print what bpftool prints for the same loaded
// objects; `--json` keeps the machine-readable fields.
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { Builder, R0 } from '@bpfkit/asm';
import { attachCgroup, attachRawTracepoint, attachSkLookup, attachTracepoint, Link } from '@bpfkit/link';
import { loadCollection, Program } from '@bpfkit/loader';
import { describe, expect, it } from 'vitest';
import { tempCgroup } from '../../../tools/testing/kernel.js';
import { vethPair } from '../../../tools/testing/netns.js';

const bin = new URL('../dist/bin.js', import.meta.url).pathname;
const mapsObject = new URL('../../loader/test/fixtures/maps.bpf.o', import.meta.url).pathname;
const run = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  expect(r.stderr, `${cmd} ${args.join(' ')}`).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
};
const bpfkit = (...args: string[]) => run(process.execPath, [bin, ...args]);
const bpftool = (...args: string[]) => run('bpftool', args);
const LOADED_AT = /loaded_at (\S+)/;

/** Blocks of `link list` text by link id: the header line and its indented lines. */
function blocks(text: string): Map<number, string> {
  const out = new Map<number, string>();
  let id = -1;
  for (const line of text.split('\n')) {
    const m = /^(\d+): /.exec(line);
    if (m) id = Number(m[1]);
    if (id >= 0 && line) out.set(id, out.has(id) ? `${out.get(id)}\n${line}` : line);
  }
  return out;
}

describe('readable prog show, map show and link list', () => {
  it('prog show prints the fields bpftool prints, loaded_at as a time', () => {
    using c = loadCollection(mapsObject);
    for (const p of Object.values(c.programs)) {
      const id = String(p.info.id);
      const ours = bpfkit('prog', 'show', id).trimEnd();
      const theirs = bpftool('prog', 'show', 'id', id).trimEnd();
      // loaded_at is computed from boot time on each side (bpftool from CLOCK_BOOTTIME, we from
      // /proc/uptime, 10 ms steps): equal to the second, or one second apart at a boundary
      const at = (s: string) => Date.parse(LOADED_AT.exec(s)![1]!.replace(/(\d\d)(\d\d)$/, '$1:$2'));
      expect(Math.abs(at(ours) - at(theirs))).toBeLessThanOrEqual(1000);
      expect(ours.replace(LOADED_AT, '')).toBe(theirs.replace(LOADED_AT, ''));
      expect(ours).toMatch(
        new RegExp(`^${id}: socket_filter  name ${p.info.name}  tag ${p.info.tag}  gpl\n`),
      );
    }
    const use = c.program('use_maps').info;
    expect(bpfkit('prog', 'show', String(use.id))).toContain(`map_ids ${use.mapIds.join(',')}`);
    const json = JSON.parse(bpfkit('prog', 'show', String(use.id), '--json'));
    expect(json).toMatchObject({
      id: use.id,
      name: 'use_maps',
      typeName: 'socket_filter',
      mapIds: use.mapIds,
    });
    expect(json.memlock).toBeGreaterThan(0);
    expect(Math.abs(Date.parse(json.loadedAt) - Date.now())).toBeLessThan(10 * 60_000);
    const list = JSON.parse(bpfkit('prog', 'list', '--json'));
    expect(list).toContainEqual(expect.objectContaining({ id: use.id, loaded_at: Number(use.loadTime) }));
  });

  it('map show prints type, name, flags, key/value sizes, max_entries, memlock, owner, btf id', () => {
    using c = loadCollection(mapsObject);
    for (const m of Object.values(c.maps)) {
      const id = String(m.info.id);
      expect(bpfkit('map', 'show', id).trimEnd(), m.info.name).toBe(
        bpftool('map', 'show', 'id', id).trimEnd(),
      );
    }
    const stats = c.map('stats_map').info;
    expect(bpfkit('map', 'show', String(stats.id))).toMatch(
      new RegExp(
        `^${stats.id}: hash  name stats_map  flags 0x1\n\tkey 4B  value 24B  max_entries 128  memlock \\d+B\n\tbtf_id ${stats.btfId}\n$`,
      ),
    );
    expect(bpfkit('map', 'show', String(c.map('jumps').info.id))).toContain(
      '\towner_prog_type socket_filter  owner jited',
    );
    const json = JSON.parse(bpfkit('map', 'show', String(stats.id), '--json'));
    expect(json).toMatchObject({
      id: stats.id,
      typeName: 'hash',
      keySize: 4,
      valueSize: 24,
      maxEntries: 128,
      frozen: false,
    });
    expect(json.memlock).toBeGreaterThan(0);
  });

  it('link list prints each link with its target: tracepoint, raw tracepoint, cgroup, netns', () => {
    const ret = (n: number) => new Builder().mov64(R0, n).exit();
    using raw = Program.load({
      type: 'raw_tracepoint',
      license: 'GPL',
      name: 'ls_raw',
      instructions: ret(0),
    });
    using tp = Program.load({ type: 'tracepoint', license: 'GPL', name: 'ls_tp', instructions: ret(0) });
    using cgProg = Program.load({
      type: 'cgroup_skb',
      attachType: 'cgroup_inet_egress',
      license: 'GPL',
      name: 'ls_cg',
      instructions: ret(1),
    });
    using sk = Program.load({
      type: 'sk_lookup',
      attachType: 'sk_lookup',
      license: 'GPL',
      name: 'ls_sk',
      instructions: ret(1),
    });
    using cg = tempCgroup();
    using net = vethPair();
    using rawLink = attachRawTracepoint(raw, 'sys_enter');
    using tpLink = attachTracepoint(tp, 'syscalls', 'sys_enter_getppid');
    using cgLink = attachCgroup(cgProg, cg.path, 'cgroup_inet_egress', { mode: 'link' });
    using skLink = attachSkLookup(sk, net.a.path);
    const links = [rawLink, tpLink.link, cgLink, skLink];
    expect(links.every((l) => l instanceof Link)).toBe(true);
    const ids = links.map((l) => (l as Link).info.id);
    const ours = blocks(bpfkit('link', 'list'));
    const theirs = blocks(bpftool('link', 'list'));
    const [rawId, tpId, cgId, skId] = ids as [number, number, number, number];
    const cgroupId = statSync(cg.path, { bigint: true }).ino;
    const netnsIno = statSync(net.a.path).ino;
    expect(ours.get(rawId)).toBe(`${rawId}: raw_tracepoint  prog ${raw.info.id}  \n\ttp 'sys_enter'  `);
    expect(ours.get(cgId)).toBe(
      `${cgId}: cgroup  prog ${cgProg.info.id}  \n\tcgroup_id ${cgroupId}  attach_type cgroup_inet_egress  `,
    );
    expect(ours.get(skId)).toBe(
      `${skId}: netns  prog ${sk.info.id}  \n\tnetns_ino ${netnsIno}  attach_type sk_lookup  `,
    );
    expect(ours.get(tpId)).toBe(
      `${tpId}: perf_event  prog ${tp.info.id}  \n\ttracepoint sys_enter_getppid  `,
    );
    for (const id of [rawId, cgId, skId]) expect(ours.get(id)).toBe(theirs.get(id));
    // bpftool before v7.3 prints a perf_event link's header only; later ones add the tracepoint
    expect([ours.get(tpId), `${tpId}: perf_event  prog ${tp.info.id}  `]).toContain(theirs.get(tpId));
    const json = JSON.parse(bpfkit('link', 'list', '--json'));
    expect(json).toContainEqual({
      id: tpId,
      type: 'perf_event',
      prog: tp.info.id,
      details: {
        perfEventType: 5,
        perfEventTracepointTpName: 'sys_enter_getppid',
        perfEventTracepointNameLen: 18,
        perfEventTracepointCookie: 0,
      },
    });
    expect(json).toContainEqual(
      expect.objectContaining({
        id: cgId,
        details: { cgroupCgroupId: Number(cgroupId), cgroupAttachType: 1 },
      }),
    );
  });
});
