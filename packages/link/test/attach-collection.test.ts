// attachCollection on an object of our own with many sections (fixtures/attach_sections.bpf.c):
// each program attached where its section says counts what this process does; the ones needing
// a cgroup or an interface are left alone, with the reason. The host cannot load fentry/lsm
// programs or attach kprobes: there the test of every section is unsupported (the fentry load is
// refused), and the one of the host-capable sections runs.
import { unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AttachedCollection, attachCollection } from '@bpfkit/link';
import { type Collection, loadCollection } from '@bpfkit/loader';
import type { BpfMap } from '@bpfkit/maps';
import { describe, expect, it } from 'vitest';
import { requireFeature } from '../../../tools/testing/features.js';

const fixture = new URL('./fixtures/attach_sections.bpf.o', import.meta.url).pathname;
const HOOKS = ['TP', 'RAW_TP', 'TP_BTF', 'KPROBE', 'KRETPROBE', 'KSYSCALL', 'FENTRY', 'FEXIT', 'LSM'];

/** What `hits` holds for this process: hook name → count. */
function hitsOf(coll: Collection): Record<string, number> {
  const hits = coll.map('hits') as BpfMap<unknown, unknown>;
  const out: Record<string, number> = {};
  for (const [k, v] of hits.entries()) {
    const key = k as { tgid: number; hook: number };
    if (key.tgid === process.pid) out[HOOKS[key.hook]!] = Number(v as bigint);
  }
  return out;
}

function exercise(): void {
  for (let i = 0; i < 4; i++) expect(process.ppid).toBeGreaterThan(0);
  for (let i = 0; i < 3; i++) {
    const f = join(tmpdir(), `bpfkit-sections-${process.pid}-${i}`);
    writeFileSync(f, 'x');
    unlinkSync(f);
  }
}

const leftAlone = {
  pass_all: "section 'xdp' needs a network interface (attachXdp, attachTc, attachNetkit)",
  allow_egress: "section 'cgroup_skb/egress' needs a cgroup (attachCgroup)",
};

describe('attachCollection', () => {
  it('attaches tracepoint, raw_tp, tp_btf and iter sections; leaves xdp and cgroup ones alone', async () => {
    const programs = [
      'on_getppid_tp',
      'on_sys_enter',
      'on_sys_enter_btf',
      'list_tasks',
      'pass_all',
      'allow_egress',
    ];
    using coll = loadCollection(fixture, { programs });
    let group: AttachedCollection;
    {
      using g = attachCollection(coll);
      group = g;
      expect(Object.keys(g.attached).sort()).toEqual([
        'list_tasks',
        'on_getppid_tp',
        'on_sys_enter',
        'on_sys_enter_btf',
      ]);
      expect(g.skipped).toEqual(leftAlone);
      exercise();
      const tasks = await (
        g.attached.list_tasks as unknown as { readAllText(): Promise<string> }
      ).readAllText();
      expect(tasks.split('\n').map(Number)).toContain(process.pid);
    }
    expect(hitsOf(coll)).toEqual({ TP: 4, RAW_TP: 4, TP_BTF: 4 });
    exercise(); // detached as a group
    expect(hitsOf(coll)).toEqual({ TP: 4, RAW_TP: 4, TP_BTF: 4 });
    expect(() => group.detach()).not.toThrow(); // again: idempotent
  });

  it('every section of the object: kprobe, kretprobe, ksyscall, fentry, fexit and lsm too', (ctx) => {
    requireFeature(ctx, 'kprobes, fentry and BPF LSM', {
      config: ['CONFIG_KPROBES', 'CONFIG_BPF_LSM'],
      probe: () => loadCollection(fixture, { programs: ['enter_unlink', 'check_unlink'] }).close(),
    });
    using coll = loadCollection(fixture);
    {
      using g = attachCollection(coll);
      expect(Object.keys(g.attached)).toHaveLength(Object.keys(coll.programs).length - 2);
      expect(g.skipped).toEqual(leftAlone);
      exercise();
    }
    expect(hitsOf(coll)).toEqual({
      TP: 4,
      RAW_TP: 4,
      TP_BTF: 4,
      KSYSCALL: 4,
      KPROBE: 3,
      KRETPROBE: 3,
      FENTRY: 3,
      FEXIT: 3,
      LSM: 3,
    });
  });

  it('a failure detaches what was attached and names the program', () => {
    using coll = loadCollection(fixture, { programs: ['on_getppid_tp', 'on_sys_enter'] });
    expect(() => attachCollection(coll, { programs: ['on_getppid_tp', 'no_such'] })).toThrow(
      /no program 'no_such'/,
    );
    exercise();
    expect(hitsOf(coll)).toEqual({});
  });
});
