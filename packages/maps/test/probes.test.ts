// Map-type probes against the running kernel.
import { haveMapType, mapTypeSince, requireMapType } from '@bpfkit/maps';
import { kernelOlderThan, MapType } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';

describe('map type probes', () => {
  it('answers for map types this kernel has, and by name', () => {
    // present from the release that added it (bloom filters: 5.16), absent before
    for (const t of [
      'hash',
      'array',
      'ringbuf',
      'lpm_trie',
      'queue',
      'bloom_filter',
      'sk_storage',
      'hash_of_maps',
      'stack_trace',
    ] as const)
      expect(haveMapType(t), t).toBe(!kernelOlderThan(mapTypeSince(t) ?? '0.0'));
    expect(haveMapType(MapType.PERCPU_ARRAY)).toBe(true);
    expect(() => requireMapType('ringbuf')).not.toThrow();
    expect(() => haveMapType('nonsense' as never)).toThrow(TypeError);
  });
});
