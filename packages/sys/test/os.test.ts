import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import {
  BPF_FS_MAGIC,
  CGROUP2_SUPER_MAGIC,
  cgroup2Mount,
  Defines,
  EPOLLIN,
  Epoll,
  EventFd,
  getrlimit,
  ioctl,
  MAP_SHARED,
  mmap,
  mounts,
  PerfSwId,
  PerfType,
  PROT_READ,
  PROT_WRITE,
  pageSize,
  perfEventOpen,
  Readiness,
  RLIMIT_MEMLOCK,
  readField,
  removeMemlockLimit,
  setrlimit,
  statfsType,
  structLayout,
} from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';
import { tempBpffs } from './helpers.js';

describe('perf_event_open, ioctl and mmap', () => {
  it('counts this task’s context switches and maps its ring', async () => {
    using ev = perfEventOpen(
      {
        type: PerfType.SOFTWARE,
        config: PerfSwId.CONTEXT_SWITCHES,
        disabled: 1,
        samplePeriod: 1,
        sampleType: 0,
        wakeupEvents: 1,
      },
      0,
      -1,
    );
    using ring = mmap(ev, pageSize * 3, PROT_READ | PROT_WRITE, MAP_SHARED);
    ioctl(ev, Defines.PERF_EVENT_IOC_RESET);
    ioctl(ev, Defines.PERF_EVENT_IOC_ENABLE);
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 2));
    ioctl(ev, Defines.PERF_EVENT_IOC_DISABLE);
    const page = new DataView(ring.buffer);
    const head = readField(page, structLayout.perfEventMmapPage.data_head) as bigint;
    expect(head).toBeGreaterThan(0n); // context-switch samples were written into the ring
    expect(() => ioctl(ev, 0xdead)).toThrow(expect.objectContaining({ cmd: 'ioctl' }));
  });

  it('rejects a bad perf attr with a named error', () => {
    expect(() => perfEventOpen({ type: 9999 }, 0, -1)).toThrow(
      expect.objectContaining({ cmd: 'perf_event_open' }),
    );
    expect(() => perfEventOpen({ nope: 1 } as never, 0, -1)).toThrow(TypeError);
  });
});

describe('epoll and eventfd', () => {
  it('wakes on an eventfd signal and times out without one', () => {
    using ep = new Epoll(4);
    using ev = new EventFd();
    ep.add(ev.fd, 42, EPOLLIN);
    expect(ep.wait(0)).toBe(0);
    ev.signal();
    expect(ep.wait(100)).toBe(1);
    expect(ep.eventData(0)).toBe(42);
    expect(ev.drain()).toBe(1n);
    ep.delete(ev.fd);
    ev.signal();
    expect(ep.wait(0)).toBe(0);
  });
});

describe('filesystems and limits', () => {
  it('statfs tells bpffs from other filesystems; mount/umount work', () => {
    using fs = tempBpffs();
    expect(statfsType(fs.path)).toBe(BPF_FS_MAGIC);
    expect(statfsType(tmpdir())).not.toBe(BPF_FS_MAGIC);
    expect(() => statfsType('/no/such/path')).toThrow(
      expect.objectContaining({ code: 'ENOENT', cmd: 'statfs' }),
    );
  });

  it('reads the mount table: a fresh bpffs mount shows with its type, cgroup2Mount() is cgroup v2', () => {
    using fs = tempBpffs();
    expect(mounts()).toContainEqual({ point: fs.path, fstype: 'bpf', source: 'bpf' });
    expect(mounts().find((m) => m.point === '/proc')?.fstype).toBe('proc');
    expect(statfsType(cgroup2Mount())).toBe(CGROUP2_SUPER_MAGIC);
  });

  it('raises RLIMIT_MEMLOCK only when this kernel still charges it', () => {
    const before = getrlimit(RLIMIT_MEMLOCK);
    const raised = removeMemlockLimit();
    const memcg = Number(readFileSync('/proc/sys/kernel/osrelease', 'utf8').split('.')[0]) >= 6;
    expect(raised).toBe(!memcg);
    expect(getrlimit(RLIMIT_MEMLOCK)).toEqual(before);
    setrlimit(RLIMIT_MEMLOCK, before.cur, before.max);
  });
});

describe('Readiness', () => {
  it('resolves when an fd becomes readable, without blocking the event loop', async () => {
    using ev = new EventFd();
    using r = new Readiness(ev.fd.value);
    // The signal comes from a timer callback: if waiting blocked the event loop it could never run.
    let ranWhileWaiting = false;
    setTimeout(() => {
      ranWhileWaiting = true;
      ev.signal();
    }, 30);
    expect(await r.wait(10_000)).toBe(true);
    expect(ranWhileWaiting).toBe(true);
    ev.drain();
    expect(await r.wait(20)).toBe(false); // timeout
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 10);
    expect(await r.wait(undefined, ac.signal)).toBe(false);
    const pending = r.wait();
    r.cancel();
    expect(await pending).toBe(false);
  });
});
