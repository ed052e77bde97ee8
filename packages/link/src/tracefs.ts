import { existsSync, mkdirSync, readFileSync } from 'node:fs';
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
