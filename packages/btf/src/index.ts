/**
 * @bpfkit/btf — BTF (BPF Type Format) in TypeScript, pure: parse and encode every kind, look
 * types up, compute layouts, read `.BTF.ext` (func/line info, CO-RE relocations) and resolve
 * CO-RE relocations against the kernel's BTF.
 * @packageDocumentation
 */
export {
  type AppliedCore,
  applyCoreRelos,
  CORE_POISON_IMM,
  CoreError,
  type CoreResolution,
  coreReloKindName,
  coreTypesCompat,
  patchCoreRelo,
  resolveCoreRelo,
  type SlotRelo,
} from './core.js';
export { encodeBtf, intType } from './encode.js';
export { BtfLookupError, BtfParseError } from './errors.js';
export {
  type BtfExt,
  type CoreRelo,
  CoreReloKind,
  encodeFuncInfo,
  encodeLineInfo,
  type FuncInfo,
  type LineInfo,
  parseBtfExt,
} from './ext.js';
export {
  BtfLoadError,
  btfFromKernel,
  kernelModuleBtfs,
  loadBtf,
  type ModuleBtf,
  vmlinuxBtfId,
} from './kernel.js';
export { BTF_MAGIC, BtfKind, type BtfKindName, type BtfKindNumber, IntEncoding } from './kinds.js';
export { type BtfHeader, type ParseOptions, parseBtf, type RawBtf } from './parse.js';
export {
  ALL_BTF_FEATURES,
  BTF_FEATURE_SINCE,
  type BtfFeature,
  type BtfFeatures,
  haveBtfFeature,
  kernelBtfFeatures,
} from './probes.js';
export { Btf, type FieldLayout, MAX_BTF_DEPTH, MAX_FLAT_FIELDS } from './spec.js';
export type * from './types.js';
export { decodeValue, encodeValue, formatValue, toJson } from './value.js';
