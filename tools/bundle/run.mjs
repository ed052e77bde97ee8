#!/usr/bin/env node
// Run by a library package's build after `tsc -b`, in the package's directory: bundles the tsc
// output under dist/ (dist/index.js and every module it imports) into one ES module,
// dist/index.bundle.js, which the package's exports point at. Node 20 pays close to a millisecond
// per ES module at import, so one module per package keeps `import '@bpfkit/loader'` cheap. The
// package's dependencies and node: builtins stay imports (each package is still one instance, shared
// by the packages above it); the code is tsc's, unchanged, and the source map leads to src/.
import { existsSync, readFileSync } from 'node:fs';
import { rolldown } from 'rolldown';

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const deps = Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies });
const external = (id) => id.startsWith('node:') || deps.some((d) => id === d || id.startsWith(`${d}/`));

/** tsc's code as it is, with its source map, so the bundle's map goes back to the .ts sources. */
const tscOutput = {
  name: 'tsc-output',
  load(id) {
    if (!id.endsWith('.js')) return null;
    const code = readFileSync(id, 'utf8').replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n');
    const map = existsSync(`${id}.map`) ? readFileSync(`${id}.map`, 'utf8') : null;
    return { code, map };
  },
};

const bundle = await rolldown({
  input: 'dist/index.js',
  external,
  platform: 'node',
  plugins: [tscOutput],
  // every module as tsc wrote it: nothing is dropped, whatever package.json's sideEffects says
  treeshake: false,
  logLevel: 'warn',
});
await bundle.write({ file: 'dist/index.bundle.js', format: 'esm', sourcemap: true });
await bundle.close();
