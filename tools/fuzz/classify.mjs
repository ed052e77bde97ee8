// Which errors count as typed. A fuzz input may fail, but only the way the project promises:
//
// 1. an instance of one of the project's error classes for bad input — ElfError,
//    UnknownSectionError, ExternError (@bpfkit/loader), BtfParseError, BtfLookupError (and its
//    AttachTargetError), CoreError (@bpfkit/btf), NotSupportedError (@bpfkit/sys); or
// 2. a TypeError, RangeError or Error that project code raised on purpose: the error's top stack
//    frame is in a package's own code (packages/*/dist, not node_modules) and points exactly at a
//    `new TypeError(` / `new RangeError(` / `new Error(` expression there.
//
// Everything else is untyped: a RangeError raised by DataView or BigInt (top frame in a builtin),
// "Cannot read properties of undefined" (top frame at a property access, not at a `new`),
// "Invalid array length", a stack overflow, or any other class.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const DELIBERATE = /^new (TypeError|RangeError|Error)\(/;
const lines = new Map();

function sourceLine(file, line) {
  let text = lines.get(file);
  if (text === undefined) {
    try {
      text = readFileSync(file, 'utf8').split('\n');
    } catch {
      text = null;
    }
    lines.set(file, text);
  }
  return text?.[line - 1];
}

/** The top stack frame as { file, line, col }, or undefined (a builtin, or no stack). */
export function topFrame(error) {
  const stack = typeof error?.stack === 'string' ? error.stack : '';
  const first = stack.split('\n').find((l) => l.trimStart().startsWith('at '));
  if (!first) return undefined;
  const m = /\(?((?:file:\/\/)?\/[^()]*?):(\d+):(\d+)\)?\s*$/.exec(first);
  if (!m) return undefined;
  const file = m[1].startsWith('file://') ? fileURLToPath(m[1]) : m[1];
  return { file, line: Number(m[2]), col: Number(m[3]) };
}

/** True when `error` was thrown on purpose by project code (rule 2 above). */
export function deliberate(error) {
  if (!(error instanceof TypeError || error instanceof RangeError || error?.constructor === Error))
    return false;
  if (/Maximum call stack size exceeded/.test(error.message)) return false;
  const f = topFrame(error);
  if (!f || !/\/packages\/[^/]+\/dist\//.test(f.file) || f.file.includes('/node_modules/')) return false;
  const text = sourceLine(f.file, f.line);
  return text !== undefined && text !== null && DELIBERATE.test(text.slice(f.col - 1));
}

/** Build the classifier for the given modules' error classes. */
export function classifier({ btf, loader, sys }) {
  const classes = [
    loader.ElfError,
    loader.UnknownSectionError,
    loader.ExternError,
    btf.BtfParseError,
    btf.BtfLookupError,
    btf.CoreError,
    sys?.NotSupportedError,
  ].filter(Boolean);
  return (error) => classes.some((c) => error instanceof c) || deliberate(error);
}
