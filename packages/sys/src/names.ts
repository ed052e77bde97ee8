// Kind names: a map/program/attach/link type is given as the generated enum value or as the
// kernel's name without its prefix, in lower case ('lpm_trie', 'socket_filter').
import { AttachType, LinkType, MapType, ProgType } from './abi.generated.js';

type LowerKeys<T> = Lowercase<keyof T & string>;
export type MapTypeName = LowerKeys<typeof MapType>;
export type ProgTypeName = LowerKeys<typeof ProgType>;
export type AttachTypeName = LowerKeys<typeof AttachType>;
export type LinkTypeName = LowerKeys<typeof LinkType>;

function resolver<E extends Record<string, number>>(table: E, what: string) {
  // Built on first use: importing binds the resolver only.
  let byName: Map<string, number> | undefined;
  let byValue: Map<number, string> | undefined;
  const maps = (): [Map<string, number>, Map<number, string>] => {
    if (!byName || !byValue) {
      byName = new Map(Object.entries(table).map(([k, v]) => [k.toLowerCase(), v]));
      byValue = new Map<number, string>();
      for (const [k, v] of Object.entries(table)) if (!byValue.has(v)) byValue.set(v, k.toLowerCase());
    }
    return [byName, byValue];
  };
  return {
    toValue(kind: E[keyof E] | LowerKeys<E> | number): E[keyof E] {
      const [byName, byValue] = maps();
      if (typeof kind === 'number') {
        if (!byValue.has(kind))
          throw new TypeError(`unknown ${what} ${kind} (this kernel's ABI has ${byValue.size})`);
        return kind as E[keyof E];
      }
      const v = byName.get(String(kind).toLowerCase());
      if (v === undefined)
        throw new TypeError(`unknown ${what} '${kind}'; expected one of: ${[...byName.keys()].join(', ')}`);
      return v as E[keyof E];
    },
    toName(value: number): string {
      return maps()[1].get(value) ?? `${what} ${value}`;
    },
  };
}

export const mapTypes = resolver(MapType, 'map type');
export const progTypes = resolver(ProgType, 'program type');
export const attachTypes = resolver(AttachType, 'attach type');
export const linkTypes = resolver(LinkType, 'link type');
