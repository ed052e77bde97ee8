// Perf event options that do not fit are refused before perf_event_open, never wrapped.
import { openSoftware, openUprobe } from '@bpfkit/link';
import { openBpfOutput } from '@bpfkit/perf';
import { describe, expect, it } from 'vitest';

const uprobeTarget = new URL('./fixtures/uprobe_target', import.meta.url).pathname;

describe('perf event options', () => {
  it('a negative uprobe offset is refused, not sent as 2**64 − 1', () => {
    expect(() => openUprobe(uprobeTarget, undefined, { offset: -1 })).toThrow(
      /uprobe offset must be a whole number in 0\.\./,
    );
    expect(() => openUprobe(uprobeTarget, 'bpfkit_uprobe_target', { offset: 0.5 })).toThrow(RangeError);
  });

  it('a negative watermark, a bad cpu or pid is refused', () => {
    expect(() => openBpfOutput(0, { watermark: -4096 })).toThrow(
      /watermark \(bytes\) must be a whole number/,
    );
    expect(() => openBpfOutput(-2)).toThrow(/cpu must be a whole number in -1\.\./);
    expect(() => openSoftware('CPU_CLOCK', { pid: 2 ** 31, cpu: -1 })).toThrow(RangeError);
    using ok = openBpfOutput(0, { watermark: 4096 });
    expect(ok.closed).toBe(false);
  });
});
