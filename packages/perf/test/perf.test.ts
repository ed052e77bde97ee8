import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { Builder, R0 } from '@bpfkit/asm';
import {
  attachPerfEvent,
  attachTracepoint,
  attachUprobe,
  openHardware,
  openSoftware,
  symbolOffset,
  tracepointId,
} from '@bpfkit/link';
import { loadCollection, Program } from '@bpfkit/loader';
import { BpfMap, onlineCpus, u32 } from '@bpfkit/maps';
import { PerfReader, RingBufReader } from '@bpfkit/perf';
import { PerfHwId } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';
import { addToSlot0, emitterKit } from '../../../tools/testing/programs.js';

const coreObject = new URL('../../loader/test/fixtures/core.bpf.o', import.meta.url).pathname;
const uprobeTarget = new URL('./fixtures/uprobe_target', import.meta.url).pathname;
const getppid = (n: number) => {
  let x = 0;
  for (let i = 0; i < n; i++) x += process.ppid;
  return x;
};

/** Records ready now (or within `timeout` ms of each other): ends at the first read that times out. */
async function* ready<R>(
  reader: { read(o: { timeout: number }): Promise<R | undefined> },
  timeout = 100,
): AsyncGenerator<R> {
  for (;;) {
    const rec = await reader.read({ timeout });
    if (rec === undefined) return;
    yield rec;
  }
}

/** Samples and lost-sample counts of everything ready now. */
async function tally(reader: PerfReader): Promise<{ samples: number; lost: number }> {
  let samples = 0;
  let lost = 0;
  for await (const rec of ready(reader, 50)) {
    if (rec.lost) lost += rec.lost;
    else samples++;
  }
  return { samples, lost };
}

const perfSetup = (size: number, kind: 'perf' | 'ringbuf' = 'perf', ringBytes = 1 << 16) =>
  emitterKit(kind, process.pid, size, ringBytes);

describe('tracepoints and the ring buffer reader (an object built the libbpf way)', () => {
  it('a CO-RE tracepoint program reports pid, tgid, ppid and comm through a ring buffer', async () => {
    using c = loadCollection(coreObject, { constants: { target_tgid: process.pid } });
    using reader = RingBufReader.open(c.map('events'), { copy: true });
    {
      using link = attachTracepoint(c.program('on_getppid'), 'syscalls', 'sys_enter_getppid');
      expect(link.mode).toBe('link');
      expect(link.link!.info.typeName).toBe('perf_event');
      getppid(10);
    }
    const comm = readFileSync('/proc/self/comm', 'utf8').trim();
    const records = [];
    for (let i = 0; i < 10; i++) records.push((await reader.read({ timeout: 1000 }))!);
    for (const [i, r] of records.entries()) {
      const dv = new DataView(r.data.buffer, r.data.byteOffset, r.data.byteLength);
      expect(dv.getUint32(0, true)).toBe(process.pid);
      expect(dv.getUint32(4, true)).toBe(process.pid);
      expect(dv.getUint32(8, true)).toBe(process.ppid);
      expect(dv.getUint32(12, true)).toBe(i);
      expect(Buffer.from(r.data.subarray(16, 32)).toString().replace(/\0.*$/s, '')).toBe(comm);
    }
    expect(await reader.read({ timeout: 50 })).toBeUndefined();
    expect(c.map<number, bigint>('calls').get(process.pid)).toBe(10n);
  });

  it('legacy attach (PERF_EVENT_IOC_SET_BPF) works too and detaches on dispose', () => {
    using s = perfSetup(8, 'ringbuf');
    using reader = RingBufReader.open(s.events);
    {
      using link = attachTracepoint(s.prog, 'syscalls', 'sys_enter_getppid', { mode: 'legacy' });
      expect(link.mode).toBe('legacy');
      getppid(5);
    }
    getppid(5);
    expect(reader.drain(() => {})).toBe(5);
    expect(() => tracepointId('syscalls', 'no_such_tp')).toThrow(/no tracepoint 'syscalls\/no_such_tp'/);
  });
});

describe('PerfReader', () => {
  it('reads records from every CPU, pid and sequence intact', async () => {
    using s = perfSetup(16);
    using reader = PerfReader.open(s.events, { pagesPerCpu: 4 });
    using _link = attachTracepoint(s.prog, 'syscalls', 'sys_enter_getppid');
    const script = 'for (let i = 0; i < 50; i++) process.ppid;';
    // children on each CPU; the program follows our tgid only, so count our own calls too
    for (const cpu of onlineCpus()) {
      const r = spawnSync('taskset', ['-c', String(cpu), process.execPath, '-e', script]);
      expect(r.status).toBe(0);
    }
    getppid(100);
    const seqs: number[] = [];
    for await (const rec of ready(reader, 100)) {
      expect(rec.lost).toBe(0);
      const dv = new DataView(rec.data.buffer, rec.data.byteOffset, rec.data.byteLength);
      expect(dv.getUint32(0, true)).toBe(process.pid);
      seqs.push(dv.getUint32(4, true));
      expect(rec.data.length).toBe(20); // 16 bytes padded by the kernel with its u32 size to 8-byte alignment
    }
    expect(seqs.sort((a, b) => a - b)).toEqual([...Array(100).keys()]);
  });

  it('records several CPUs when the producer runs on several', async () => {
    // A program on sys_enter_getppid for *all* processes, filtered to our children by the map.
    using s = perfSetup(16);
    using reader = PerfReader.open(s.events, { pagesPerCpu: 4 });
    const cpusSeen = new Set<number>();
    {
      using _link = attachTracepoint(s.prog, 'syscalls', 'sys_enter_getppid');
      for (const cpu of onlineCpus()) {
        // move ourselves: taskset on our own pid
        spawnSync('taskset', ['-p', '-c', String(cpu), String(process.pid)]);
        getppid(20);
      }
    }
    spawnSync('taskset', ['-p', '-c', onlineCpus().join(','), String(process.pid)]);
    for await (const rec of ready(reader, 100)) {
      cpusSeen.add(rec.cpu);
    }
    expect(cpusSeen.size).toBe(onlineCpus().length);
  });

  it('handles records that wrap around the ring’s end (odd sizes)', async () => {
    using s = perfSetup(21);
    using reader = PerfReader.open(s.events, { pagesPerCpu: 1, cpus: onlineCpus() });
    using _link = attachTracepoint(s.prog, 'syscalls', 'sys_enter_getppid');
    let expected = 0;
    let wrapped = 0;
    for (let batch = 0; batch < 20; batch++) {
      getppid(30);
      // Each CPU's ring keeps its records in order, but the thread may move to another CPU in
      // the middle of a batch (a busy machine does that): check each record on its own, then
      // that the batch holds every sequence number once.
      const seqs: number[] = [];
      for await (const rec of ready(reader, 0)) {
        expect(rec.lost).toBe(0);
        const dv = new DataView(rec.data.buffer, rec.data.byteOffset, rec.data.byteLength);
        const seq = dv.getUint32(4, true);
        expect(rec.data[8]).toBe(seq & 0xff); // filler survives the wrap
        expect(rec.data[20]).toBe(seq & 0xff);
        if (rec.data.buffer.byteLength < 4096) wrapped++;
        seqs.push(seq);
      }
      expect(seqs.sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => expected + i));
      expected += 30;
    }
    expect(expected).toBe(600);
    expect(wrapped).toBeGreaterThan(0);
  });

  it('a small ring loses records, and sent = read + lost', async () => {
    using s = perfSetup(64);
    using reader = PerfReader.open(s.events, { pagesPerCpu: 1, cpus: onlineCpus() });
    using _link = attachTracepoint(s.prog, 'syscalls', 'sys_enter_getppid');
    getppid(1000);
    let sent = 1000;
    let read = 0;
    let lost = 0;
    // Drain until every record is read or counted lost: the kernel writes its lost-records notice
    // with the next record that fits, so send one more whenever the ring looks drained. Records
    // are in the ring when getppid() returns, so each round finds all there are; the bound on
    // rounds (not on time) only stops a broken reader.
    for (let round = 0; read + lost < sent && round < 1000; round++) {
      const t = await tally(reader);
      read += t.samples;
      lost += t.lost;
      if (read + lost < sent) {
        getppid(1);
        sent++;
      }
    }
    expect(lost).toBeGreaterThan(0);
    expect(read + lost).toBe(sent);
    expect(reader.lostTotal).toBe(lost);
  });

  it('close ends a pending for-await; an abort rejects it', async () => {
    using s = perfSetup(8);
    const reader = PerfReader.open(s.events);
    const got: unknown[] = [];
    const loop = (async () => {
      for await (const r of reader) got.push(r);
      return 'ended';
    })();
    setTimeout(() => reader.close(), 30);
    expect(await loop).toBe('ended');
    expect(got).toEqual([]);
    const ac = new AbortController();
    using r2 = PerfReader.open(s.events, { signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    await expect(
      (async () => {
        for await (const _ of r2) {
        }
      })(),
    ).rejects.toThrow(/abort/i);
  });

  it('pause drops output, resume brings it back', async () => {
    using s = perfSetup(8);
    using reader = PerfReader.open(s.events);
    using _link = attachTracepoint(s.prog, 'syscalls', 'sys_enter_getppid');
    reader.pause();
    getppid(5);
    reader.resume();
    getppid(3);
    const { samples, lost } = await tally(reader);
    expect(samples).toBe(3);
    expect(lost).toBe(5);
  });

  it('overwritable rings keep the newest records for snapshot()', () => {
    using s = perfSetup(32);
    using reader = PerfReader.open(s.events, { pagesPerCpu: 1, overwritable: true, cpus: [0] });
    spawnSync('taskset', ['-p', '-c', '0', String(process.pid)]);
    {
      using _link = attachTracepoint(s.prog, 'syscalls', 'sys_enter_getppid');
      getppid(500);
    }
    spawnSync('taskset', ['-p', '-c', onlineCpus().join(','), String(process.pid)]);
    const snap = reader.snapshot();
    expect(snap.length).toBeGreaterThan(10);
    expect(snap.length).toBeLessThan(500);
    const seqs = snap.map((r) => new DataView(r.data.buffer, r.data.byteOffset).getUint32(4, true));
    expect(seqs[0]).toBe(499); // newest first
    expect(seqs.every((v, i) => i === 0 || v === seqs[i - 1]! - 1)).toBe(true);
    expect(() => PerfReader.open(s.seq)).toThrow(/perf_event_array/);
  });
});

describe('RingBufReader', () => {
  it('reads several ring buffers in order, with odd sizes and wrap-around', async () => {
    using a = perfSetup(13, 'ringbuf', 4096);
    using b = perfSetup(200, 'ringbuf', 8192);
    using reader = RingBufReader.open([a.events, b.events]);
    {
      using _l1 = attachTracepoint(a.prog, 'syscalls', 'sys_enter_getppid');
      using _l2 = attachTracepoint(b.prog, 'syscalls', 'sys_enter_getppid');
      const per = [[], []] as number[][];
      for (let batch = 0; batch < 10; batch++) {
        getppid(30);
        for await (const rec of ready(reader, 0)) {
          expect(rec.data.length).toBe(rec.ring === 0 ? 13 : 200);
          const dv = new DataView(rec.data.buffer, rec.data.byteOffset, rec.data.byteLength);
          per[rec.ring]!.push(dv.getUint32(4, true));
          expect(rec.data.at(-1)).toBe(dv.getUint32(4, true) & 0xff);
        }
      }
      expect(per[0]).toEqual([...Array(300).keys()]);
      expect(per[1]).toEqual([...Array(300).keys()]);
    }
    expect(() => RingBufReader.open(a.seq)).toThrow(/ringbuf/);
  });
});

describe('uprobes and software events', () => {
  it('a uprobe and a uretprobe on a function in a test binary fire once per call', () => {
    using hits = BpfMap.create({ type: 'array', key: u32, value: u32, maxEntries: 1 });
    const count = addToSlot0(new Builder(), 'hits', 1, 'w').label('out').mov64(R0, 0).exit();
    using prog = Program.load({ type: 'kprobe', license: 'GPL', instructions: count, maps: { hits } });
    expect(symbolOffset(uprobeTarget, 'bpfkit_uprobe_target')).toBeGreaterThan(0);
    {
      using _u = attachUprobe(prog, uprobeTarget, 'bpfkit_uprobe_target');
      using _r = attachUprobe(prog, uprobeTarget, 'bpfkit_uprobe_target', { retprobe: true });
      expect(spawnSync(uprobeTarget, ['7']).stdout.toString().trim()).toBe('49');
    }
    expect(hits.get(0)).toBe(14);
    spawnSync(uprobeTarget, ['3']);
    expect(hits.get(0)).toBe(14); // detached
    expect(() => attachUprobe(prog, uprobeTarget, 'no_such_function')).toThrow(
      /no function 'no_such_function'/,
    );
  });

  it('hardware events open where the machine has a PMU, and say so where it has none', () => {
    const hasPmu = existsSync('/sys/bus/event_source/devices/cpu');
    if (hasPmu) {
      using fd = openHardware(PerfHwId.INSTRUCTIONS, { pid: 0, cpu: -1 });
      expect(fd.closed).toBe(false);
    } else {
      expect(() => openHardware(PerfHwId.INSTRUCTIONS, { pid: 0, cpu: -1 })).toThrow(
        /^perf_event_open \(pid 0, cpu -1\) failed: ENOENT .*no hardware PMU/,
      );
    }
  });

  it('a perf_event program samples the CPU clock', async () => {
    using hits = BpfMap.create({ type: 'array', key: u32, value: u32, maxEntries: 1 });
    using prog = Program.load({
      type: 'perf_event',
      license: 'GPL',
      instructions: addToSlot0(new Builder(), 'hits', 1, 'w').label('out').mov64(R0, 0).exit(),
      maps: { hits },
    });
    {
      using _e = attachPerfEvent(prog, openSoftware('CPU_CLOCK', { frequency: 1000, pid: 0, cpu: -1 }));
      // Burn CPU in this thread until enough samples arrived. The bound is this process's CPU
      // time (about 20 ms of it gives 20 samples at 1 kHz), not the clock: on a busy machine the
      // wall time it takes to get that CPU time may be anything.
      const cpuMicros = () => process.cpuUsage().user + process.cpuUsage().system;
      const giveUp = cpuMicros() + 10_000_000;
      while ((hits.get(0) ?? 0) <= 20 && cpuMicros() < giveUp) for (let i = 0; i < 1e5; i++);
    }
    expect(hits.get(0)).toBeGreaterThan(20);
  });
});
