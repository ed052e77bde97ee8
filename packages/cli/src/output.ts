import { createRequire } from 'node:module';
import { toJson } from '@bpfkit/btf';
import type TableCtor from 'cli-table3';

let tableCtor: typeof TableCtor | undefined;
/** cli-table3, loaded when a table is first drawn: `--help`, `--json` and the rest start without it. */
export const newTable = (
  options?: ConstructorParameters<typeof TableCtor>[0],
): InstanceType<typeof TableCtor> => {
  tableCtor ??= createRequire(import.meta.url)('cli-table3') as typeof TableCtor;
  return new tableCtor(options);
};

export interface OutputOptions {
  json?: boolean;
}

/** Print rows as a table, or as JSON with --json. bigint values become numbers where safe, else strings. */
export function printRows(rows: Record<string, unknown>[], opts: OutputOptions, columns?: string[]): void {
  if (opts.json) {
    console.log(JSON.stringify(rows, jsonReplacer, 2));
    return;
  }
  if (rows.length === 0) {
    console.log('(none)');
    return;
  }
  const head = columns ?? Object.keys(rows[0]!);
  const table = newTable({ head, style: { head: [], border: [] } });
  for (const r of rows) table.push(head.map((h) => show(r[h])));
  console.log(table.toString());
}

/** Print one object as key/value lines, or as JSON. */
export function printObject(obj: Record<string, unknown>, opts: OutputOptions): void {
  if (opts.json) {
    console.log(JSON.stringify(obj, jsonReplacer, 2));
    return;
  }
  const width = Math.max(...Object.keys(obj).map((k) => k.length));
  for (const [k, v] of Object.entries(obj)) console.log(`${k.padEnd(width)}  ${show(v)}`);
}

/** JSON.stringify replacer: bigints and bytes as @bpfkit/btf's toJson shows them. */
export function jsonReplacer(_key: string, v: unknown): unknown {
  return typeof v === 'bigint' || v instanceof Uint8Array ? toJson(v) : v;
}

function show(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'object' && !(v instanceof Uint8Array)) return JSON.stringify(v, jsonReplacer);
  return String(jsonReplacer('', v));
}

export const hex = (b: Uint8Array) =>
  Array.from(b)
    .map((x) => x.toString(16).padStart(2, '0'))
    .join(' ');
