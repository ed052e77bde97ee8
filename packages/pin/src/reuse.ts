import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CollectionOptions, ObjectMap } from '@bpfkit/loader';
import { BpfMap, type MapSpec } from '@bpfkit/maps';
import { mapTypes } from '@bpfkit/sys';
import { isBpffs } from './bpffs.js';
import { openPinnedMap, PinError, pin } from './pin.js';

/**
 * A `resolveMap` for loadCollection with libbpf's pin-by-name rules: every map declared with
 * `__uint(pinning, LIBBPF_PIN_BY_NAME)` lives at `<root>/<name>`. A pinned map is reused when
 * its type, key size, value size, max entries and flags match, and refused with an error naming
 * the field that differs otherwise; an absent one is created and pinned.
 */
export function pinByName(root: string): NonNullable<CollectionOptions['resolveMap']> {
  if (!isBpffs(root)) throw new PinError('pin root is not on a bpffs mount (see ensureBpffs)', root);
  return (name: string, spec: MapSpec<unknown, unknown>, def: ObjectMap) => {
    if (def.pinning !== 'by_name') return undefined;
    const path = join(root, name);
    if (existsSync(path)) {
      const m = openPinnedMap(path);
      const want = {
        type: mapTypes.toValue(spec.type),
        keySize: def.keySize,
        valueSize: def.valueSize,
        maxEntries: spec.maxEntries, // as created: a perf event array without max_entries has one slot per CPU
        flags: def.flags,
      };
      const have = {
        type: m.type,
        keySize: m.keySize,
        valueSize: m.valueSize,
        maxEntries: m.maxEntries,
        flags: m.flags,
      };
      for (const field of ['type', 'keySize', 'valueSize', 'maxEntries', 'flags'] as const) {
        if (want[field] !== have[field]) {
          m.close();
          const show = (v: number) => (field === 'type' ? mapTypes.toName(v) : String(v));
          throw new PinError(
            `pinned map '${name}' has ${field} ${show(have[field])}, the object wants ${show(want[field])}`,
            path,
          );
        }
      }
      m.close();
      // Reopen with the object's codecs so values decode by its BTF.
      return openPinnedMap(path, { key: spec.key as never, value: spec.value as never });
    }
    const created = BpfMap.create(spec);
    try {
      pin(created, path);
    } catch (e) {
      created.close();
      throw e;
    }
    return created;
  };
}
