// The config file: YAML (the `yaml` package keeps every node's position) checked by the zod
// schemas of spec.ts. Every error names the file, the line and the field.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isPair, isScalar, LineCounter, type Node, parseDocument } from 'yaml';
import type { z } from 'zod';
import {
  type BuiltinName,
  configSchema,
  type ExporterConfig,
  type ProgramConfig,
  programSchema,
} from './spec.js';

/** A config file that cannot be used: every problem found, each with its line and field. */
export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];
  constructor(file: string, problems: ConfigProblem[]) {
    super(
      `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n${problems
        .map((p) => `  ${file}:${p.line}: ${p.field ? `${p.field}: ` : ''}${p.message}`)
        .join('\n')}`,
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface ConfigProblem {
  /** 1-based line in the file. */
  line: number;
  /** The field's path, e.g. `programs[0].metrics[1].type` (empty for a YAML syntax error). */
  field: string;
  message: string;
}

/** A program entry ready to load: builtins expanded, the object's path absolute. */
export type ResolvedProgram = ProgramConfig & {
  object: string;
  attach: NonNullable<ProgramConfig['attach']>;
  metrics: NonNullable<ProgramConfig['metrics']>;
};

const BUILTIN_DIR = fileURLToPath(new URL('../bpf/', import.meta.url));

/** Read and check a config file; throws {@link ConfigError}. */
export function loadConfig(path: string): ResolvedProgram[] {
  return parseConfig(readFileSync(path, 'utf8'), path);
}

/** Check config text (`file` names it in errors; relative object paths resolve beside it). */
export function parseConfig(text: string, file = 'config.yaml'): ResolvedProgram[] {
  const config = checkYaml(text, file, configSchema) as ExporterConfig;
  const base = dirname(resolve(file));
  return config.programs.map((p) =>
    p.builtin
      ? builtinProgram(p.builtin, p.name)
      : ({ ...p, object: resolve(base, p.object as string) } as ResolvedProgram),
  );
}

/** A built-in's program entry, from the YAML beside its C source. */
export function builtinProgram(builtin: BuiltinName, name: string = builtin): ResolvedProgram {
  const file = resolve(BUILTIN_DIR, `${builtin}.yaml`);
  const p = checkYaml(readFileSync(file, 'utf8'), file, programSchema, { name }) as ProgramConfig;
  return { ...p, object: resolve(BUILTIN_DIR, p.object as string) } as ResolvedProgram;
}

function checkYaml<S extends z.ZodType>(
  text: string,
  file: string,
  schema: S,
  defaults: Record<string, unknown> = {},
): z.output<S> {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const lineAt = (offset: number) => lines.linePos(offset).line;
  if (doc.errors.length > 0)
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({ line: lineAt(e.pos[0]), field: '', message: e.message.split('\n')[0] ?? '' })),
    );
  const data = doc.toJS() ?? {};
  const input = typeof data === 'object' && !Array.isArray(data) ? { ...defaults, ...data } : data;
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const problems = r.error.issues.map((issue) => {
    const path = issue.path.filter((k): k is string | number => typeof k !== 'symbol');
    let node = nodeAt(doc.contents, path);
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      const key = issue.keys[0] as string;
      const pair = isMap(node)
        ? node.items.find((it) => isPair(it) && isScalar(it.key) && it.key.value === key)
        : undefined;
      if (pair && isPair(pair) && isScalar(pair.key)) node = pair.key;
      message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
      path.push(key);
    }
    return { line: node?.range ? lineAt(node.range[0]) : 1, field: fieldPath(path), message };
  });
  problems.sort((a, b) => a.line - b.line);
  throw new ConfigError(file, problems);
}

/** The deepest node on `path` that exists (a missing field points at its parent). */
function nodeAt(root: unknown, path: (string | number)[]): Node | undefined {
  let node = root as Node | undefined;
  for (const key of path) {
    const c = node as unknown as { get?: (k: unknown, keep: boolean) => unknown };
    const next = typeof c?.get === 'function' ? (c.get(key, true) as Node | undefined) : undefined;
    if (next === undefined || next === null || typeof next !== 'object') break;
    node = next;
  }
  return node;
}

function fieldPath(path: (string | number)[]): string {
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}
