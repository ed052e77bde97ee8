import { closeSync, openSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import {
  AttachType,
  BPF_ATTR_SIZE,
  BpfCmd,
  BpfError,
  bpf,
  btfGetFdById,
  btfGetNextId,
  btfLoad,
  enableStats,
  Fd,
  iterCreate,
  linkCreate,
  linkDetach,
  linkInfo,
  linkUpdate,
  MapType,
  mapCreate,
  mapDeleteBatch,
  mapDeleteElem,
  mapFreeze,
  mapGetNextKey,
  mapInfo,
  mapLookupAndDeleteBatch,
  mapLookupAndDeleteElem,
  mapLookupBatch,
  mapLookupElem,
  mapUpdateBatch,
  mapUpdateElem,
  NativeBuffer,
  NotSupportedError,
  objGet,
  objPin,
  ProgType,
  progAttach,
  progBindMap,
  progDetach,
  progGetFdById,
  progGetNextId,
  progInfo,
  progLoad,
  progQuery,
  progStreamReadByFd,
  progTestRun,
  rawTracepointOpen,
  StatsType,
  taskFdQuery,
  tokenCreate,
  UpdateFlags,
} from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';
import { exit, insns, loadReturn, tempBpffs, tempCgroup } from './helpers.js';

const u32 = (v: number) => {
  const b = new NativeBuffer(4);
  b.view.setUint32(0, v, true);
  return b;
};

describe('map element commands', () => {
  it('create, update with BPF_ANY/NOEXIST/EXIST, lookup, next key, delete', () => {
    using fd = mapCreate({
      mapType: MapType.HASH,
      keySize: 4,
      valueSize: 4,
      maxEntries: 8,
      mapName: 'elems',
    });
    using key = u32(1);
    using value = u32(100);
    using out = new NativeBuffer(4);
    expect(mapLookupElem({ mapFd: fd.value, key: key.ptr, value: out.ptr })).toBe(false);
    mapUpdateElem({ mapFd: fd.value, key: key.ptr, value: value.ptr, flags: UpdateFlags.NOEXIST });
    expect(() =>
      mapUpdateElem({ mapFd: fd.value, key: key.ptr, value: value.ptr, flags: UpdateFlags.NOEXIST }),
    ).toThrow(expect.objectContaining({ code: 'EEXIST', cmd: 'BPF_MAP_UPDATE_ELEM' }));
    value.view.setUint32(0, 200, true);
    mapUpdateElem({ mapFd: fd.value, key: key.ptr, value: value.ptr, flags: UpdateFlags.EXIST });
    expect(mapLookupElem({ mapFd: fd.value, key: key.ptr, value: out.ptr })).toBe(true);
    expect(out.view.getUint32(0, true)).toBe(200);
    using missing = u32(2);
    expect(() =>
      mapUpdateElem({ mapFd: fd.value, key: missing.ptr, value: value.ptr, flags: UpdateFlags.EXIST }),
    ).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    using next = new NativeBuffer(4);
    expect(mapGetNextKey({ mapFd: fd.value, key: 0n, nextKey: next.ptr })).toBe(true);
    expect(next.view.getUint32(0, true)).toBe(1);
    expect(mapGetNextKey({ mapFd: fd.value, key: next.ptr, nextKey: next.ptr })).toBe(false);
    expect(mapDeleteElem({ mapFd: fd.value, key: key.ptr })).toBe(true);
    expect(mapDeleteElem({ mapFd: fd.value, key: key.ptr })).toBe(false);
  });

  it('lookup-and-delete pops a queue; freeze makes a map read-only to user space', () => {
    using q = mapCreate({ mapType: MapType.QUEUE, keySize: 0, valueSize: 4, maxEntries: 4 });
    using v = u32(7);
    mapUpdateElem({ mapFd: q.value, key: 0n, value: v.ptr });
    using out = new NativeBuffer(4);
    expect(mapLookupAndDeleteElem({ mapFd: q.value, key: 0n, value: out.ptr })).toBe(true);
    expect(out.view.getUint32(0, true)).toBe(7);
    expect(mapLookupAndDeleteElem({ mapFd: q.value, key: 0n, value: out.ptr })).toBe(false);

    using arr = mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 });
    using k = u32(0);
    mapFreeze({ mapFd: arr.value });
    expect(() => mapUpdateElem({ mapFd: arr.value, key: k.ptr, value: v.ptr })).toThrow(
      expect.objectContaining({ code: 'EPERM', cmd: 'BPF_MAP_UPDATE_ELEM' }),
    );
  });

  it('batch update, lookup, lookup-and-delete and delete', () => {
    using fd = mapCreate({ mapType: MapType.HASH, keySize: 4, valueSize: 8, maxEntries: 64 });
    const n = 40;
    using keys = new NativeBuffer(4 * n);
    using values = new NativeBuffer(8 * n);
    for (let i = 0; i < n; i++) {
      keys.view.setUint32(i * 4, i, true);
      values.view.setBigUint64(i * 8, BigInt(i * i), true);
    }
    expect(mapUpdateBatch({ mapFd: fd.value, keys: keys.ptr, values: values.ptr, count: n }).count).toBe(n);
    keys.bytes.fill(0);
    values.bytes.fill(0);
    using tokens = new NativeBuffer(16);
    const seen = new Map<number, bigint>();
    let first = true;
    for (;;) {
      const r = mapLookupBatch({
        mapFd: fd.value,
        inBatch: first ? 0n : tokens.ptr,
        outBatch: tokens.at(8),
        keys: keys.ptr,
        values: values.ptr,
        count: 16,
      });
      for (let i = 0; i < r.count; i++)
        seen.set(keys.view.getUint32(i * 4, true), values.view.getBigUint64(i * 8, true));
      if (r.done) break;
      tokens.bytes.copyWithin(0, 8, 16);
      first = false;
    }
    expect(seen.size).toBe(n);
    expect(seen.get(7)).toBe(49n);
    for (let i = 0; i < 10; i++) keys.view.setUint32(i * 4, i, true);
    expect(mapDeleteBatch({ mapFd: fd.value, keys: keys.ptr, count: 10 }).count).toBe(10);
    const rest = mapLookupAndDeleteBatch({
      mapFd: fd.value,
      outBatch: tokens.ptr,
      keys: keys.ptr,
      values: values.ptr,
      count: n,
    });
    expect(rest.count).toBe(n - 10);
    expect(mapInfo(fd).maxEntries).toBe(64);
    using probe = u32(20);
    using out = new NativeBuffer(8);
    expect(mapLookupElem({ mapFd: fd.value, key: probe.ptr, value: out.ptr })).toBe(false);
  });

  it('rejects bad fds, wrong sizes and unknown map types with typed errors', () => {
    using key = u32(0);
    expect(() => mapLookupElem({ mapFd: 9999, key: key.ptr, value: key.ptr })).toThrow(
      expect.objectContaining({ code: 'EBADF', cmd: 'BPF_MAP_LOOKUP_ELEM' }),
    );
    expect(() => mapCreate({ mapType: MapType.ARRAY, keySize: 8, valueSize: 4, maxEntries: 1 })).toThrow(
      expect.objectContaining({ code: 'EINVAL', cmd: 'BPF_MAP_CREATE' }),
    );
    expect(() => mapCreate({ mapType: MapType.HASH, keySize: 4, valueSize: 1 << 30, maxEntries: 1 })).toThrow(
      expect.objectContaining({ code: 'E2BIG' }),
    );
    expect(() => mapCreate({ mapType: 4096, keySize: 4, valueSize: 4, maxEntries: 1 })).toThrow(BpfError);
    expect(() =>
      mapCreate({ mapType: MapType.HASH, keySize: 4, valueSize: 4, maxEntries: 1, mapName: 'x'.repeat(16) }),
    ).toThrow(RangeError);
  });
});

describe('the raw bpf() call', () => {
  it('runs an encoded attr and copies the kernel writes back', () => {
    const attr = new Uint8Array(BPF_ATTR_SIZE);
    const dv = new DataView(attr.buffer);
    dv.setUint32(0, MapType.ARRAY, true);
    dv.setUint32(4, 4, true);
    dv.setUint32(8, 4, true);
    dv.setUint32(12, 2, true);
    using fd = new Fd(bpf(BpfCmd.MAP_CREATE, attr), 'bpf-map');
    expect(mapInfo(fd).maxEntries).toBe(2);
  });

  it('names unknown commands and oversized attrs', () => {
    expect(() => bpf(999, new Uint8Array(8))).toThrow(
      expect.objectContaining({ code: 'EINVAL', cmd: 'bpf cmd 999' }),
    );
    expect(() => bpf(BpfCmd.MAP_CREATE, new Uint8Array(BPF_ATTR_SIZE + 1))).toThrow(RangeError);
  });
});

describe('programs', () => {
  it('loads, test-runs, binds a map and reports info; the verifier log is filled on failure', () => {
    using prog = loadReturn(ProgType.SOCKET_FILTER, 42);
    using data = new NativeBuffer(64);
    const r = progTestRun({ progFd: prog.value, dataIn: data.ptr, dataSizeIn: 64, repeat: 10 });
    expect(r.retval).toBe(42);
    using map = mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 });
    progBindMap({ progFd: prog.value, mapFd: map.value });
    expect(progInfo(prog).mapIds).toEqual([mapInfo(map).id]);

    using bad = insns(exit());
    using license = NativeBuffer.from('GPL');
    using log = new NativeBuffer(4096);
    let err: unknown;
    try {
      progLoad({
        progType: ProgType.SOCKET_FILTER,
        insns: bad.ptr,
        insnCnt: 1,
        license: license.ptr,
        logLevel: 1,
        logBuf: log.ptr,
        logSize: 4096,
      });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'EACCES', cmd: 'BPF_PROG_LOAD' });
    expect(Buffer.from(log.bytes).toString()).toContain('R0 !read_ok');
  });

  it('iterates ids and reopens by id', () => {
    using prog = loadReturn(ProgType.SOCKET_FILTER, 0);
    const id = progInfo(prog).id;
    const ids: number[] = [];
    for (let next = progGetNextId(0); next !== undefined; next = progGetNextId(next)) ids.push(next);
    expect(ids).toContain(id);
    using again = progGetFdById({ progId: id });
    expect(progInfo(again).tag).toBe(progInfo(prog).tag);
    expect(() => progGetFdById({ progId: 0x7fffffff })).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('enable_stats turns on run-time accounting while its fd is open', () => {
    using prog = loadReturn(ProgType.RAW_TRACEPOINT, 0);
    using name = NativeBuffer.from('sys_enter');
    using link = rawTracepointOpen({ name: name.ptr, progFd: prog.value });
    for (let i = 0; i < 20; i++) process.hrtime();
    readFileSync('/proc/self/stat');
    expect(progInfo(prog).runCnt).toBe(0n);
    {
      using _stats = enableStats({ type: StatsType.RUN_TIME });
      readFileSync('/proc/self/stat');
    }
    const counted = progInfo(prog).runCnt;
    expect(counted).toBeGreaterThan(0n);
    expect(progInfo(prog).runTimeNs).toBeGreaterThan(0n);
    expect(link.closed).toBe(false);
  });

  it('reads a program stream (6.17+) or says the kernel lacks it', () => {
    using prog = loadReturn(ProgType.SOCKET_FILTER, 0);
    using buf = new NativeBuffer(256);
    expect(
      progStreamReadByFd({ streamBuf: buf.ptr, streamBufLen: 256, streamId: 1, progFd: prog.value }),
    ).toBe(0);
    expect(() =>
      progStreamReadByFd({ streamBuf: buf.ptr, streamBufLen: 256, streamId: 99, progFd: prog.value }),
    ).toThrow(expect.objectContaining({ cmd: 'BPF_PROG_STREAM_READ_BY_FD' }));
  });
});

describe('attach, links and queries on a cgroup', () => {
  it('PROG_ATTACH / PROG_QUERY / PROG_DETACH', () => {
    using cg = tempCgroup();
    const cgFd = openSync(cg.path, 'r');
    try {
      using prog = loadReturn(ProgType.CGROUP_SKB, 1);
      progAttach({ targetFd: cgFd, attachBpfFd: prog.value, attachType: AttachType.CGROUP_INET_EGRESS });
      using ids = new NativeBuffer(16);
      const q = progQuery({
        targetFd: cgFd,
        attachType: AttachType.CGROUP_INET_EGRESS,
        progIds: ids.ptr,
        progCnt: 4,
      });
      expect(q.progCnt).toBe(1);
      expect(ids.view.getUint32(0, true)).toBe(progInfo(prog).id);
      progDetach({ targetFd: cgFd, attachBpfFd: prog.value, attachType: AttachType.CGROUP_INET_EGRESS });
      expect(progQuery({ targetFd: cgFd, attachType: AttachType.CGROUP_INET_EGRESS }).progCnt).toBe(0);
      expect(() =>
        progDetach({ targetFd: cgFd, attachBpfFd: prog.value, attachType: AttachType.CGROUP_INET_EGRESS }),
      ).toThrow(expect.objectContaining({ cmd: 'BPF_PROG_DETACH', code: 'ENOENT' }));
    } finally {
      closeSync(cgFd);
    }
  });

  it('LINK_CREATE / LINK_UPDATE / LINK_DETACH with link info', () => {
    using cg = tempCgroup();
    const cgFd = openSync(cg.path, 'r');
    try {
      using a = loadReturn(ProgType.CGROUP_SKB, 1);
      using b = loadReturn(ProgType.CGROUP_SKB, 0);
      using link = linkCreate({
        progFd: a.value,
        targetFd: cgFd,
        attachType: AttachType.CGROUP_INET_INGRESS,
      });
      const info = linkInfo(link);
      expect(info.typeName).toBe('cgroup');
      expect(info.progId).toBe(progInfo(a).id);
      expect(info.cgroupAttachType).toBe(AttachType.CGROUP_INET_INGRESS);
      linkUpdate({ linkFd: link.value, newProgFd: b.value });
      expect(linkInfo(link).progId).toBe(progInfo(b).id);
      expect(() =>
        linkUpdate({ linkFd: link.value, newProgFd: b.value, oldProgFd: a.value, flags: 4 }),
      ).toThrow(expect.objectContaining({ cmd: 'BPF_LINK_UPDATE', code: 'EPERM' }));
      linkDetach({ linkFd: link.value });
      expect(progQuery({ targetFd: cgFd, attachType: AttachType.CGROUP_INET_INGRESS }).progCnt).toBe(0);
      expect(() => iterCreate({ linkFd: link.value })).toThrow(
        expect.objectContaining({ cmd: 'BPF_ITER_CREATE' }),
      );
    } finally {
      closeSync(cgFd);
    }
  });

  it('RAW_TRACEPOINT_OPEN and TASK_FD_QUERY', () => {
    using prog = loadReturn(ProgType.RAW_TRACEPOINT, 0);
    using name = NativeBuffer.from('sys_enter');
    using link = rawTracepointOpen({ name: name.ptr, progFd: prog.value });
    using buf = new NativeBuffer(64);
    const q = taskFdQuery({ pid: process.pid, fd: link.value, buf: buf.ptr, bufLen: 64 });
    expect(q.progId).toBe(progInfo(prog).id);
    expect(Buffer.from(buf.bytes.subarray(0, q.bufLen)).toString()).toBe('sys_enter');
    using nope = NativeBuffer.from('no_such_tracepoint_xyz');
    expect(() => rawTracepointOpen({ name: nope.ptr, progFd: prog.value })).toThrow(
      expect.objectContaining({ cmd: 'BPF_RAW_TRACEPOINT_OPEN', code: 'ENOENT' }),
    );
  });
});

describe('BTF and bpffs objects', () => {
  it('BTF_LOAD, BTF_GET_NEXT_ID, BTF_GET_FD_BY_ID', () => {
    const strings = new TextEncoder().encode('\0int\0');
    using blob = new NativeBuffer(24 + 16 + strings.length);
    const h = blob.view;
    h.setUint16(0, 0xeb9f, true);
    h.setUint8(2, 1);
    h.setUint32(4, 24, true);
    h.setUint32(12, 16, true);
    h.setUint32(16, 16, true);
    h.setUint32(20, strings.length, true);
    h.setUint32(24, 1, true);
    h.setUint32(28, 1 << 24, true);
    h.setUint32(32, 4, true);
    h.setUint32(36, (1 << 24) | 32, true);
    blob.bytes.set(strings, 40);
    using btf = btfLoad({ btf: blob.ptr, btfSize: blob.size });
    expect(btfGetNextId(0)).toBe(1); // vmlinux
    using vmlinux = btfGetFdById({ btfId: 1 });
    expect(vmlinux.value).toBeGreaterThan(0);
    blob.view.setUint16(0, 0x1234, true);
    using log = new NativeBuffer(1024);
    expect(() =>
      btfLoad({ btf: blob.ptr, btfSize: blob.size, btfLogBuf: log.ptr, btfLogSize: 1024, btfLogLevel: 1 }),
    ).toThrow(expect.objectContaining({ cmd: 'BPF_BTF_LOAD', code: 'EINVAL' }));
    expect(Buffer.from(log.bytes).toString()).toMatch(/magic/i);
    expect(btf.closed).toBe(false);
  });

  it('OBJ_PIN and OBJ_GET on a private bpffs', () => {
    using fs = tempBpffs();
    using map = mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 3 });
    using path = NativeBuffer.from(`${fs.path}/m`);
    objPin({ pathname: path.ptr, bpfFd: map.value });
    expect(() => objPin({ pathname: path.ptr, bpfFd: map.value })).toThrow(
      expect.objectContaining({ code: 'EEXIST' }),
    );
    using again = objGet({ pathname: path.ptr });
    expect(mapInfo(again).id).toBe(mapInfo(map).id);
    using missing = NativeBuffer.from(`${fs.path}/none`);
    expect(() => objGet({ pathname: missing.ptr })).toThrow(
      expect.objectContaining({ cmd: 'BPF_OBJ_GET', code: 'ENOENT' }),
    );
  });

  it('TOKEN_CREATE is refused outside a delegating bpffs', () => {
    using fs = tempBpffs();
    const dir = openSync(fs.path, 'r');
    try {
      tokenCreate({ bpffsFd: dir }).close();
      expect.unreachable('a bpffs without delegate options must refuse a token');
    } catch (e) {
      if (e instanceof NotSupportedError) throw e; // kernels before 6.9: the matrix names it
      expect(e).toMatchObject({ cmd: 'BPF_TOKEN_CREATE' });
    } finally {
      closeSync(dir);
    }
  });
});

it('reports the kernel it runs on in NotSupported-style hints', () => {
  const e = new BpfError(BpfCmd.MAP_CREATE, 524);
  expect(e.code).toBe('ENOTSUPP');
  expect(e.message).toContain(release());
});
