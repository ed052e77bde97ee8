/**
 * bpfkit — the command line: `bpfkit prog|map|link|pin|feature|btf|gen|top|execsnoop|demo`.
 * The demos are exported too, as runnable examples built only from the public packages.
 * @packageDocumentation
 */
export { createCli, main } from './cli.js';
export { btfToC, type CHeaderOptions } from './codegen/c.js';
export { type CompileOptions, clangArgs, compileBpf } from './codegen/compile.js';
export { type GenerateOptions, generateModule } from './codegen/object.js';
export type { TsTypes } from './codegen/types.js';
export { type GeneratedTs, generateTs } from './codegen/typescript.js';
export { formatType, readBtf } from './commands/btf.js';
export { type GenOptions, generateObjectModule } from './commands/gen.js';
export { CliError } from './commands/objects.js';
export {
  decodeExecEvent,
  EXECSNOOP_OBJECT,
  type ExecEvent,
  type ExecsnoopOptions,
  execEventCodec,
  execEventOf,
  runExecsnoop,
} from './demos/execsnoop.js';
export { runTop, type TopOptions, type TopRow, topProgram } from './demos/top.js';
