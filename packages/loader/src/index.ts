/**
 * @bpfkit/loader — load eBPF programs from instructions or clang-built ELF objects, read the
 * verifier's log when they are rejected, unit-test them with `testRun`. Attaching them is
 * `@bpfkit/link`'s.
 *
 * ```ts
 * import { Builder, R0 } from '@bpfkit/asm';
 * import { Program } from '@bpfkit/loader';
 * using prog = Program.load({ type: 'xdp', license: 'GPL', instructions: new Builder().mov64(R0, 2).exit() });
 * prog.testRun({ data: new Uint8Array(64) }).retval; // 2 (XDP_PASS)
 * ```
 * @packageDocumentation
 */
export { type AttachToAttrs, attachToAttrs, kernelBtfFd, programFuncBtfId } from './attach-to.js';
export {
  Collection,
  type CollectionOptions,
  type CollectionStructOps,
  loadCollection,
  type ProgramLoadError,
  STRUCT_OPS_LINK_SINCE,
} from './collection.js';
export { haveSyscallWrapper, kallsyms, kallsymsAt, syscallFunction } from './kallsyms.js';
export { kernelConfig, kernelConfigSource, linuxKernelVersion } from './kconfig.js';
export { sanitizeBtf } from './linker/btf.js';
export { type ConstantValue, parseKconfig } from './linker/data.js';
export {
  type PreparedCollection,
  type PreparedProgram,
  type PrepareOptions,
  prepareCollection,
} from './linker/prepare.js';
export { ExternError, KFUNC_POISON_BASE, KfuncNotSupportedError } from './linker/refs.js';
export type { MapOptions, ProgramOptions, SelectOptions, TypedProgram } from './linker/select.js';
export {
  type PreparedStructOps,
  prepareStructOps,
  type StructOpsLayout,
  StructOpsLayoutError,
  structOpsLayout,
  structOpsMemberTarget,
} from './linker/struct-ops.js';
export {
  type AttachTarget,
  AttachTargetError,
  type AttachTargetOption,
  kernelTargetType,
  needsAttachTarget,
  type ResolveTargetOptions,
  resolveAttachTarget,
} from './linker/targets.js';
export {
  type Elf,
  ElfError,
  type ElfReloc,
  type ElfSection,
  type ElfSymbol,
  parseElf,
  R_BPF,
  SHF,
  SHN_UNDEF,
  SHT,
  STB,
  STT,
} from './object/elf.js';
export {
  MAX_DATA_SECTION,
  MAX_DATA_TOTAL,
  type ObjectExtern,
  ObjectFile,
  type ObjectMap,
  type ObjectProgram,
  type ObjectStructOps,
  type ObjectVariable,
  type PinningKind,
} from './object/object.js';
export {
  programForSection,
  SECTION_PATTERNS,
  type SectionProgram,
  UnknownSectionError,
} from './object/sections.js';
export { haveHelper, haveProgType, requireHelper, requireProgType } from './probes.js';
export {
  Program,
  type ProgramBtf,
  type ProgramSpec,
  type TestRunOptions,
  type TestRunResult,
} from './program.js';
export { collectionVariables, Variable } from './variable.js';
export { excerptAround, lastInsnIndex, logTail, VerifierError } from './verifier.js';
