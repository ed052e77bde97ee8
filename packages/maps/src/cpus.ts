import { readFileSync } from 'node:fs';

/** Parse a kernel CPU list such as `0-3,5,7-8`. */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(',')) {
    if (!part) continue;
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || Number.isNaN(a) || (b !== undefined && Number.isNaN(b)))
      throw new SyntaxError(`bad CPU list '${text.trim()}'`);
    for (let c = a; c <= (b ?? a); c++) out.push(c);
  }
  return out;
}

let possible: number | undefined;
/** How many values a per-CPU map holds per key: the number of possible CPUs. */
export function possibleCpus(): number {
  possible ??= Math.max(...parseCpuList(readFileSync('/sys/devices/system/cpu/possible', 'utf8'))) + 1;
  return possible;
}

/** The online CPUs, in order. */
export function onlineCpus(): number[] {
  return parseCpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8'));
}
