// `bpfkit gen object.o`: the TypeScript module for an object (see codegen/object.ts).
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { type CompileOptions, compileBpf } from '../codegen/compile.js';
import { type GenerateOptions, generateModule } from '../codegen/object.js';
import { CliError } from './objects.js';

export interface GenOptions extends CompileOptions {
  /** Where the module will be written (needed for `object: 'file'`, which copies the object beside it). */
  out?: string;
  object?: 'embed' | 'file';
  types?: readonly string[];
  name?: string;
}

/**
 * The TypeScript module for `objectPath`, a clang-built `.o` or a `.bpf.c` source (compiled with
 * the system's clang first, see codegen/compile.ts). With `object: 'file'` the object is written
 * beside `out`.
 */
export function generateObjectModule(objectPath: string, opts: GenOptions = {}): string {
  const source = objectPath.endsWith('.c');
  let bytes: Uint8Array;
  if (source) {
    bytes = compileBpf(objectPath, opts);
    objectPath = objectPath.replace(/\.c$/, '.o');
  } else
    try {
      bytes = readFileSync(objectPath);
    } catch (e) {
      throw new CliError(`cannot read ${objectPath}: ${(e as Error).message}`, 2);
    }
  const gen: GenerateOptions = {
    ...(opts.object ? { object: opts.object } : {}),
    ...(opts.types ? { types: opts.types } : {}),
    ...(opts.name ? { name: opts.name } : {}),
  };
  if (opts.object === 'file') {
    if (!opts.out)
      throw new CliError('--object file needs --out: the object is written beside the module', 2);
    const dest = join(dirname(resolve(opts.out)), basename(objectPath));
    if (source) writeFileSync(dest, bytes);
    else if (resolve(objectPath) !== dest) copyFileSync(objectPath, dest);
    gen.objectFile = basename(objectPath);
  }
  return generateModule(bytes, objectPath, gen);
}
