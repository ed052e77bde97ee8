// Trace every exec for a few seconds: load the clang-built, CO-RE execsnoop object that ships
// with the CLI, attach it to sched/sched_process_exec, and read its ring buffer with for-await
// until an AbortSignal fires. Usage: node trace-exec.mjs [seconds]
import { spawn } from 'node:child_process';
import { loadCollection } from '@bpfkit/loader';
import { attachTracepoint, RingBufReader } from '@bpfkit/perf';
import { decodeExecEvent, EXECSNOOP_OBJECT } from 'bpfkit';

const seconds = Number(process.argv[2] ?? 3);
const coll = loadCollection(EXECSNOOP_OBJECT);
const link = attachTracepoint(coll.program('handle_exec'), 'sched', 'sched_process_exec');
const reader = RingBufReader.open(coll.map('events'), { signal: AbortSignal.timeout(seconds * 1000) });
setTimeout(() => spawn('/bin/true', { stdio: 'ignore' }), 200); // something to see
try {
  for await (const { data } of reader) {
    const e = decodeExecEvent(data);
    console.log(`${e.pid} (parent ${e.ppid}) ${e.comm}: ${e.argv.join(' ')}`);
  }
} catch (e) {
  if (e.name !== 'TimeoutError') throw e;
} finally {
  reader.close();
  link.close();
  coll.close();
}
