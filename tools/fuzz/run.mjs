#!/usr/bin/env node
// pnpm fuzz: property-based fuzzing of the ELF and BTF parsers for a bounded time
// (FUZZ_SECONDS, default 60). Mutates the committed fixtures (byte flips, truncation, spliced
// garbage) and requires every input to give a result or a typed error — never a crash, a hang
// or a RangeError from deep inside. Prints progress and the first counterexample found.
import { readdirSync, readFileSync } from 'node:fs';
import { Btf, BtfLookupError, BtfParseError, parseBtfExt } from '@bpfkit/btf';
import { ElfError, ObjectFile, parseElf } from '@bpfkit/loader';
import fc from 'fast-check';

const seconds = Number(process.env.FUZZ_SECONDS ?? 60);
const dir = new URL('../../packages/loader/test/fixtures/', import.meta.url);
const objects = readdirSync(dir)
  .filter((f) => f.endsWith('.bpf.o'))
  .map((f) => [f, readFileSync(new URL(f, dir))]);
const typed = (e) => e instanceof ElfError || e instanceof BtfParseError || e instanceof BtfLookupError;

const mutation = (len) =>
  fc.record({
    flips: fc.array(fc.tuple(fc.nat(len - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 24 }),
    cut: fc.option(fc.nat(len), { nil: undefined }),
  });
const mutate = (good, { flips, cut }) => {
  const b = new Uint8Array(good.subarray(0, cut ?? good.length));
  for (const [at, v] of flips) if (at < b.length) b[at] = v;
  return b;
};

const targets = [];
for (const [name, bytes] of objects) {
  targets.push([`ObjectFile ${name}`, bytes, (b) => ObjectFile.read(b)]);
  const elf = parseElf(bytes);
  const btf = elf.section('.BTF');
  const ext = elf.section('.BTF.ext');
  if (btf)
    targets.push([
      `BTF ${name}`,
      btf.data,
      (b) => {
        const spec = Btf.parse(b);
        for (const t of spec.types()) {
          try {
            spec.sizeof(t.id);
            if (t.kind === 'struct' || t.kind === 'union') spec.flatten(t.id);
          } catch (e) {
            if (!(e instanceof BtfLookupError)) throw e;
          }
        }
      },
    ]);
  if (btf && ext)
    targets.push([`BTF.ext ${name}`, ext.data, (b) => parseBtfExt(b, Btf.parse(btf.data).raw.strings)]);
}

const deadline = Date.now() + seconds * 1000;
let runs = 0;
let round = 0;
while (Date.now() < deadline) {
  for (const [name, good, parse] of targets) {
    if (Date.now() >= deadline) break;
    const result = fc.check(
      fc.property(mutation(good.length), (m) => {
        try {
          parse(mutate(good, m));
        } catch (e) {
          if (!typed(e)) throw e;
        }
      }),
      { numRuns: 200, seed: round * 1000 + runs },
    );
    runs += 200;
    if (result.failed) {
      console.error(
        `\nfuzz: ${name} failed after ${runs} runs:\n${result.errorInstance?.stack ?? result.error}`,
      );
      console.error(`counterexample: ${JSON.stringify(result.counterexample)}`);
      process.exit(1);
    }
  }
  round++;
  process.stdout.write(
    `\rfuzz: ${runs} inputs over ${targets.length} targets, ${Math.max(0, Math.round((deadline - Date.now()) / 1000))}s left   `,
  );
}
console.log(`\nfuzz: ${runs} inputs, no crash`);
