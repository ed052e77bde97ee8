import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Builder, R0 } from '@bpfkit/asm';
import { loadCollection, Program } from '@bpfkit/loader';
import { pin } from '@bpfkit/pin';
import { decodeExecEvent, type ExecEvent, generateObjectModule, runExecsnoop, runTop } from 'bpfkit';
import { describe, expect, it } from 'vitest';
import { tempBpffs } from '../../../tools/testing/kernel.js';

const bin = new URL('../dist/bin.js', import.meta.url).pathname;
const mapsObject = new URL('../../loader/test/fixtures/maps.bpf.o', import.meta.url).pathname;
const bpfkit = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
const json = (...args: string[]) => {
  const r = bpfkit(...args, '--json');
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout);
};

describe('bpfkit CLI', () => {
  it('prog list/show, map list/show, link list see what is loaded', () => {
    using c = loadCollection(mapsObject);
    const prog = c.program('use_maps').info;
    const progs = json('prog', 'list');
    expect(progs).toContainEqual(
      expect.objectContaining({ id: prog.id, type: 'socket_filter', name: 'use_maps', tag: prog.tag }),
    );
    expect(json('prog', 'show', String(prog.id))).toMatchObject({
      id: prog.id,
      name: 'use_maps',
      typeName: 'socket_filter',
    });
    const disasm = bpfkit('prog', 'show', String(prog.id), '--disasm');
    expect(disasm.stdout).toContain(`(18) r1 = map[id:${c.map('stats_map').info.id}]`);
    expect(disasm.stdout).toMatch(/\(85\) call /);
    const stats = c.map('stats_map').info;
    expect(json('map', 'list')).toContainEqual(
      expect.objectContaining({ id: stats.id, type: 'hash', name: 'stats_map', key: 4, value: 24 }),
    );
    expect(json('map', 'show', String(stats.id))).toMatchObject({ id: stats.id, maxEntries: 128 });
    expect(Array.isArray(json('link', 'list'))).toBe(true);
  });

  it('map dump formats a BTF map with named fields, by id and by pinned path; raw hex otherwise', () => {
    using fs = tempBpffs();
    using c = loadCollection(mapsObject);
    c.program('use_maps').testRun({ data: new Uint8Array(64) });
    const id = String(c.map('stats_map').info.id);
    expect(json('map', 'dump', id)).toEqual([
      { key: 1024, value: { packets: 1, bytes: 50, last_len: 50, seen: 1 } },
    ]);
    pin(c.map('stats_map'), join(fs.path, 'stats'));
    const text = bpfkit('map', 'dump', join(fs.path, 'stats'));
    expect(text.stdout).toContain('1024: {"packets":1,"bytes":50,"last_len":50,"seen":1}');
    expect(text.stdout).toContain('1 entry (BTF)');
    const legacy = loadCollection(
      new URL('../../loader/test/fixtures/basics.bpf.o', import.meta.url).pathname,
    );
    try {
      const dump = json('map', 'dump', String(legacy.map('legacy_counts').info.id));
      expect(dump[0]).toEqual({ key: '00 00 00 00', value: '00 00 00 00 00 00 00 00' });
    } finally {
      legacy.close();
    }
  });

  it('pin ls, feature, btf dump', () => {
    using fs = tempBpffs();
    using prog = Program.load({
      type: 'socket_filter',
      license: 'GPL',
      name: 'cli_pin',
      instructions: new Builder().mov64(R0, 0).exit(),
    });
    pin(prog, join(fs.path, 'p'));
    expect(json('pin', 'ls', fs.path)).toEqual([
      { path: join(fs.path, 'p'), kind: 'prog', id: prog.info.id, name: 'cli_pin', type: 'socket_filter' },
    ]);
    const features = json('feature');
    expect(features).toContainEqual({ kind: 'map_type', name: 'ringbuf', supported: true });
    expect(features).toContainEqual({ kind: 'prog_type', name: 'xdp', supported: true });
    const helpers = json('feature', '--helpers', 'xdp');
    expect(helpers.find((r: { kind: string }) => r.kind === 'helpers').list).toContain('bpf_xdp_adjust_head');
    const btf = bpfkit('btf', 'dump', mapsObject, '--type', 'stats');
    expect(btf.stdout).toMatch(
      /^\[\d+\] STRUCT 'stats' size=24 vlen=4\n\t'packets' type_id=\d+ bits_offset=0/,
    );
    expect(bpfkit('btf', 'dump', 'vmlinux', '--type', 'task_struct').stdout).toMatch(/STRUCT 'task_struct'/);
    // by id: the BTF object a loaded map carries (kernels before 5.11 list no vmlinux object)
    using c = loadCollection(mapsObject);
    const btfId = c.map('stats_map').info.btfId;
    expect(btfId).toBeGreaterThan(0);
    expect(bpfkit('btf', 'dump', String(btfId), '--type', 'stats').stdout).toBe(btf.stdout);
  });

  it('exit codes a script can rely on: 2 for usage, 1 for failures', () => {
    expect(bpfkit('nope').status).toBe(2);
    expect(bpfkit('map', 'show', 'not-a-map').status).toBe(2);
    const missing = bpfkit('prog', 'show', '2147483647');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^bpfkit: BPF_PROG_GET_FD_BY_ID .* ENOENT/);
  });

  it('feature without privileges says so and exits 1, not a table of refusals', () => {
    const r = spawnSync(process.execPath, [bin, 'feature'], { encoding: 'utf8', uid: 65534, gid: 65534 });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^bpfkit: feature needs privileges: .*CAP_BPF \(or CAP_SYS_ADMIN\)/);
    // still root, but with every capability dropped (bounding and inheritable sets cleared)
    const noCaps = spawnSync(
      'setpriv',
      ['--bounding-set=-all', '--inh-caps=-all', process.execPath, bin, 'feature'],
      {
        encoding: 'utf8',
      },
    );
    expect(noCaps.status).toBe(1);
    expect(noCaps.stdout).toBe('');
    expect(noCaps.stderr).toMatch(/^bpfkit: feature needs privileges: /);
  });

  it('gen writes typed accessors that load and type the object', async () => {
    const out = new URL(`./gen-${process.pid}.ts`, import.meta.url).pathname;
    writeFileSync(out, generateObjectModule(mapsObject, { out, types: ['stats'] }));
    try {
      const mod = await import(out);
      expect(mod.statsCodec.size).toBe(24);
      const coll = mod.loadMaps();
      try {
        coll.programs.use_maps.testRun({ data: new Uint8Array(64) });
        expect([...coll.maps.stats_map.entries()]).toEqual([
          [1024, { packets: 1n, bytes: 50n, last_len: 50, seen: 1 }],
        ]);
      } finally {
        coll.close();
      }
    } finally {
      rmSync(out);
    }
    expect(bpfkit('gen', mapsObject).stdout).toContain('export function loadMaps(');
  });
});

/** Resolves with everything `stream` printed once it matches `re`; rejects if `child` ends first. */
function printed(child: ChildProcess, stream: Readable, re: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d;
      if (re.test(out)) {
        stream.off('data', onData);
        child.off('close', onClose);
        resolve(out);
      }
    };
    const onClose = (code: number | null, signal: string | null) =>
      reject(new Error(`exited (${code ?? signal}) before printing ${re}: ${out}`));
    stream.on('data', onData);
    child.once('close', onClose);
  });
}

describe('demos', () => {
  for (const demo of ['top', 'execsnoop'])
    it(`${demo} stops cleanly on Ctrl-C, detaching what it attached`, async () => {
      const child = spawn(
        process.execPath,
        [bin, demo, '--interval', '200'].slice(0, demo === 'top' ? 4 : 2),
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      // running: top's first frame or execsnoop's header, printed once attached (however long
      // loading takes on a busy machine; the test's own time limit catches a hang)
      await printed(child, child.stdout, /PID/);
      child.kill('SIGINT');
      const [code, signal] = (await once(child, 'close')) as [number | null, string | null];
      expect(err).toBe('');
      expect(signal).toBeNull(); // it handled the signal instead of dying of it
      expect(code).toBe(0);
    });

  it('top counts this process’s syscalls and rates them (--pid keeps just it)', async () => {
    const frames: string[] = [];
    const ac = new AbortController();
    // Frame 1 is the first read; this process then makes a known number of getppid() calls, and
    // frame 2 must have counted them. Frames come when the interval passes, however late.
    const calls = 2000;
    const rows = await runTop({
      interval: 100,
      pids: [process.pid],
      signal: ac.signal,
      clear: false,
      write: (f) => {
        frames.push(f);
        if (frames.length === 1) for (let i = 0; i < calls; i++) process.ppid;
        else ac.abort();
      },
    });
    expect(frames).toHaveLength(2);
    expect(frames[1]).toMatch(/bpfkit top — syscalls per process .*\(1 processes/);
    expect(rows).toHaveLength(1);
    const [me] = rows;
    expect(me!.pid).toBe(process.pid);
    expect(me!.total).toBeGreaterThanOrEqual(BigInt(calls));
    expect(me!.perSecond).toBeGreaterThan(0);
    expect(bpfkit('top', '--pid', 'x').status).toBe(2);
  });

  it('execsnoop streams exec events with pid, ppid, comm and argv', async () => {
    const seen: ExecEvent[] = [];
    let arrived = () => {};
    const ac = new AbortController();
    // attached when the call returns (everything up to its first await is synchronous)
    const run = runExecsnoop({
      signal: ac.signal,
      onEvent: (e) => {
        seen.push(e);
        arrived();
      },
    });
    const child = spawn('/bin/echo', ['hello', 'bpfkit'], { stdio: 'ignore' });
    await once(child, 'exit');
    // wait for its event however long the machine takes; the test's time limit catches a hang
    while (!seen.some((e) => e.pid === child.pid)) await new Promise<void>((r) => (arrived = r));
    ac.abort();
    expect(await run).toBe(seen.length);
    expect(seen).toContainEqual({
      pid: child.pid,
      ppid: process.pid,
      uid: 0,
      comm: 'echo',
      argv: ['/bin/echo', 'hello', 'bpfkit'],
    });
    expect(decodeExecEvent(new Uint8Array(288)).argv).toEqual([]);
  });
});
