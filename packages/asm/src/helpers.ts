import { Helper } from '@bpfkit/sys';
import { AsmError } from './errors.js';

const byId = new Map<number, string>(Object.entries(Helper).map(([k, v]) => [v, k]));

/** A helper's id from its name (`'map_lookup_elem'` or `'bpf_map_lookup_elem'`) or id. */
export function helperId(helper: string | number, index = -1): number {
  if (typeof helper === 'number') {
    if (!byId.has(helper)) throw new AsmError(`unknown helper id ${helper}`, index);
    return helper;
  }
  const name = helper.startsWith('bpf_') ? helper.slice(4) : helper;
  const id = (Helper as Record<string, number>)[name];
  if (id === undefined || name === 'unspec') {
    const near = Object.keys(Helper)
      .filter((k) => k.includes(name) || name.includes(k))
      .slice(0, 5);
    throw new AsmError(
      `unknown helper '${helper}'${near.length ? `; did you mean ${near.map((n) => `bpf_${n}`).join(', ')}?` : ''}`,
      index,
    );
  }
  return id;
}

/** A helper's name (`bpf_map_lookup_elem`) from its id. */
export function helperName(id: number): string | undefined {
  const n = byId.get(id);
  return n === undefined ? undefined : `bpf_${n}`;
}
