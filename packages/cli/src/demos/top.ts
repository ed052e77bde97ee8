// `bpfkit top`: a live table of syscalls per process — a tracepoint program counting into a
// per-CPU hash map, read every interval, with rates.
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { Builder, R0, R1, R2, R3, R4, R10, reg } from '@bpfkit/asm';
import { attachTracepoint } from '@bpfkit/link';
import { Program } from '@bpfkit/loader';
import { BpfMap, u32, u64 } from '@bpfkit/maps';
import { newTable } from '../output.js';

export interface TopOptions {
  /** Seconds to run (default: until Ctrl-C / the signal). */
  duration?: number;
  /** Refresh interval in ms (default 1000). */
  interval?: number;
  /** Rows to show (default 15). */
  rows?: number;
  /** Only these processes (thread-group ids), like `top -p` (default: every process). */
  pids?: readonly number[];
  signal?: AbortSignal;
  /** Where frames go (default stdout). */
  write?: (frame: string) => void;
  /** Clear the screen between frames (default: when stdout is a terminal). */
  clear?: boolean;
}

export interface TopRow {
  pid: number;
  comm: string;
  total: bigint;
  perSecond: number;
}

/** The counting program: per-CPU count of syscalls by process (tgid). */
export function topProgram(): Builder {
  return new Builder()
    .call('get_current_pid_tgid')
    .rsh64(R0, 32)
    .stx('w', R10, -4, R0)
    .ldMap(R1, 'counts')
    .mov64(R2, reg(R10))
    .add64(R2, -4)
    .call('map_lookup_elem')
    .jeq(R0, 0, 'first')
    .ldx('dw', R1, R0, 0)
    .add64(R1, 1)
    .stx('dw', R0, 0, R1)
    .ja('out')
    .label('first')
    .st('dw', R10, -16, 1)
    .ldMap(R1, 'counts')
    .mov64(R2, reg(R10))
    .add64(R2, -4)
    .mov64(R3, reg(R10))
    .add64(R3, -16)
    .mov64(R4, 1) // BPF_NOEXIST
    .call('map_update_elem')
    .label('out')
    .mov64(R0, 0)
    .exit();
}

const comm = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '(exited)';
  }
};

/** Run top; resolves with the last frame's rows when the duration ends or the signal aborts. */
export async function runTop(opts: TopOptions = {}): Promise<TopRow[]> {
  const interval = opts.interval ?? 1000;
  const write = opts.write ?? ((s: string) => process.stdout.write(s));
  const clear = opts.clear ?? process.stdout.isTTY;
  using counts = BpfMap.create({
    type: 'percpu_hash',
    key: u32,
    value: u64,
    maxEntries: 10240,
    name: 'top_counts',
  });
  using prog = Program.load({
    type: 'tracepoint',
    license: 'GPL',
    name: 'bpfkit_top',
    instructions: topProgram(),
    maps: { counts },
  });
  using _link = attachTracepoint(prog, 'raw_syscalls', 'sys_enter');
  const end = opts.duration ? Date.now() + opts.duration * 1000 : Number.POSITIVE_INFINITY;
  const only = opts.pids ? new Set(opts.pids) : undefined;
  const before = new Map<number, bigint>();
  let last: TopRow[] = [];
  let t0 = Date.now();
  while (!opts.signal?.aborted && Date.now() < end) {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        opts.signal?.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, Math.min(interval, Math.max(0, end - Date.now())));
      opts.signal?.addEventListener('abort', done, { once: true });
    });
    const now = Date.now();
    const secs = Math.max((now - t0) / 1000, 0.001);
    t0 = now;
    const rows: TopRow[] = [];
    for (const [pid, perCpu] of counts.getBatch()) {
      if (only && !only.has(pid)) continue;
      const total = perCpu.reduce((a, b) => a + b, 0n);
      rows.push({ pid, comm: comm(pid), total, perSecond: Number(total - (before.get(pid) ?? 0n)) / secs });
      before.set(pid, total);
    }
    rows.sort((a, b) => b.perSecond - a.perSecond || Number(b.total - a.total));
    last = rows.slice(0, opts.rows ?? 15);
    const table = newTable({
      head: ['PID', 'COMM', 'SYSCALLS/s', 'TOTAL'],
      colAligns: ['right', 'left', 'right', 'right'],
      style: { head: [], border: [] },
    });
    for (const r of last) table.push([r.pid, r.comm, r.perSecond.toFixed(0), r.total.toString()]);
    const title = `bpfkit top — syscalls per process on Linux ${release()} (${rows.length} processes; Ctrl-C quits)`;
    write(`${clear ? '\x1b[H\x1b[2J' : '\n'}${title}\n${table.toString()}\n`);
  }
  return last;
}
