// vmtest: host only: the parsers on fixed inputs; the kernel's BTF is only the CO-RE target, which btf's tests read on every leg
// The fuzz harness in the suite: every input it ever found (tools/fuzz/corpus) is replayed, and
// a small fixed-seed, count-bounded run (the same inputs on every machine, whatever its speed)
// must find nothing. Both run in child workers with a per-input time limit, as `pnpm fuzz` does.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { deliberate } from '../fuzz/classify.mjs';

const run = fileURLToPath(new URL('../fuzz/run.mjs', import.meta.url));
const corpus = fileURLToPath(new URL('../fuzz/corpus/', import.meta.url));

function fuzz(args: string[]): { inputs: number; findings: unknown[] } {
  let out: string;
  try {
    out = execFileSync(process.execPath, [run, ...args, '--quiet'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    out = String((e as { stdout?: string }).stdout ?? '');
  }
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

describe('fuzz regressions', () => {
  it('every saved finding now gives a result or a typed error', () => {
    const files = readdirSync(corpus).filter((f) => f.endsWith('.bin'));
    expect(files.length).toBeGreaterThan(0);
    const summary = fuzz(['--replay', corpus, '--timeout', '60000']);
    expect(summary.findings).toEqual([]);
    expect(summary.inputs).toBe(files.length);
  });

  it('a fixed-seed run of 1500 inputs finds nothing', () => {
    const summary = fuzz([
      '--inputs',
      '1500',
      '--seed',
      '7',
      '--workers',
      '1',
      '--no-save',
      '--timeout',
      '60000',
    ]);
    expect(summary.findings).toEqual([]);
    expect(summary.inputs).toBe(1500);
  });

  it('tells deliberate errors from raw engine ones', () => {
    const raw = (() => {
      try {
        new DataView(new ArrayBuffer(1)).getUint32(0);
      } catch (e) {
        return e;
      }
    })();
    expect(raw).toBeInstanceOf(RangeError);
    expect(deliberate(raw)).toBe(false);
    expect(deliberate(new RangeError('raised here, in a test, not in a package'))).toBe(false);
  });
});
