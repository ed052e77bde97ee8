// vmtest: host only: it reads package manifests and imports, no kernel
// The package graph keeps to one line of layers (DESIGN.md, ARCHITECTURE.md):
//
//   sys → asm → btf → maps → loader → {pin, cgroup, perf} → cli
//
// A package depends on (package.json: dependencies, devDependencies, peerDependencies) and
// imports from its src only packages on a lower layer: pin, cgroup and perf are siblings, so none
// of them knows another. Every package its src imports is in its `dependencies` (a devDependency
// is not installed for its users), every dependency is imported by src (a test-only one is a
// devDependency), and src never reaches into another folder by a relative path.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/** The layers, lowest first; each entry is a folder under packages/. */
const LAYERS: readonly (readonly string[])[] = [
  ['sys'],
  ['asm'],
  ['btf'],
  ['maps'],
  ['loader'],
  ['link'],
  ['pin', 'cgroup', 'perf'],
  ['exporter'],
  ['cli'],
];
const SECTIONS = ['dependencies', 'devDependencies', 'peerDependencies'] as const;

type Manifest = { name: string } & Partial<Record<(typeof SECTIONS)[number], Record<string, string>>>;
interface Import {
  /** Path relative to the repository root, and line, for the message. */
  where: string;
  specifier: string;
  /** The file the specifier is written in (to resolve relative ones). */
  file: string;
}
interface Pkg {
  dir: string;
  manifest: Manifest;
  imports: Import[];
}

const root = fileURLToPath(new URL('../../', import.meta.url));
const packagesDir = join(root, 'packages');

/** Every module specifier of a TypeScript file: import/export from, import(), import('x').T, require-style import =. */
function specifiers(file: string, text = readFileSync(file, 'utf8')): Import[] {
  const src = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: Import[] = [];
  const add = (node: ts.Node, lit: ts.Expression | undefined) => {
    if (!lit || !ts.isStringLiteralLike(lit)) return;
    const line = src.getLineAndCharacterOfPosition(node.getStart(src)).line + 1;
    out.push({ where: `${relative(root, file)}:${line}`, specifier: lit.text, file });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node, node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference))
      add(node, node.moduleReference.expression);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword)
      add(node, node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument))
      add(node, node.argument.literal);
    ts.forEachChild(node, visit);
  };
  visit(src);
  return out;
}

function sourceFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

function readPackages(): Pkg[] {
  return readdirSync(packagesDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(packagesDir, e.name, 'package.json')))
    .map((e) => ({
      dir: e.name,
      manifest: JSON.parse(readFileSync(join(packagesDir, e.name, 'package.json'), 'utf8')) as Manifest,
      imports: sourceFiles(join(packagesDir, e.name, 'src')).flatMap((f) => specifiers(f)),
    }))
    .sort((a, b) => a.dir.localeCompare(b.dir));
}

/** The package a bare specifier names (`@scope/name/sub` → `@scope/name`); undefined for relative paths and Node builtins. */
function packageName(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/')) return undefined;
  if (specifier.startsWith('node:') || builtinModules.includes(specifier.split('/')[0]!)) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Everything wrong with the graph of `pkgs`, one message each; empty when it keeps to {@link LAYERS}. */
function problems(pkgs: readonly Pkg[], layers: readonly (readonly string[])[] = LAYERS): string[] {
  const out: string[] = [];
  const layerOf = new Map<string, number>();
  for (const [i, dirs] of layers.entries()) for (const d of dirs) layerOf.set(d, i);
  const byName = new Map(pkgs.map((p) => [p.manifest.name, p]));
  const describe = (p: Pkg) => `${p.manifest.name} (packages/${p.dir}, layer ${layerOf.get(p.dir)})`;
  /** Why `from` may not use `to`, or undefined when it may. */
  const upward = (from: Pkg, to: Pkg): string | undefined => {
    const a = layerOf.get(from.dir)!;
    const b = layerOf.get(to.dir)!;
    if (from === to) return 'itself';
    if (b === a) return `${describe(to)}, a sibling on its own layer`;
    if (b > a) return `${describe(to)}, a layer above`;
    return undefined;
  };

  for (const p of pkgs)
    if (!layerOf.has(p.dir)) out.push(`packages/${p.dir} is on no layer: add it to LAYERS`);
  for (const d of layerOf.keys())
    if (!pkgs.some((p) => p.dir === d)) out.push(`layer folder packages/${d} does not exist`);

  for (const p of pkgs) {
    if (!layerOf.has(p.dir)) continue;
    for (const section of SECTIONS)
      for (const dep of Object.keys(p.manifest[section] ?? {})) {
        const to = byName.get(dep);
        const why = to && upward(p, to);
        if (why) out.push(`${describe(p)}: package.json ${section} names ${why}`);
      }
    const imported = new Set(p.imports.map((i) => packageName(i.specifier)));
    for (const dep of Object.keys(p.manifest.dependencies ?? {}))
      if (!imported.has(dep))
        out.push(`${describe(p)}: package.json dependencies names ${dep}, which its src never imports`);
    const srcDir = join(packagesDir, p.dir, 'src') + sep;
    for (const imp of p.imports) {
      const name = packageName(imp.specifier);
      if (name === undefined) {
        if (imp.specifier.startsWith('.') || imp.specifier.startsWith('/')) {
          const target = resolve(dirname(imp.file), imp.specifier);
          if (!target.startsWith(srcDir))
            out.push(`${imp.where}: '${imp.specifier}' reaches outside ${p.manifest.name}'s src`);
        }
        continue;
      }
      const to = byName.get(name);
      const why = to && layerOf.has(to.dir) && upward(p, to);
      if (why) out.push(`${imp.where}: ${p.manifest.name} imports ${why}`);
      else if (!p.manifest.dependencies?.[name]) {
        const elsewhere = SECTIONS.filter((s) => s !== 'dependencies' && p.manifest[s]?.[name]);
        out.push(
          `${imp.where}: ${p.manifest.name} imports '${imp.specifier}' but ${name} is not in its dependencies` +
            (elsewhere.length ? ` (only in ${elsewhere.join(', ')}, which its users do not install)` : ''),
        );
      }
    }
  }
  return out;
}

describe('the package graph', () => {
  const pkgs = readPackages();

  it('every package is on one layer, and no package depends on or imports its own layer or above', () => {
    expect(pkgs.map((p) => p.dir).sort()).toEqual(LAYERS.flat().sort());
    expect(pkgs.every((p) => p.imports.length > 0)).toBe(true); // the walk found the sources
    expect(problems(pkgs)).toEqual([]);
  });

  it('catches what it is for: upward, sibling, undeclared, unused and dev-only imports, and relative escapes', () => {
    const file = (dir: string) => join(packagesDir, dir, 'src', 'index.ts');
    const pkg = (dir: string, deps: Manifest, specs: string[]): Pkg => ({
      dir,
      manifest: deps,
      imports: specs.map((specifier) => ({
        where: `packages/${dir}/src/index.ts:1`,
        specifier,
        file: file(dir),
      })),
    });
    const found = problems(
      [
        pkg('sys', { name: '@bpfkit/sys', dependencies: { koffi: '1' } }, [
          'koffi',
          'node:fs',
          'fs/promises',
        ]),
        pkg('maps', { name: '@bpfkit/maps', devDependencies: { '@bpfkit/loader': '*' } }, ['@bpfkit/sys']),
        pkg('loader', { name: '@bpfkit/loader', dependencies: { '@bpfkit/maps': '*', unused: '1' } }, [
          '@bpfkit/maps/x',
        ]),
        pkg('pin', { name: '@bpfkit/pin', dependencies: { '@bpfkit/sys': '*' } }, [
          '@bpfkit/perf',
          '@bpfkit/pin',
        ]),
        pkg('perf', { name: '@bpfkit/perf', devDependencies: { '@bpfkit/maps': '*' } }, [
          '@bpfkit/maps',
          '../../maps/src/map.js',
          './reader.js',
        ]),
        pkg('cli', { name: 'bpfkit', dependencies: { '@bpfkit/sys': '*' } }, ['commander']),
      ],
      [['sys'], ['maps'], ['loader'], ['pin', 'perf'], ['cli'], ['gone']],
    );
    expect(found).toEqual([
      'layer folder packages/gone does not exist',
      '@bpfkit/maps (packages/maps, layer 1): package.json devDependencies names @bpfkit/loader (packages/loader, layer 2), a layer above',
      "packages/maps/src/index.ts:1: @bpfkit/maps imports '@bpfkit/sys' but @bpfkit/sys is not in its dependencies",
      '@bpfkit/loader (packages/loader, layer 2): package.json dependencies names unused, which its src never imports',
      '@bpfkit/pin (packages/pin, layer 3): package.json dependencies names @bpfkit/sys, which its src never imports',
      'packages/pin/src/index.ts:1: @bpfkit/pin imports @bpfkit/perf (packages/perf, layer 3), a sibling on its own layer',
      'packages/pin/src/index.ts:1: @bpfkit/pin imports itself',
      "packages/perf/src/index.ts:1: @bpfkit/perf imports '@bpfkit/maps' but @bpfkit/maps is not in its dependencies (only in devDependencies, which its users do not install)",
      "packages/perf/src/index.ts:1: '../../maps/src/map.js' reaches outside @bpfkit/perf's src",
      'bpfkit (packages/cli, layer 4): package.json dependencies names @bpfkit/sys, which its src never imports',
      "packages/cli/src/index.ts:1: bpfkit imports 'commander' but commander is not in its dependencies",
    ]);
  });

  it('reads every kind of specifier, and none in comments or strings', () => {
    const probe = join(packagesDir, 'maps', 'src', 'index.ts');
    const text = [
      "import { a } from 'a';",
      "import type { B } from 'b';",
      "export { c } from 'c';",
      "export * from 'd';",
      "import 'e';",
      "const f = await import('f');",
      "type G = import('g').G;",
      "// import { x } from 'not-in-a-comment';",
      "const s = `import { y } from 'not-in-a-string'`;",
    ].join('\n');
    expect(specifiers(probe, text).map((i) => i.specifier)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
  });
});

describe('ARCHITECTURE.md', () => {
  const path = join(root, 'ARCHITECTURE.md');

  it('exists at the root and names every package', () => {
    expect(existsSync(path), 'ARCHITECTURE.md at the repository root').toBe(true);
    const text = readFileSync(path, 'utf8');
    const missing = readPackages()
      .map((p) => p.manifest.name)
      .filter((name) => !new RegExp(`(?<![\\w@/-])${name.replace(/[/@]/g, '\\$&')}(?![\\w/-])`).test(text));
    expect(missing).toEqual([]);
  });
});
