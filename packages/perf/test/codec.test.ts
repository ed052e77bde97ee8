// Typed records: readers decode each record with a codec, and take a per-read timeout of their
// own that `for await` honours. Timeouts here are 0 or never reached: no test waits for time.

import { attachTracepoint } from '@bpfkit/link';
import { struct, u32, u64 } from '@bpfkit/maps';
import { PerfReader, RingBufReader } from '@bpfkit/perf';
import { describe, expect, it } from 'vitest';
import { emitterKit } from '../../../tools/testing/programs.js';

const getppid = (n: number) => {
  let x = 0;
  for (let i = 0; i < n; i++) x += process.ppid;
  return x;
};
/** What the emitter writes: our pid, then a sequence number. */
const sample = struct({ pid: u32, seq: u32 }, 'sample');

describe('typed records', () => {
  for (const kind of ['ringbuf', 'perf'] as const) {
    it(`${kind}: records decode through the codec, copied or not; for await ends at the reader's timeout`, async () => {
      using s = emitterKit(kind, process.pid, 16);
      for (const copy of [false, true]) {
        const reader =
          kind === 'ringbuf'
            ? RingBufReader.open(s.events, { codec: sample, copy, timeout: 0 })
            : PerfReader.open(s.events, { codec: sample, copy, timeout: 0, pagesPerCpu: 1 });
        try {
          {
            using _link = attachTracepoint(s.prog, 'syscalls', 'sys_enter_getppid');
            getppid(5);
          }
          const seen: { pid: number; seq: number }[] = [];
          // every record is ready before the loop starts; with timeout 0 the loop ends at the first empty read
          for await (const rec of reader) {
            if (rec.value === undefined) throw new Error('a lost-records notice');
            seen.push(rec.value);
            expect(rec.data.length).toBeGreaterThanOrEqual(16);
          }
          expect(seen.map((v) => v.pid)).toEqual(Array(5).fill(process.pid));
          const base = copy ? 5 : 0;
          expect(seen.map((v) => v.seq).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4].map((i) => i + base));
          expect(await reader.read()).toBeUndefined(); // the reader's timeout: no wait
        } finally {
          reader.close();
        }
      }
    });

    it(`${kind}: a record shorter than the codec is a RangeError naming both sizes; bad options are typed errors`, async () => {
      using s = emitterKit(kind, process.pid, 16);
      const big = struct({ a: u64, b: u64, c: u64 }, 'big');
      const reader =
        kind === 'ringbuf'
          ? RingBufReader.open(s.events, { codec: big, timeout: 0 })
          : PerfReader.open(s.events, { codec: big, timeout: 0, pagesPerCpu: 1 });
      try {
        {
          using _link = attachTracepoint(s.prog, 'syscalls', 'sys_enter_getppid');
          getppid(1);
        }
        await expect(reader.read()).rejects.toThrow(
          kind === 'ringbuf'
            ? 'a 16-byte record is shorter than its codec big (24 bytes)'
            : 'a 20-byte record is shorter than its codec big (24 bytes)',
        );
        const open = (o: object) =>
          kind === 'ringbuf' ? RingBufReader.open(s.events, o).close() : PerfReader.open(s.events, o).close();
        reader.close();
        expect(() => open({ codec: 4 })).toThrow(TypeError);
        expect(() => open({ timeout: -1 })).toThrow(RangeError);
      } finally {
        reader.close();
      }
    });
  }

  it('without a codec, value is the record bytes; the generic type follows the codec', async () => {
    using s = emitterKit('ringbuf', process.pid, 16);
    {
      using raw = RingBufReader.open(s.events, { timeout: 0 });
      {
        using _link = attachTracepoint(s.prog, 'syscalls', 'sys_enter_getppid');
        getppid(1);
      }
      const rec = await raw.read();
      const bytes: Uint8Array | undefined = rec?.value;
      expect(bytes).toBe(rec?.data);
    }
    const typed: RingBufReader<number> = RingBufReader.open(s.events, { codec: u32 });
    typed.close();
    // @ts-expect-error a u32 codec yields numbers, not strings
    const wrong: RingBufReader<string> = RingBufReader.open(s.events, { codec: u32 });
    wrong.close();
  });
});
