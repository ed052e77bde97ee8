/**
 * @bpfkit/perf — the two ring readers that stream events from eBPF programs (PERF_EVENT_ARRAY
 * and BPF ring buffers) as async iterables. The perf events programs attach to (tracepoints,
 * uprobes, software events) are `@bpfkit/link`'s.
 *
 * ```ts
 * using reader = RingBufReader.open(coll.map('events'));
 * for await (const { data } of reader) console.log(data.length);
 * ```
 * @packageDocumentation
 */
export { MapInUseError } from './claims.js';
export { openBpfOutput } from './output.js';
export { PerfReader, type PerfReaderOptions, type PerfRecord } from './perf-reader.js';
export { EpollWaiter, type ReadOptions, RingReader, type Waiter } from './reader.js';
export { RingBufReader, type RingBufReaderOptions, type RingBufRecord } from './ringbuf-reader.js';
