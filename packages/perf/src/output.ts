// The BPF output perf events behind a PERF_EVENT_ARRAY: one per CPU, read by PerfReader.
import {
  type Fd,
  intOption,
  type PerfEventAttrArgs,
  PerfSampleFormat,
  PerfSwId,
  PerfType,
  perfEventOpen,
} from '@bpfkit/sys';

/** The BPF output event of one CPU: what a PERF_EVENT_ARRAY slot holds. */
export function openBpfOutput(cpu: number, opts: { watermark?: number; overwritable?: boolean } = {}): Fd {
  const wake: PerfEventAttrArgs = opts.watermark
    ? { watermark: 1, wakeupWatermark: intOption(opts.watermark, 'watermark (bytes)', 1, 0xffffffff) }
    : { wakeupEvents: 1 };
  return perfEventOpen(
    {
      type: PerfType.SOFTWARE,
      config: BigInt(PerfSwId.BPF_OUTPUT),
      sampleType: BigInt(PerfSampleFormat.RAW),
      samplePeriod: 1n,
      ...wake,
      writeBackward: opts.overwritable ? 1 : 0,
    },
    -1,
    cpu,
  );
}
