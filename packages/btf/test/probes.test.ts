// BTF feature probes against the running kernel: each loads a tiny blob once. The answer is
// what the kernel's release says it must be: every kind libbpf sanitises from the release that
// added it (all of them on 6.x; no FLOAT, DECL_TAG, TYPE_TAG or ENUM64 on 5.10).
import {
  ALL_BTF_FEATURES,
  BTF_FEATURE_SINCE,
  type BtfFeature,
  type BtfFeatures,
  haveBtfFeature,
  kernelBtfFeatures,
} from '@bpfkit/btf';
import { kernelOlderThan } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';

const features = Object.keys(ALL_BTF_FEATURES) as BtfFeature[];
const expected = Object.fromEntries(
  features.map((f) => [f, !kernelOlderThan(BTF_FEATURE_SINCE[f])]),
) as unknown as BtfFeatures;

describe('BTF feature probes', () => {
  it('this kernel has exactly the BTF kinds and features of its release', () => {
    expect(kernelBtfFeatures()).toEqual(expected);
  });

  it('each probe answers on its own, the same each time (cached)', () => {
    for (const f of features) {
      expect(haveBtfFeature(f)).toBe(expected[f]);
      expect(haveBtfFeature(f)).toBe(expected[f]);
    }
  });
});
