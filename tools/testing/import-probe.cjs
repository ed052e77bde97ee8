// Preloaded with `node --require`: records what bpfkit's own code does while a process runs —
// native addons loaded (process.dlopen), koffi required, and node:fs / node:child_process calls
// whose stack passes through a package's dist/. tools/test/import.test.ts checks that importing a
// package records nothing. The records are on globalThis.__bpfkitImportProbe.
const fs = require('node:fs');
const Module = require('node:module');
const childProcess = require('node:child_process');

const records = [];
globalThis.__bpfkitImportProbe = records;

const fromPackage = (stack) => /\/packages\/[^/]+\/dist\//.test(stack);
const record = (kind, what, always) => {
  const stack = (new Error().stack ?? '').split('\n').slice(3, 13).join('\n');
  if (always || fromPackage(stack)) records.push({ kind, what, stack });
};

const dlopen = process.dlopen;
process.dlopen = function (module, file, ...rest) {
  record('dlopen', file, true);
  return dlopen.call(this, module, file, ...rest);
};
const load = Module._load;
Module._load = function (request, ...rest) {
  if (/koffi/.test(request)) record('require', request, true);
  return load.call(this, request, ...rest);
};

const wrap = (object, name, kind) => {
  const f = object[name];
  object[name] = function (...args) {
    record(kind, `${name}(${typeof args[0] === 'string' ? args[0] : ''})`, false);
    return f.apply(this, args);
  };
};
for (const name of Object.keys(fs))
  if (/^[a-z]/.test(name) && typeof fs[name] === 'function') wrap(fs, name, 'fs');
for (const name of Object.keys(fs.promises)) wrap(fs.promises, name, 'fs');
for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'])
  wrap(childProcess, name, 'child_process');
// ESM `import { readFileSync } from 'node:fs'` sees the wrapped functions too.
Module.syncBuiltinESMExports();
