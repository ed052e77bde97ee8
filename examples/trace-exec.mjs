// Trace every exec for a few seconds, or until Ctrl-C: load the clang-built, CO-RE execsnoop
// object that ships with the CLI, attach it to sched/sched_process_exec, and read its ring buffer
// with for-await until an AbortSignal fires. Usage: node trace-exec.mjs [seconds]
import { spawn } from 'node:child_process';
import { attachTracepoint } from '@bpfkit/link';
import { loadCollection } from '@bpfkit/loader';
import { RingBufReader } from '@bpfkit/perf';
import { decodeExecEvent, EXECSNOOP_OBJECT } from 'bpfkit';

const seconds = Number(process.argv[2] ?? 3);
const stop = new AbortController();
const timer = setTimeout(() => stop.abort(), seconds * 1000);
process.once('SIGINT', () => stop.abort());
const coll = loadCollection(EXECSNOOP_OBJECT);
const link = attachTracepoint(coll.program('handle_exec'), 'sched', 'sched_process_exec');
const reader = RingBufReader.open(coll.map('events'), { signal: stop.signal });
spawn('/bin/true', { stdio: 'ignore' }); // something to see: attached already, so it is traced
try {
  for await (const { data } of reader) {
    const e = decodeExecEvent(data);
    console.log(`${e.pid} (parent ${e.ppid}) ${e.comm}: ${e.argv.join(' ')}`);
  }
} catch (e) {
  if (!stop.signal.aborted) throw e;
} finally {
  clearTimeout(timer);
  reader.close();
  link.close();
  coll.close();
}
