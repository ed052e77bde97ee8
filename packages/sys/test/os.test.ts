import { execFileSync } from 'node:child_process';
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
  RLIM_INFINITY,
  readField,
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

  it('raises RLIMIT_MEMLOCK only when this kernel still charges it, on its own before the first map', () => {
    // in a fresh process with a 64 KiB limit (a distribution default): a 1 MiB map needs more
    const script = `
      import { getrlimit, setrlimit, RLIMIT_MEMLOCK, mapCreate, MapType, removeMemlockLimit, setAutoMemlock } from '@bpfkit/sys';
      setrlimit(RLIMIT_MEMLOCK, 65536n, 65536n);
      const big = () => mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 1024, maxEntries: 1024 });
      const out = {};
      if (process.argv[1] === 'off') {
        setAutoMemlock(false);
        try { big().close(); out.big = 'ok'; } catch (e) { out.big = e.code; }
      } else {
        big().close(); // the first map: the limit is raised first where it is charged
        out.big = 'ok';
        out.limit = String(getrlimit(RLIMIT_MEMLOCK).cur);
        out.raised = removeMemlockLimit(); // cached: what the automatic probe found
      }
      console.log(JSON.stringify(out));
    `;
    const run = (mode: string) =>
      JSON.parse(
        execFileSync(process.execPath, ['--input-type=module', '-e', script, mode], {
          cwd: new URL('..', import.meta.url),
          encoding: 'utf8',
        }),
      );
    // 5.11 moved BPF memory from RLIMIT_MEMLOCK to memcg
    const [major, minor] = readFileSync('/proc/sys/kernel/osrelease', 'utf8').split('.').map(Number) as [
      number,
      number,
    ];
    const memcg = major > 5 || (major === 5 && minor >= 11);
    const auto = run('auto');
    expect(auto.big).toBe('ok');
    expect(auto.raised).toBe(!memcg);
    expect(auto.limit).toBe(memcg ? '65536' : String(RLIM_INFINITY)); // left alone where memcg charges
    // switched off, a charging kernel refuses the map under the small limit
    expect(run('off').big).toBe(memcg ? 'ok' : 'EPERM');
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
