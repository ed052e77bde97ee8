// BTF feature probes: which kinds and features this kernel's BTF loader accepts. Each loads a
// tiny blob (built with encodeBtf) once per process; the answers are kept in @bpfkit/sys's probe
// cache. The loader rewrites an object's BTF for what is missing, as libbpf sanitises it.
import { BpfError, btfLoad, cachedProbe, NativeBuffer } from '@bpfkit/sys';
import { encodeBtf, intType } from './encode.js';
import type { BtfType } from './types.js';

/** What a kernel's BTF loader accepts, as libbpf's FEAT_BTF_* probes ask it. */
export interface BtfFeatures {
  /** BPF_BTF_LOAD at all (Linux 4.18). */
  btf: boolean;
  /** FUNC and FUNC_PROTO (5.0). */
  func: boolean;
  /** FUNC with global linkage (5.6). */
  globalFunc: boolean;
  /** VAR and DATASEC (5.2). */
  datasec: boolean;
  /** FLOAT (5.13). */
  float: boolean;
  /** DECL_TAG (5.16). */
  declTag: boolean;
  /** TYPE_TAG (5.17). */
  typeTag: boolean;
  /** ENUM64, and signed enums (6.0). */
  enum64: boolean;
}

export type BtfFeature = keyof BtfFeatures;

/** Every feature present: what a current kernel accepts. */
export const ALL_BTF_FEATURES: Readonly<BtfFeatures> = Object.freeze({
  btf: true,
  func: true,
  globalFunc: true,
  datasec: true,
  float: true,
  declTag: true,
  typeTag: true,
  enum64: true,
});

/** The first Linux release whose BTF loader accepts each feature (what a probe's `false` means). */
export const BTF_FEATURE_SINCE: Readonly<Record<BtfFeature, string>> = Object.freeze({
  btf: '4.18',
  func: '5.0',
  globalFunc: '5.6',
  datasec: '5.2',
  float: '5.13',
  declTag: '5.16',
  typeTag: '5.17',
  enum64: '6.0',
});

const int = intType;
const funcProto = (id: number): BtfType => ({
  kind: 'func_proto',
  id,
  name: '',
  returnType: 1,
  params: [{ name: 'x', type: 1 }],
});

/** The tiny BTF each probe loads: the feature's kind over an `int` (type 1). */
const BLOBS: Record<BtfFeature, () => BtfType[]> = {
  btf: () => [int()],
  func: () => [int(), funcProto(2), { kind: 'func', id: 3, name: 'f', type: 2, linkage: 0 }],
  globalFunc: () => [int(), funcProto(2), { kind: 'func', id: 3, name: 'f', type: 2, linkage: 1 }],
  datasec: () => [
    int(),
    { kind: 'var', id: 2, name: 'x', type: 1, linkage: 1 },
    { kind: 'datasec', id: 3, name: '.data', size: 4, vars: [{ type: 2, offset: 0, size: 4 }] },
  ],
  float: () => [{ kind: 'float', id: 1, name: 'float', size: 4 }],
  declTag: () => [
    int(),
    { kind: 'var', id: 2, name: 'x', type: 1, linkage: 1 },
    { kind: 'decl_tag', id: 3, name: 'tag', type: 2, componentIdx: -1 },
  ],
  typeTag: () => [
    int(),
    { kind: 'type_tag', id: 2, name: 'tag', type: 1 },
    { kind: 'ptr', id: 3, name: '', type: 2 },
  ],
  enum64: () => [
    { kind: 'enum64', id: 1, name: 'e', size: 8, signed: false, values: [{ name: 'v', value: 1n << 40n }] },
  ],
};

/**
 * Whether this kernel's BTF loader accepts `feature`. Cached; an EPERM (no privilege to load
 * BTF) is thrown, not cached.
 */
export function haveBtfFeature(feature: BtfFeature): boolean {
  return cachedProbe(`btf:${feature}`, () => {
    if (feature !== 'btf' && !haveBtfFeature('btf')) return false;
    using blob = NativeBuffer.from(encodeBtf(BLOBS[feature]()));
    try {
      btfLoad({ btf: blob.ptr, btfSize: blob.size }, `BTF probe (${feature})`).close();
      return true;
    } catch (e) {
      if (e instanceof BpfError && e.code !== 'EPERM') return false;
      throw e;
    }
  });
}

/** Every BTF feature of this kernel, probed (each once per process). */
export function kernelBtfFeatures(): BtfFeatures {
  const out = {} as BtfFeatures;
  for (const f of Object.keys(ALL_BTF_FEATURES) as BtfFeature[]) out[f] = haveBtfFeature(f);
  return out;
}
