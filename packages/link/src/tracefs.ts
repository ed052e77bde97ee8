import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mount, mounts, statfsType, TRACEFS_MAGIC } from '@bpfkit/sys';

const DEFAULT = '/sys/kernel/tracing';
let root: string | undefined;

/** Where tracefs is mounted (from /proc/self/mountinfo); mounts it at /sys/kernel/tracing when absent. */
export function tracefsRoot(): string {
  root ??= findTracefs();
  return root;
}

function findTracefs(): string {
  for (const { point, fstype } of mounts()) {
    if (fstype === 'tracefs') return point;
    if (fstype === 'debugfs' && existsSync(join(point, 'tracing', 'events'))) return join(point, 'tracing');
  }
  if (!existsSync(DEFAULT)) mkdirSync(DEFAULT, { recursive: true });
  try {
    if (statfsType(DEFAULT) !== TRACEFS_MAGIC) mount('tracefs', DEFAULT, 'tracefs');
  } catch (e) {
    throw new Error(`tracefs is not mounted and mounting it at ${DEFAULT} failed: ${(e as Error).message}`, {
      cause: e,
    });
  }
  return DEFAULT;
}

/** The id of tracepoint `category:name` (tracefs `events/<category>/<name>/id`). */
export function tracepointId(category: string, name: string): number {
  if (!/^[\w.-]+$/.test(category) || !/^[\w.-]+$/.test(name))
    throw new TypeError(`bad tracepoint name '${category}/${name}' (letters, digits, _ . - only)`);
  const file = join(tracefsRoot(), 'events', category, name, 'id');
  try {
    return Number.parseInt(readFileSync(file, 'utf8'), 10);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw new TypeError(`no tracepoint '${category}/${name}' in this kernel (looked for ${file})`, {
        cause: e,
      });
    // the tracepoint may well exist: tracefs (or this file) is not readable by this process
    throw new Error(
      `cannot read tracepoint '${category}/${name}' from tracefs: ${file}: ${code ?? (e as Error).message}` +
        (code === 'EACCES' || code === 'EPERM'
          ? ' (tracefs is readable by root only unless its mode was changed)'
          : ''),
      { cause: e },
    );
  }
}

/** Dynamic events this library creates in tracefs are named `bpfkit_<pid>_<n>_...`. */
const OWN_EVENT = /^[a-z]\d*:([\w.-]+)\/(bpfkit_(\d+)_[\w.-]*)/;
let eventSeq = 0;
const sweptFiles = new Set<string>();

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** A dynamic event of this process (a `kprobe_events` or `uprobe_events` line); removed by `remove()`. */
export class DynamicEvent {
  #removed = false;
  constructor(
    /** The tracefs file it was written to (`kprobe_events`). */
    readonly file: string,
    readonly group: string,
    readonly event: string,
  ) {}
  /** The tracepoint id of the event, for perf_event_open. */
  get id(): number {
    return tracepointId(this.group, this.event);
  }
  /** Remove the event (after the perf events on it are closed). Idempotent. */
  remove(): void {
    if (this.#removed) return;
    this.#removed = true;
    removeDynamicEvent(this.file, this.group, this.event);
  }
}

function removeDynamicEvent(file: string, group: string, event: string): void {
  try {
    appendFileSync(join(tracefsRoot(), file), `-:${group}/${event}\n`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/**
 * Remove events a process of ours left in `file` (`kprobe_events`) when it died without closing
 * them: those named `bpfkit_<pid>_…` whose pid is gone. Events still in use (EBUSY) stay.
 * Returns the names removed.
 */
export function removeLeftoverEvents(file: string): string[] {
  const removed: string[] = [];
  let text: string;
  try {
    text = readFileSync(join(tracefsRoot(), file), 'utf8');
  } catch {
    return removed;
  }
  for (const line of text.split('\n')) {
    const m = OWN_EVENT.exec(line);
    if (!m || !processGone(Number(m[3]))) continue;
    try {
      removeDynamicEvent(file, m[1]!, m[2]!);
      removed.push(`${m[1]}/${m[2]}`);
    } catch {
      // busy (a pinned link of the dead process still holds it) or already gone
    }
  }
  return removed;
}

/**
 * Create a dynamic event: `kind` is the definition's prefix (`p`, `r`, `r5`), `spec` what follows
 * the name (`do_unlinkat+0x10`). Named `bpfkit_<pid>_<n>_<hint>`; leftovers of dead processes in
 * the same file are removed first (once per process and file).
 */
export function addDynamicEvent(
  file: string,
  group: string,
  kind: string,
  hint: string,
  spec: string,
): DynamicEvent {
  if (!sweptFiles.has(file)) {
    sweptFiles.add(file);
    removeLeftoverEvents(file);
  }
  const event = `bpfkit_${process.pid}_${eventSeq++}_${hint.replace(/[^\w]/g, '_')}`.slice(0, 63);
  appendFileSync(join(tracefsRoot(), file), `${kind}:${group}/${event} ${spec}\n`);
  return new DynamicEvent(file, group, event);
}
