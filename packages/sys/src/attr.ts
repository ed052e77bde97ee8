import { attrLayout, BPF_ATTR_SIZE, type BpfCmd } from './abi.generated.js';
import { BpfError, commandError } from './errors.js';
import { errno, SYS_bpf, sysBpf } from './ffi.js';
import { NativeBuffer } from './native.js';

export type AttrFamily = keyof typeof attrLayout;
type Layout<F extends AttrFamily> = (typeof attrLayout)[F];

export type CamelCase<S extends string> = S extends `${infer H}_${infer T}`
  ? `${H}${Capitalize<CamelCase<T>>}`
  : S extends `${infer H}.${infer T}`
    ? `${CamelCase<H>}.${CamelCase<T>}`
    : S;

/** A value for one attr field: a number or bigint (an address for pointer fields), or a string for char arrays. */
export type AttrValue = number | bigint | string;
/** The fields of one `union bpf_attr` member, named in camelCase (`keySize`, `perfEvent.bpfCookie`). */
export type AttrArgs<F extends AttrFamily> = {
  -readonly [K in keyof Layout<F> as CamelCase<K & string>]?: AttrValue;
};

const snakeCache = new Map<string, string>();
function snake(key: string): string {
  let s = snakeCache.get(key);
  if (s === undefined) {
    s = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    snakeCache.set(key, s);
  }
  return s;
}

const encoder = new TextEncoder();

/** Write one value at a field of [offset, size]. */
export function writeField(view: DataView, field: readonly number[], value: AttrValue, what: string): void {
  const [off = 0, size = 0, bitOff, bits] = field;
  if (bits !== undefined && bitOff !== undefined) {
    // Bitfield: read-modify-write its storage unit (little-endian, as on x86-64/arm64).
    const unit = size === 8 ? view.getBigUint64(off, true) : BigInt(view.getUint32(off, true));
    const mask = ((1n << BigInt(bits)) - 1n) << BigInt(bitOff);
    const next = (unit & ~mask) | ((BigInt(value) << BigInt(bitOff)) & mask);
    if (size === 8) view.setBigUint64(off, next, true);
    else view.setUint32(off, Number(next), true);
    return;
  }
  if (typeof value === 'string') {
    const bytes = encoder.encode(value);
    if (bytes.length >= size) throw new RangeError(`${what} takes at most ${size - 1} bytes, got '${value}'`);
    new Uint8Array(view.buffer, view.byteOffset + off, size).fill(0).set(bytes);
    return;
  }
  switch (size) {
    case 1:
      view.setUint8(off, Number(value));
      break;
    case 2:
      view.setUint16(off, Number(value), true);
      break;
    case 4:
      view.setUint32(off, Number(value) >>> 0, true);
      break;
    case 8:
      view.setBigUint64(off, BigInt.asUintN(64, BigInt(value)), true);
      break;
    default:
      throw new RangeError(`${what}: cannot write a number into a ${size}-byte field`);
  }
}

/** Read an unsigned field of [offset, size]: numbers up to 4 bytes, bigint for 8. */
export function readField(view: DataView, field: readonly number[]): number | bigint {
  const [off = 0, size = 0, bitOff, bits] = field;
  let v: number | bigint;
  switch (size) {
    case 1:
      v = view.getUint8(off);
      break;
    case 2:
      v = view.getUint16(off, true);
      break;
    case 4:
      v = view.getUint32(off, true);
      break;
    case 8:
      v = view.getBigUint64(off, true);
      break;
    default:
      throw new RangeError(`cannot read a ${size}-byte field as a number`);
  }
  if (bits !== undefined && bitOff !== undefined) {
    return Number((BigInt(v) >> BigInt(bitOff)) & ((1n << BigInt(bits)) - 1n));
  }
  return v;
}

/** The attr buffer shared by every non-hot command: commands are synchronous, so one suffices. */
const scratch = new NativeBuffer(BPF_ATTR_SIZE);

/**
 * Run one bpf command with named attr fields. Returns the syscall's result; throws
 * {@link BpfError} on failure. Fields not given are zero.
 */
export function bpfCommand<F extends AttrFamily>(
  cmd: BpfCmd,
  family: F,
  args: AttrArgs<F>,
  detail?: string,
  tolerate?: number,
): { result: number; out: AttrReader<F> } {
  const layout = attrLayout[family] as Record<string, readonly number[]>;
  scratch.bytes.fill(0);
  for (const [key, value] of Object.entries(args)) {
    if (value === undefined) continue;
    const field = layout[snake(key)];
    if (!field) throw new TypeError(`${family} attr has no field '${key}' on this kernel's ABI`);
    writeField(scratch.view, field, value as AttrValue, `${family}.${key}`);
  }
  let r = sysBpf(SYS_bpf, cmd, scratch.ptr, BPF_ATTR_SIZE);
  if (r < 0) {
    const e = errno();
    if (e !== tolerate) throw commandError(cmd, e, detail);
    r = -e;
  }
  return { result: r, out: readerFor(family) };
}

export type AttrReader<F extends AttrFamily> = (field: keyof Layout<F> & string) => number | bigint;
function readerFor<F extends AttrFamily>(family: F): AttrReader<F> {
  const layout = attrLayout[family] as Record<string, readonly number[]>;
  return (field) => readField(scratch.view, layout[field]!);
}

/**
 * The raw `bpf(2)` call: `attr` is the encoded `union bpf_attr` (up to the kernel's size).
 * The kernel's writes to attr are copied back. Returns the result, throws {@link BpfError}.
 */
export function bpf(cmd: BpfCmd | number, attr: Uint8Array): number {
  if (attr.length > BPF_ATTR_SIZE)
    throw new RangeError(`attr is ${attr.length} bytes; this kernel's union bpf_attr is ${BPF_ATTR_SIZE}`);
  scratch.bytes.fill(0);
  scratch.bytes.set(attr);
  const r = sysBpf(SYS_bpf, cmd, scratch.ptr, attr.length);
  if (r < 0) throw commandError(cmd, errno());
  attr.set(scratch.bytes.subarray(0, attr.length));
  return r;
}

/**
 * A field the kernel wrote into the shared attr during the last command — also after it failed,
 * for outputs such as `log_true_size` after a PROG_LOAD that ran out of log space.
 */
export function readLastAttr<F extends AttrFamily>(
  family: F,
  field: keyof Layout<F> & string,
): number | bigint {
  return readerFor(family)(field);
}
