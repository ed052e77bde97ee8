// Every attach call of the exporter, in one file: the attach functions are moving into one
// package (@bpfkit/link), and this is the one import to switch then.
import { type Attachment, attachRawTracepoint, attachTracing, type Program } from '@bpfkit/loader';
import { attachTracepoint } from '@bpfkit/perf';
import type { AttachSpec } from './spec.js';

/** Attach `program` as `spec` says; disposing the result detaches it and closes its fds. */
export function attach(program: Program, spec: AttachSpec): Attachment {
  if (spec.tracepoint !== undefined) {
    const [category, name] = spec.tracepoint.split('/') as [string, string];
    return attachTracepoint(program, category, name);
  }
  if (spec.rawTracepoint !== undefined) return attachRawTracepoint(program, spec.rawTracepoint);
  return attachTracing(program);
}
