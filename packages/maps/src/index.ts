/**
 * @bpfkit/maps — typed eBPF maps with a JavaScript `Map`-like API.
 *
 * ```ts
 * using counts = BpfMap.create({ type: 'hash', key: u32, value: u64, maxEntries: 1024 });
 * counts.set(1, 10n);
 * counts.get(1); // 10n
 * ```
 * @packageDocumentation
 */

/** Anything that owns a BPF object fd (a map, a program, a link); defined in `@bpfkit/sys`. */
export type { HasFd } from '@bpfkit/sys';
export { btfCodec, CodecMismatchError, checkCodec } from './btf.js';
export * from './codec.js';
export { onlineCpus, parseCpuList, possibleCpus } from './cpus.js';
export {
  FD_VALUE_MAP_TYPES,
  type MapFlagName,
  type MapOperation,
  MapOperationError,
  mapFlagsValue,
  PER_CPU_MAP_TYPES,
  takesKeyValueBtf,
} from './kinds.js';
export { cidr, type LpmKey, lpmKey } from './lpm.js';
export {
  BpfMap,
  type MapSpec,
  type MapValue,
  type PerCpuType,
  type PerCpuTypeName,
  type SetOptions,
  type UpdateFlag,
} from './map.js';
export { MapMemory } from './memory.js';
export { haveMapType, haveMmapableArrays, mapTypeSince, requireMapType } from './probes.js';
