// vmtest: host only: it generates TypeScript and compiles it with tsc; the fixture objects it then loads are loaded on every leg by the loader tests
// `bpfkit gen` output is checked the way a user meets it: generated for every fixture object,
// compiled by `tsc` in a fresh strict project (exactOptionalPropertyTypes, nodenext, no skipLibCheck)
// that links the workspace packages, and run: a program built on two generated modules loads
// them, sets constants, reads typed map values and live variables, and decodes a --type record.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { ObjectFile } from '@bpfkit/loader';
import { generateModule, generateObjectModule } from 'bpfkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { strictCompilerOptions } from '../../../tools/testing/strict-tsconfig.js';

const here = (p: string) => new URL(p, import.meta.url).pathname;
const packages = here('../../');
const fixtureDirs = [here('../../loader/test/fixtures/'), here('../bpf/')];
const objects = fixtureDirs.flatMap((d) =>
  readdirSync(d)
    .filter((f) => f.endsWith('.bpf.o'))
    .map((f) => join(d, f)),
);
const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');
const bin = here('../dist/bin.js');

/** Every named struct and union of an object's BTF: each gets a codec. */
function structNames(path: string): string[] {
  const btf = ObjectFile.read(path).btf!;
  const names = new Set<string>();
  for (const t of btf.types()) if ((t.kind === 'struct' || t.kind === 'union') && t.name) names.add(t.name);
  return [...names];
}

describe('bpfkit gen', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bpfkit-gen-'));
    const nm = join(dir, 'node_modules');
    mkdirSync(join(nm, '@bpfkit'), { recursive: true });
    mkdirSync(join(nm, '@types'), { recursive: true });
    for (const p of ['sys', 'asm', 'btf', 'maps', 'loader', 'perf'])
      symlinkSync(join(packages, p), join(nm, '@bpfkit', p));
    symlinkSync(
      dirname(realpathSync(require.resolve('@types/node/package.json'))),
      join(nm, '@types', 'node'),
    );
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'gen-user', type: 'module', private: true }),
    );
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: strictCompilerOptions,
        include: ['src'],
      }),
    );
    mkdirSync(join(dir, 'src'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('generates a module for every fixture that compiles under strict TypeScript, and it runs', () => {
    expect(objects.length).toBeGreaterThanOrEqual(8);
    for (const o of objects) {
      const stem = basename(o).replace(/\.bpf\.o$/, '');
      const code = generateModule(readFileSync(o), o, { types: structNames(o) });
      writeFileSync(join(dir, 'src', `${stem}.ts`), code);
    }
    // One module loads its object from a file beside it instead.
    const beside = join(dir, 'src', 'maps_file.ts');
    writeFileSync(
      beside,
      generateObjectModule(objects.find((o) => o.endsWith('/maps.bpf.o'))!, {
        out: beside,
        object: 'file',
        name: 'maps_file',
      }),
    );
    writeFileSync(join(dir, 'src', 'main.ts'), MAIN);
    writeFileSync(join(dir, 'src', 'errors.ts'), ERRORS);
    const r = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
    // The file-loading module reads the object beside its .js, as it would be shipped.
    execFileSync('cp', [join(dir, 'src', 'maps.bpf.o'), join(dir, 'dist', 'maps.bpf.o')]);
    const run = spawnSync(process.execPath, [join(dir, 'dist', 'main.js')], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      stats: { packets: '1', bytes: '50', last_len: 50, seen: 1 },
      perCpuLength: expect.any(Number),
      perCpuTotal: 1,
      ringRecord: 50, // skb->len: the 64 bytes less the Ethernet header
      fromFile: { packets: '1', bytes: '50', last_len: 50, seen: 1 },
      offset: '-7',
      multiplier: 4,
      bss: '4',
      dataCounter: '8',
      written: '100',
      mapped: true,
      rodataReadonly: true,
      record: { packets: '9', bytes: '10', last_len: 11, seen: 1 },
    });
  });

  it('the CLI writes the module from a .o or a .bpf.c, embeds or copies the object, and names what fails', () => {
    const maps = objects.find((o) => o.endsWith('/maps.bpf.o'))!;
    const out = spawnSync(process.execPath, [bin, 'gen', maps, '--type', 'stats'], { encoding: 'utf8' });
    expect(out.status).toBe(0);
    expect(out.stdout).toContain('export const statsCodec: Codec<MapsStats>');
    expect(out.stdout).toContain('Buffer.from(');
    const file = join(dir, 'cli_out.ts');
    const beside = spawnSync(process.execPath, [bin, 'gen', maps, '-o', file, '--object', 'file'], {
      encoding: 'utf8',
    });
    expect(beside.status).toBe(0);
    expect(readFileSync(file, 'utf8')).toContain(`readFileSync(new URL("./maps.bpf.o", import.meta.url))`);
    expect(readFileSync(join(dir, 'maps.bpf.o'))).toEqual(readFileSync(maps));
    // From C: compiled with the system clang, against a vmlinux.h bpfkit writes from the kernel's BTF.
    const core = here('../../loader/test/fixtures/core.bpf.c');
    const fromC = spawnSync(process.execPath, [bin, 'gen', core], { encoding: 'utf8', maxBuffer: 1 << 26 });
    expect(fromC.stderr).toBe('');
    expect(fromC.status).toBe(0);
    expect(fromC.stdout).toContain('export function loadCore(');
    expect(fromC.stdout).toContain('target_tgid?: number;');
    const broken = join(dir, 'broken.bpf.c');
    writeFileSync(broken, 'int f(void) { return nope; }\n');
    const failed = spawnSync(process.execPath, [bin, 'gen', broken], { encoding: 'utf8' });
    expect(failed.status).toBe(1);
    expect(failed.stderr).toMatch(
      /^bpfkit: clang failed to compile .*broken\.bpf\.c:\n.*use of undeclared identifier 'nope'/s,
    );
    const missing = spawnSync(process.execPath, [bin, 'gen', maps, '--type', 'nope'], { encoding: 'utf8' });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe(`bpfkit: --type nope: no struct or union 'nope' in ${maps}'s BTF\n`);
  });
});

/** A user program on two generated modules, printing what it saw as JSON. */
const MAIN = `
import { u32 } from '@bpfkit/maps';
import { RingBufReader } from '@bpfkit/perf';
import { loadGlobals } from './globals.js';
import { loadMaps, statsCodec, type MapsStats } from './maps.js';
import { loadMapsFile } from './maps_file.js';

const json = (v: unknown) => JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)));

const maps = loadMaps();
const ring = RingBufReader.open(maps.maps.events, { codec: u32, timeout: 0 });
maps.programs.use_maps.testRun({ data: new Uint8Array(64) });
const ringRecord: number | undefined = (await ring.read())?.value;
ring.close();
const stats: MapsStats | undefined = maps.maps.stats_map.get(1024);
const perCpu: Uint8Array[] | undefined = maps.maps.percpu.get(new Uint8Array([1, 0, 0, 0]));
const perCpuTotal = (perCpu ?? []).reduce((n, v) => n + (v[0] ?? 0), 0);
maps.maps.pinned_lru.set(5n, 6n);
maps.close();

const fromFile = loadMapsFile();
fromFile.programs.use_maps.testRun({ data: new Uint8Array(64) });
const statsFromFile = fromFile.maps.stats_map.get(1024);
fromFile.close();

const g = loadGlobals({ constants: { cfg_multiplier: 4, cfg_offset: -7n } });
g.programs.globals.testRun({ data: new Uint8Array(64) });
const v = g.variables;
const out = {
  offset: v.out_offset.get(),
  multiplier: v.cfg_multiplier.get(),
  bss: v.bss_counter.get(),
  dataCounter: v.data_counter.get(),
};
v.bss_counter.set(96n);
g.programs.globals.testRun({ data: new Uint8Array(64) });
const written = v.bss_counter.get();
let rodataReadonly = false;
try {
  v.cfg_multiplier.set(1);
} catch {
  rodataReadonly = true;
}
g.close();

const bytes = new Uint8Array(statsCodec.size);
statsCodec.encode(new DataView(bytes.buffer), 0, { packets: 9n, bytes: 10n, last_len: 11, seen: 1 });
const record: MapsStats = statsCodec.decode(new DataView(bytes.buffer), 0);

console.log(JSON.stringify(json({
  stats,
  perCpuLength: perCpu?.length ?? 0,
  perCpuTotal,
  ringRecord,
  fromFile: statsFromFile,
  ...out,
  written,
  mapped: v.bss_counter.mapped && v.cfg_offset.mapped,
  rodataReadonly,
  record,
})));
`;

/** What the generated types must reject: each line is a compile error, or tsc fails. */
const ERRORS = `
import { loadGlobals } from './globals.js';
import { loadMaps } from './maps.js';

export function wrong(): void {
  const m = loadMaps();
  // @ts-expect-error a u64 map takes bigint, not number
  m.maps.pinned_lru.set(1, 1n);
  // @ts-expect-error a u64 value is a bigint
  m.maps.pinned_lru.set(1n, 1);
  // @ts-expect-error struct stats has no field 'nope'
  m.maps.stats_map.set(1, { packets: 1n, bytes: 1n, last_len: 1, seen: 1, nope: 1 });
  // @ts-expect-error a per-CPU map's value is an array
  m.maps.percpu.set(new Uint8Array(4), new Uint8Array(8));
  // @ts-expect-error no such map
  m.maps.nope;
  // @ts-expect-error no such program
  m.programs.nope;
  // @ts-expect-error cfg_offset is a __s64: bigint
  loadGlobals({ constants: { cfg_offset: 1 } });
  // @ts-expect-error no such constant
  loadGlobals({ constants: { nope: 1 } });
  // @ts-expect-error data_counter is not a constant
  loadGlobals({ constants: { data_counter: 1n } });
  const g = loadGlobals();
  // @ts-expect-error a __u64 variable is a bigint
  g.variables.data_counter.set(1);
}
`;
