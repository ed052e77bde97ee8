// `bpfkit execsnoop`: every exec on the system, streamed through a ring buffer by a clang-built,
// CO-RE program shipped with the CLI (bpf/execsnoop.bpf.c).
import { fileURLToPath } from 'node:url';
import { attachTracepoint } from '@bpfkit/link';
import { loadCollection } from '@bpfkit/loader';
import { bytes, cstring, struct, u32, type ValueOf } from '@bpfkit/maps';
import { RingBufReader } from '@bpfkit/perf';

export const EXECSNOOP_OBJECT = fileURLToPath(new URL('../../bpf/execsnoop.bpf.o', import.meta.url));

export interface ExecEvent {
  pid: number;
  ppid: number;
  uid: number;
  comm: string;
  argv: string[];
}

const decoder = new TextDecoder();

/** execsnoop.bpf.c's `struct exec_event`, as a codec: what the ring buffer reader decodes records with. */
export const execEventCodec = struct(
  { pid: u32, ppid: u32, uid: u32, args_len: u32, comm: cstring(16), args: bytes(256) },
  'exec_event',
);

/** An exec_event record as the codec decodes it, made readable: argv split at the NULs. */
export function execEventOf(raw: ValueOf<typeof execEventCodec>): ExecEvent {
  const args = decoder.decode(raw.args.subarray(0, Math.min(raw.args_len, raw.args.length)));
  return {
    pid: raw.pid,
    ppid: raw.ppid,
    uid: raw.uid,
    comm: raw.comm,
    argv: args.split('\0').filter((a, i, all) => a || i < all.length - 1),
  };
}

/** Decode one ring buffer record of execsnoop.bpf.c's `struct exec_event`. */
export function decodeExecEvent(data: Uint8Array): ExecEvent {
  return execEventOf(execEventCodec.decode(new DataView(data.buffer, data.byteOffset, data.byteLength), 0));
}

export interface ExecsnoopOptions {
  duration?: number;
  signal?: AbortSignal;
  /** Called for every exec (default: print a line). */
  onEvent?: (e: ExecEvent) => void;
}

/** Run execsnoop until the duration ends or the signal aborts; resolves with how many execs were seen. */
export async function runExecsnoop(opts: ExecsnoopOptions = {}): Promise<number> {
  const ac = new AbortController();
  const stop = () => ac.abort();
  opts.signal?.addEventListener('abort', stop, { once: true });
  const timer = opts.duration ? setTimeout(stop, opts.duration * 1000) : undefined;
  const print =
    opts.onEvent ??
    ((e: ExecEvent) =>
      console.log(
        `${String(e.pid).padStart(7)} ${String(e.ppid).padStart(7)} ${String(e.uid).padStart(5)}  ${e.comm.padEnd(16)} ${e.argv.join(' ')}`,
      ));
  using coll = loadCollection(EXECSNOOP_OBJECT);
  using _link = attachTracepoint(coll.program('handle_exec'), 'sched', 'sched_process_exec');
  using reader = RingBufReader.open(coll.map('events'), { signal: ac.signal, codec: execEventCodec });
  // the header says it is tracing: printed once the program is attached and the ring is open
  if (!opts.onEvent)
    console.log(`${'PID'.padStart(7)} ${'PPID'.padStart(7)} ${'UID'.padStart(5)}  ${'COMM'.padEnd(16)} ARGS`);
  let n = 0;
  try {
    for await (const rec of reader) {
      print(execEventOf(rec.value));
      n++;
    }
  } catch (e) {
    if (!ac.signal.aborted) throw e;
  } finally {
    if (timer) clearTimeout(timer);
    opts.signal?.removeEventListener('abort', stop);
  }
  return n;
}
