/**
 * @bpfkit/perf — perf events for eBPF: tracepoint, uprobe, software and hardware events, the
 * attach calls that bind programs to them, and the two ring readers that stream events from the
 * kernel (PERF_EVENT_ARRAY and BPF ring buffers) as async iterables.
 *
 * ```ts
 * using reader = RingBufReader.open(coll.map('events'));
 * for await (const { data } of reader) console.log(data.length);
 * ```
 * @packageDocumentation
 */
export {
  attachPerfEvent,
  attachTracepoint,
  attachUprobe,
  type PerfAttachMode,
  PerfEventLink,
} from './attach.js';
export { MapInUseError } from './claims.js';
export {
  type EventTarget,
  openBpfOutput,
  openHardware,
  openSoftware,
  openTracepoint,
  openUprobe,
  type SamplingOptions,
  symbolOffset,
  type UprobeOptions,
} from './events.js';
export { PerfReader, type PerfReaderOptions, type PerfRecord } from './perf-reader.js';
export { EpollWaiter, type ReadOptions, RingReader, type Waiter } from './reader.js';
export { RingBufReader, type RingBufReaderOptions, type RingBufRecord } from './ringbuf-reader.js';
export { tracefsRoot, tracepointId } from './tracefs.js';
