// `bpfkit gen object.o`: the TypeScript module for an object (see codegen/object.ts).
import { copyFileSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { type GenerateOptions, generateModule } from '../codegen/object.js';
import { CliError } from './objects.js';

export interface GenOptions {
  /** Where the module will be written (needed for `object: 'file'`, which copies the object beside it). */
  out?: string;
  object?: 'embed' | 'file';
  types?: readonly string[];
  name?: string;
}

/** The TypeScript module for `objectPath`; with `object: 'file'` the object is copied beside `out`. */
export function generateObjectModule(objectPath: string, opts: GenOptions = {}): string {
  let bytes: Uint8Array;
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
    if (resolve(objectPath) !== dest) copyFileSync(objectPath, dest);
    gen.objectFile = basename(objectPath);
  }
  return generateModule(bytes, objectPath, gen);
}
