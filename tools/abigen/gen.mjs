#!/usr/bin/env node
// Generates packages/sys/src/abi.generated.ts from the running kernel's own definitions:
// enums and struct layouts from its BTF (/sys/kernel/btf/vmlinux), #define flags from the
// uapi headers. Deterministic: the same kernel and headers give the same bytes.
//
//   pnpm gen              write the file
//   pnpm gen --check      exit 1 if the committed file differs from what would be written
import { readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { generateAbi } from './abi.mjs';

const out = fileURLToPath(new URL('../../packages/sys/src/abi.generated.ts', import.meta.url));
const text = generateAbi();
if (process.argv.includes('--check')) {
  const committed = readFileSync(out, 'utf8');
  if (committed !== text) {
    console.error(`abigen: ${out} differs from what this kernel (${release()}) generates; run pnpm gen`);
    process.exit(1);
  }
  console.log('abigen: up to date');
} else {
  writeFileSync(out, text);
  console.log(`abigen: wrote ${out} (${text.length} bytes) from Linux ${release()}`);
}
