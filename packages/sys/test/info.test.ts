import {
  btfFdById,
  btfIds,
  btfInfo,
  linkFdById,
  linkIds,
  linkInfo,
  MapType,
  mapCreate,
  mapFdById,
  mapIds,
  mapInfo,
  NativeBuffer,
  objectKind,
  ProgType,
  progFdById,
  progIds,
  progInfo,
  rawTracepointOpen,
} from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';
import { loadReturn } from './helpers.js';

describe('introspection', () => {
  it('decodes map info and finds the map by id', () => {
    using fd = mapCreate({
      mapType: MapType.LRU_HASH,
      keySize: 8,
      valueSize: 16,
      maxEntries: 32,
      mapName: 'info_map',
      mapFlags: 0,
    });
    const info = mapInfo(fd);
    expect(info).toMatchObject({
      type: MapType.LRU_HASH,
      typeName: 'lru_hash',
      keySize: 8,
      valueSize: 16,
      maxEntries: 32,
      name: 'info_map',
    });
    expect([...mapIds()]).toContain(info.id);
    using again = mapFdById(info.id);
    expect(mapInfo(again).name).toBe('info_map');
  });

  it('decodes program info: tag as bpftool prints it, type name, ids', () => {
    using prog = loadReturn(ProgType.SOCKET_FILTER, 3, {});
    const info = progInfo(prog);
    expect(info.typeName).toBe('socket_filter');
    expect(info.tag).toMatch(/^[0-9a-f]{16}$/);
    expect(info.xlatedProgLen).toBe(16);
    expect(info.mapIds).toEqual([]);
    expect([...progIds()]).toContain(info.id);
    using again = progFdById(info.id);
    expect(progInfo(again).tag).toBe(info.tag);
  });

  it('decodes link info with the fields of its own type only', () => {
    using prog = loadReturn(ProgType.RAW_TRACEPOINT, 0);
    using name = NativeBuffer.from('sys_exit');
    using link = rawTracepointOpen({ name: name.ptr, progFd: prog.value });
    const info = linkInfo(link);
    expect(info.typeName).toBe('raw_tracepoint');
    expect(info.rawTracepointTpName).toBe('sys_exit');
    expect(info.progId).toBe(progInfo(prog).id);
    expect(Object.keys(info).filter((k) => k.startsWith('cgroup'))).toEqual([]);
    expect([...linkIds()]).toContain(info.id);
    using again = linkFdById(info.id);
    expect(linkInfo(again).progId).toBe(info.progId);
  });

  it('tells object kinds apart and refuses the wrong one', () => {
    using map = mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 });
    using prog = loadReturn(ProgType.SOCKET_FILTER, 0);
    using btf = btfFdById(1);
    expect([objectKind(map), objectKind(prog), objectKind(btf), objectKind(0)]).toEqual([
      'map',
      'prog',
      'btf',
      undefined,
    ]);
    expect(() => progInfo(map)).toThrow(/is a BPF map, not a prog/);
    expect(() => linkInfo(prog)).toThrow(/is a BPF prog, not a link/);
    expect(() => mapInfo(btf)).toThrow(TypeError);
  });

  it('lists BTF objects, vmlinux first', () => {
    const ids = [...btfIds()];
    expect(ids[0]).toBe(1);
    using fd = btfFdById(1);
    const info = btfInfo(fd);
    expect(info).toMatchObject({ name: 'vmlinux', kernelBtf: 1, id: 1 });
    expect(info.btfSize).toBeGreaterThan(1000);
  });
});
