import { attrKinds, attrLayout, BPF_ATTR_SIZE, type BpfCmd } from './abi.generated.js';
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

/** What a field holds beyond an unsigned integer: 's' a signed integer, 'c' a char array (generated). */
export type FieldKind = 's' | 'c' | undefined;

/**
 * The integer `value` as a bigint if it fits `bits` bits (signed or not); otherwise a RangeError
 * naming the field, so a value never wraps silently into another one (2**32 + 1 into a u32 is 1).
 */
function checkedInt(value: number | bigint, bits: number, signed: boolean, what: string): bigint {
  if (typeof value === 'number' && !Number.isSafeInteger(value))
    throw new RangeError(`${what} takes an integer, got ${value}`);
  if (typeof value !== 'number' && typeof value !== 'bigint')
    throw new TypeError(`${what} takes a number or bigint, got ${typeof value} ${String(value)}`);
  const v = BigInt(value);
  const min = signed ? -(1n << BigInt(bits - 1)) : 0n;
  const max = signed ? (1n << BigInt(bits - 1)) - 1n : (1n << BigInt(bits)) - 1n;
  if (v < min || v > max)
    throw new RangeError(
      `${what} takes ${signed ? 'a signed' : 'an unsigned'} ${bits}-bit integer (${min}..${max}), got ${value}`,
    );
  return v;
}

/**
 * Write one value at a field of [offset, size] (or a bitfield). The value must fit the field:
 * an integer in its range (`kind` 's' for signed fields), a string only into a char array
 * (`kind` 'c'); anything else is a RangeError or TypeError before anything reaches the kernel.
 */
export function writeField(
  view: DataView,
  field: readonly number[],
  value: AttrValue,
  what: string,
  kind?: FieldKind,
): void {
  const [off = 0, size = 0, bitOff, bits] = field;
  if (kind === 'c' || typeof value === 'string') {
    if (kind !== 'c' || typeof value !== 'string')
      throw new TypeError(
        kind === 'c'
          ? `${what} takes a string, got ${typeof value} ${String(value)}`
          : `${what} takes a number or bigint, got the string '${value}'`,
      );
    const bytes = encoder.encode(value);
    if (bytes.length >= size) throw new RangeError(`${what} takes at most ${size - 1} bytes, got '${value}'`);
    new Uint8Array(view.buffer, view.byteOffset + off, size).fill(0).set(bytes);
    return;
  }
  if (bits !== undefined && bitOff !== undefined) {
    // Bitfield: read-modify-write its storage unit (little-endian, as on x86-64/arm64).
    const v = checkedInt(value, bits, false, what);
    const unit = size === 8 ? view.getBigUint64(off, true) : BigInt(view.getUint32(off, true));
    const mask = ((1n << BigInt(bits)) - 1n) << BigInt(bitOff);
    const next = (unit & ~mask) | ((v << BigInt(bitOff)) & mask);
    if (size === 8) view.setBigUint64(off, next, true);
    else view.setUint32(off, Number(next), true);
    return;
  }
  if (size !== 1 && size !== 2 && size !== 4 && size !== 8)
    throw new RangeError(`${what}: cannot write a number into a ${size}-byte field`);
  const v = BigInt.asUintN(size * 8, checkedInt(value, size * 8, kind === 's', what));
  switch (size) {
    case 1:
      view.setUint8(off, Number(v));
      break;
    case 2:
      view.setUint16(off, Number(v), true);
      break;
    case 4:
      view.setUint32(off, Number(v), true);
      break;
    default:
      view.setBigUint64(off, v, true);
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
let scratchBuffer: NativeBuffer | undefined;
const attrScratch = (): NativeBuffer => {
  scratchBuffer ??= new NativeBuffer(BPF_ATTR_SIZE);
  return scratchBuffer;
};

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
  const kinds = attrKinds[family];
  const scratch = attrScratch();
  scratch.bytes.fill(0);
  for (const [key, value] of Object.entries(args)) {
    if (value === undefined) continue;
    const name = snake(key);
    const field = layout[name];
    if (!field) throw new TypeError(`${family} attr has no field '${key}' on this kernel's ABI`);
    writeField(scratch.view, field, value as AttrValue, `${family}.${key}`, kinds?.[name]);
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
  return (field) => readField(attrScratch().view, layout[field]!);
}

/**
 * The raw `bpf(2)` call: `attr` is the encoded `union bpf_attr` (up to the kernel's size).
 * The kernel's writes to attr are copied back. Returns the result, throws {@link BpfError}.
 */
export function bpf(cmd: BpfCmd | number, attr: Uint8Array): number {
  if (attr.length > BPF_ATTR_SIZE)
    throw new RangeError(`attr is ${attr.length} bytes; this kernel's union bpf_attr is ${BPF_ATTR_SIZE}`);
  const scratch = attrScratch();
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
