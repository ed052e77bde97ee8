// Map-type probes against the running kernel.
import { haveMapType, requireMapType } from '@bpfkit/maps';
import { MapType } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';

describe('map type probes', () => {
  it('answers for map types this kernel has, and by name', () => {
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
      expect(haveMapType(t), t).toBe(true);
    expect(haveMapType(MapType.PERCPU_ARRAY)).toBe(true);
    expect(() => requireMapType('ringbuf')).not.toThrow();
    expect(() => haveMapType('nonsense' as never)).toThrow(TypeError);
  });
});
