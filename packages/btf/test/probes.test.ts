// BTF feature probes against the running kernel: each loads a tiny blob once; a current kernel
// (this host: 6.x) accepts every kind libbpf sanitises.
import { ALL_BTF_FEATURES, type BtfFeature, haveBtfFeature, kernelBtfFeatures } from '@bpfkit/btf';
import { describe, expect, it } from 'vitest';

describe('BTF feature probes', () => {
  it('this kernel has every BTF kind and feature', () => {
    expect(kernelBtfFeatures()).toEqual(ALL_BTF_FEATURES);
  });

  it('each probe answers on its own, the same each time (cached)', () => {
    for (const f of Object.keys(ALL_BTF_FEATURES) as BtfFeature[]) {
      expect(haveBtfFeature(f)).toBe(true);
      expect(haveBtfFeature(f)).toBe(true);
    }
  });
});
