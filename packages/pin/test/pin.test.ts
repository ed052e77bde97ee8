import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Builder, R0 } from '@bpfkit/asm';
import { attachRawTracepoint } from '@bpfkit/link';
import { loadCollection, ObjectFile, Program } from '@bpfkit/loader';
import { BpfMap, possibleCpus, u32, u64 } from '@bpfkit/maps';
import {
  ensureBpffs,
  isBpffs,
  listPins,
  openPinned,
  openPinnedLink,
  openPinnedMap,
  openPinnedProgram,
  PinError,
  pin,
  pinByName,
  unpin,
} from '@bpfkit/pin';
import { afterAll, describe, expect, it } from 'vitest';
import { tempBpffs } from '../../../tools/testing/kernel.js';

afterAll(() => {
  // every bpffs this file mounted is gone again
  expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(`bpfkit-fs-${process.pid}-`);
});

const mapsObject = new URL('../../loader/test/fixtures/maps.bpf.o', import.meta.url).pathname;
const bpftool = (...args: string[]) =>
  JSON.parse(execFileSync('bpftool', ['-j', ...args], { encoding: 'utf8' }));

describe('bpffs', () => {
  it('tells bpffs apart and mounts it where asked', () => {
    using fs = tempBpffs();
    expect(isBpffs(fs.path)).toBe(true);
    expect(isBpffs(join(fs.path, 'not', 'yet'))).toBe(true);
    expect(isBpffs('/tmp')).toBe(false);
    const sub = join(fs.path, 'nested');
    mkdirSync(sub);
    expect(ensureBpffs(fs.path)).toEqual({ path: fs.path, mounted: false });
  });
});

describe('pin, open, list, unpin', () => {
  it('round-trips maps, programs and links as the right objects', () => {
    using fs = tempBpffs();
    using m = BpfMap.create({ type: 'hash', key: u32, value: u64, maxEntries: 8, name: 'pinned_map' });
    using prog = Program.load({
      type: 'raw_tracepoint',
      license: 'GPL',
      name: 'pinned_prog',
      instructions: new Builder().mov64(R0, 0).exit(),
    });
    using link = attachRawTracepoint(prog, 'sys_enter');
    m.set(1, 11n);
    pin(m, join(fs.path, 'm'));
    pin(prog, join(fs.path, 'p'));
    mkdirSync(join(fs.path, 'dir'));
    pin(link, join(fs.path, 'dir', 'l'));

    using again = openPinned(join(fs.path, 'm')) as BpfMap<Uint8Array, Uint8Array>;
    expect(again).toBeInstanceOf(BpfMap);
    expect(again.info.name).toBe('pinned_map');
    using typed = openPinnedMap(join(fs.path, 'm'), { key: u32, value: u64 });
    expect(typed.get(1)).toBe(11n);
    using p = openPinned(join(fs.path, 'p'));
    expect(p).toBeInstanceOf(Program);
    using l = openPinnedLink(join(fs.path, 'dir', 'l'));
    expect(l.info.progId).toBe(prog.info.id);

    expect(
      listPins(fs.path).map(({ path, kind, name, type }) => ({
        path: path.slice(fs.path.length),
        kind,
        name,
        type,
      })),
    ).toEqual([
      { path: '/dir', kind: 'dir', name: 'dir', type: '' },
      { path: '/dir/l', kind: 'link', name: '', type: 'raw_tracepoint' },
      { path: '/m', kind: 'map', name: 'pinned_map', type: 'hash' },
      { path: '/p', kind: 'prog', name: 'pinned_prog', type: 'raw_tracepoint' },
    ]);
    unpin(join(fs.path, 'dir', 'l'));
    unpin(join(fs.path, 'm'));
    unpin(join(fs.path, 'p'));
    expect(listPins(fs.path).map((e) => e.kind)).toEqual(['dir']);
    expect(typed.get(1)).toBe(11n); // the map lives on while we hold it
  });

  it('read-only and write-only opens', () => {
    using fs = tempBpffs();
    using m = BpfMap.create({ type: 'array', key: u32, value: u32, maxEntries: 1 });
    pin(m, join(fs.path, 'm'));
    using ro = openPinnedMap(join(fs.path, 'm'), { key: u32, value: u32, flag: 'rdonly' });
    expect(ro.get(0)).toBe(0);
    expect(() => ro.set(0, 1)).toThrow(expect.objectContaining({ code: 'EPERM' }));
    using wo = openPinnedMap(join(fs.path, 'm'), { key: u32, value: u32, flag: 'wronly' });
    wo.set(0, 5);
    expect(() => wo.get(0)).toThrow(expect.objectContaining({ code: 'EPERM' }));
    expect(m.get(0)).toBe(5);
    // an unknown flag is refused, not opened read-write
    expect(() => openPinned(join(fs.path, 'm'), { flag: 'bogus' as never })).toThrow(
      "flag must be one of 'rdonly', 'wronly', got 'bogus'",
    );
    expect(() => openPinnedMap(join(fs.path, 'm'), { flag: 'rw' as never })).toThrow(TypeError);
  });

  it('bad paths are clear errors naming the path, leaving nothing behind', () => {
    using fs = tempBpffs();
    using m = BpfMap.create({ type: 'array', key: u32, value: u32, maxEntries: 1 });
    using prog = Program.load({
      type: 'socket_filter',
      license: 'GPL',
      instructions: new Builder().mov64(R0, 0).exit(),
    });
    expect(() => pin(m, '/tmp/bpfkit-not-bpffs')).toThrow(PinError);
    expect(() => pin(m, '/tmp/bpfkit-not-bpffs')).toThrow(
      /^\/tmp\/bpfkit-not-bpffs: pin: \/tmp is not on a bpffs mount/,
    );
    expect(() => pin(m, 'relative')).toThrow(/absolute path/);
    pin(m, join(fs.path, 'm'));
    expect(() => pin(m, join(fs.path, 'm'))).toThrow(
      new RegExp(`^${fs.path}/m: something is already pinned here`),
    );
    expect(() => pin(m, join(fs.path, 'no', 'dir'))).toThrow(/the directory does not exist/);
    expect(() => openPinned(join(fs.path, 'missing'))).toThrow(
      new RegExp(`${fs.path}/missing: nothing is pinned here`),
    );
    expect(() => unpin(join(fs.path, 'missing'))).toThrow(/nothing is pinned here/);
    expect(() => openPinnedProgram(join(fs.path, 'm'))).toThrow(/a map is pinned here, not a prog/);
    expect(() => openPinnedMap(join(fs.path, 'm'), { key: u64 })).toThrow(/key codec u64 is 8 bytes/);
    pin(prog, join(fs.path, 'p'));
    expect(() => openPinnedMap(join(fs.path, 'p'))).toThrow(/a prog is pinned here, not a map/);
    expect(listPins(fs.path).map((e) => e.path)).toEqual([join(fs.path, 'm'), join(fs.path, 'p')]);
  });
});

describe('interop with bpftool', () => {
  it('bpftool reads a map bpfkit pinned, with BTF field names', () => {
    using fs = tempBpffs();
    using c = loadCollection(mapsObject);
    c.program('use_maps').testRun({ data: new Uint8Array(64) });
    pin(c.map('stats_map'), join(fs.path, 'stats'));
    const dump = bpftool('map', 'dump', 'pinned', join(fs.path, 'stats'));
    expect(dump).toHaveLength(1);
    expect(dump[0].formatted).toEqual({ key: 1024, value: { packets: 1, bytes: 50, last_len: 50, seen: 1 } });
    expect(dump[0].key).toEqual(['0x00', '0x04', '0x00', '0x00']);
  });

  it('bpfkit opens and updates a map bpftool created and pinned', () => {
    using fs = tempBpffs();
    const path = join(fs.path, 'bt');
    execFileSync('bpftool', [
      'map',
      'create',
      path,
      'type',
      'hash',
      'key',
      '4',
      'value',
      '8',
      'entries',
      '16',
      'name',
      'from_bpftool',
    ]);
    {
      using m = openPinnedMap(path, { key: u32, value: u64 });
      expect(m.info.name).toBe('from_bpftool');
      m.set(7, 70n);
    }
    const got = bpftool('map', 'lookup', 'pinned', path, 'key', '7', '0', '0', '0');
    expect(got.value).toEqual(['0x46', '0x00', '0x00', '0x00', '0x00', '0x00', '0x00', '0x00']);
  });

  it('a pinned map keeps its data after the process that made it exits', () => {
    using fs = tempBpffs();
    const path = join(fs.path, 'survivor');
    const script = new URL(`./pin-child-${process.pid}.mjs`, import.meta.url).pathname;
    writeFileSync(
      script,
      `import { BpfMap, u32, u64 } from '@bpfkit/maps';
       import { pin } from '@bpfkit/pin';
       const m = BpfMap.create({ type: 'hash', key: u32, value: u64, maxEntries: 4 });
       m.set(42, 4242n);
       pin(m, ${JSON.stringify(path)});
       m.close();`,
    );
    try {
      const r = spawnSync(process.execPath, [script], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    } finally {
      spawnSync('rm', ['-f', script]);
    }
    using m = openPinnedMap(path, { key: u32, value: u64 });
    expect(m.get(42)).toBe(4242n);
  });
});

describe('pin-by-name reuse at load', () => {
  it('creates and pins on first load, reuses (with its data) on the next, refuses a mismatch', () => {
    using fs = tempBpffs();
    {
      using first = loadCollection(mapsObject, { resolveMap: pinByName(fs.path) });
      first.program('use_maps').testRun({ data: new Uint8Array(64) });
      expect(listPins(fs.path).map((e) => e.name)).toEqual(['pinned_lru']);
    }
    using second = loadCollection(mapsObject, { resolveMap: pinByName(fs.path) });
    expect(second.map<bigint, bigint>('pinned_lru').get(50n)).toBe(1n); // data from the first load
    unpin(join(fs.path, 'pinned_lru'));
    using wrong = BpfMap.create({ type: 'lru_hash', key: u64, value: u64, maxEntries: 32 });
    pin(wrong, join(fs.path, 'pinned_lru'));
    expect(() => loadCollection(mapsObject, { resolveMap: pinByName(fs.path) })).toThrow(
      /pinned_lru: pinned map 'pinned_lru' has maxEntries 32, the object wants 64/,
    );
    unpin(join(fs.path, 'pinned_lru'));
    expect(() => pinByName('/tmp')).toThrow(/not on a bpffs mount/);
  });

  it('reuses a pinned perf event array declared without max_entries (one slot per CPU)', () => {
    using fs = tempBpffs();
    const object = () => {
      const o = ObjectFile.read(
        new URL('../../loader/test/fixtures/map_rules.bpf.o', import.meta.url).pathname,
      );
      o.maps.get('per_cpu_events')!.pinning = 'by_name';
      return o;
    };
    let id: number;
    {
      using first = loadCollection(object(), { resolveMap: pinByName(fs.path) });
      id = first.map('per_cpu_events').info.id;
      expect(first.map('per_cpu_events').maxEntries).toBe(possibleCpus());
    }
    using second = loadCollection(object(), { resolveMap: pinByName(fs.path) });
    expect(second.map('per_cpu_events').info.id).toBe(id);
    unpin(join(fs.path, 'per_cpu_events'));
  });
});
