// Every attach call of the exporter, in one file.
import { type Attachment, attachRawTracepoint, attachTracepoint, attachTracing } from '@bpfkit/link';
import type { Program } from '@bpfkit/loader';
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
