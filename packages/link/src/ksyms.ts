// Kernel function names for the probe attach kinds: the text symbols of /proc/kallsyms (what a
// kprobe may name), tracefs's available_filter_functions (what ftrace, and so kprobe.multi, may
// attach to), glob patterns over them, and close names for a name that does not exist.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tracefsRoot } from './tracefs.js';

/** A kernel function that does not exist, with the closest names the kernel has. */
export class UnknownFunctionError extends TypeError {
  override name = 'UnknownFunctionError';
  constructor(
    readonly function_: string,
    readonly suggestions: readonly string[],
    where = '/proc/kallsyms',
  ) {
    super(
      `no kernel function '${function_}' in ${where}${suggestions.length ? `; did you mean ${suggestions.join(', ')}?` : ''}`,
    );
  }
}

/** The names of the kernel's text symbols (types t, T, w, W) in /proc/kallsyms, modules' too. */
export function kernelFunctions(path = '/proc/kallsyms'): Set<string> {
  const out = new Set<string>();
  for (const line of readFileSync(path, 'latin1').split('\n')) {
    // "<address> <type> <name>[\t[module]]"
    const s1 = line.indexOf(' ');
    if (s1 < 0) continue;
    const type = line[s1 + 1];
    if (type !== 't' && type !== 'T' && type !== 'w' && type !== 'W') continue;
    const tab = line.indexOf('\t', s1 + 3);
    out.add(tab < 0 ? line.slice(s1 + 3) : line.slice(s1 + 3, tab));
  }
  return out;
}

/**
 * The functions ftrace can attach to (tracefs `available_filter_functions`), without module
 * tags, duplicates, or the `__ftrace_invalid_address__` placeholders of dropped functions.
 */
export function availableFilterFunctions(file = join(tracefsRoot(), 'available_filter_functions')): string[] {
  const out = new Set<string>();
  for (const line of readFileSync(file, 'latin1').split('\n')) {
    const sp = line.indexOf(' ');
    const name = sp < 0 ? line : line.slice(0, sp);
    if (name && !name.startsWith('__ftrace_invalid_address__')) out.add(name);
  }
  return [...out];
}

/** A glob (`*` any run, `?` one character) as a whole-name RegExp. */
export function globPattern(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** Edit distance of `a` and `b`, or `limit + 1` as soon as it must exceed `limit`. */
function distance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      cur.push(v);
      if (v < best) best = v;
    }
    if (best > limit) return limit + 1;
    prev = cur;
  }
  return prev[b.length]!;
}

/** Up to `count` names from `names` closest to `name` (edit distance, then names containing it). */
export function closeNames(name: string, names: Iterable<string>, count = 5): string[] {
  const limit = Math.max(2, Math.floor(name.length / 4));
  const scored: [number, string][] = [];
  for (const n of names) {
    const d =
      n.includes(name) || name.includes(n) ? Math.abs(n.length - name.length) : distance(name, n, limit);
    if (d <= limit) scored.push([d, n]);
  }
  scored.sort((x, y) => x[0] - y[0] || x[1].localeCompare(y[1]));
  return scored.slice(0, count).map(([, n]) => n);
}

/** An {@link UnknownFunctionError} for `name` when the kernel has no such function, else undefined. */
export function unknownFunction(
  name: string,
  names: Set<string> = kernelFunctions(),
): UnknownFunctionError | undefined {
  return names.has(name) ? undefined : new UnknownFunctionError(name, closeNames(name, names));
}
