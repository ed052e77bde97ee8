// Global data: the initial contents of .data/.rodata/.bss maps with the user's constants
// written in by their BTF types, and the .kconfig values as libbpf fills them: CONFIG_* from the
// running kernel's config (or the caller's), typed bool/char/int/tristate/char array as libbpf
// accepts them, and the virtual LINUX_* values (LINUX_HAS_BPF_COOKIE and
// LINUX_HAS_SYSCALL_WRAPPER probed, each once per process).
import { type Btf, encodeValue } from '@bpfkit/btf';
import { Helper, ProgType } from '@bpfkit/sys';
import { haveSyscallWrapper } from '../kallsyms.js';
import { kernelConfig, linuxKernelVersion } from '../kconfig.js';
import type { ObjectExtern, ObjectFile } from '../object/object.js';
import { haveHelper } from '../probes.js';
import { ExternError } from './refs.js';

export type ConstantValue = number | bigint | boolean | string | Uint8Array;

/** Global data contents with `constants` applied, and the `.kconfig` values. */
export function dataContents(
  obj: ObjectFile,
  constants: Record<string, ConstantValue>,
  kconfig?: Map<string, string>,
): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const [name, def] of obj.maps) if (def.data) out.set(name, def.data.slice());
  for (const [name, value] of Object.entries(constants)) {
    const v = obj.variables.get(name);
    if (!v)
      throw new TypeError(
        `no global variable '${name}' to set (variables: ${[...obj.variables.keys()].join(', ') || 'none'})`,
      );
    let buf = out.get(v.section);
    if (!buf) {
      // .bss: the kernel zero-fills the map; bytes are needed only once a variable is set.
      buf = new Uint8Array(obj.maps.get(v.section)!.valueSize);
      out.set(v.section, buf);
    }
    writeTyped(obj.btf!, v.typeId, new DataView(buf.buffer, buf.byteOffset + v.offset, v.size), value, name);
  }
  const kc = obj.maps.get('.kconfig');
  if (kc) {
    const buf = new Uint8Array(kc.valueSize);
    const src: KconfigSource = { extra: kconfig ?? new Map(), config: kernelConfig };
    for (const ext of obj.externs.values()) if (ext.kind === 'kconfig') writeKconfig(obj, ext, buf, src);
    out.set('.kconfig', buf);
  }
  return out;
}

/** Write a variable's value as its BTF type says (raw bytes taken as they are). */
function writeTyped(btf: Btf, typeId: number, view: DataView, value: ConstantValue, name: string): void {
  if (value instanceof Uint8Array) {
    if (value.length !== view.byteLength)
      throw new RangeError(`'${name}' is ${view.byteLength} bytes, got ${value.length}`);
    new Uint8Array(view.buffer, view.byteOffset, view.byteLength).set(value);
    return;
  }
  encodeValue(btf, typeId, view, 0, value, `'${name}'`);
}

/** What libbpf accepts a `.kconfig` extern to be, by its BTF type. */
type KconfigKind = 'bool' | 'char' | 'int' | 'tristate' | 'chars';

function kconfigKind(btf: Btf, typeId: number): { kind: KconfigKind; signed: boolean } | undefined {
  const t = btf.resolve(typeId);
  switch (t.kind) {
    case 'int':
      if (t.bool) return t.size === 1 ? { kind: 'bool', signed: false } : undefined;
      if (t.size === 1) return { kind: 'char', signed: t.signed };
      if (t.size > 8 || (t.size & (t.size - 1)) !== 0) return undefined;
      return { kind: 'int', signed: t.signed };
    case 'enum':
    case 'enum64':
      // `enum libbpf_tristate` of bpf_helpers.h: TRI_NO, TRI_YES, TRI_MODULE
      if (t.name !== 'libbpf_tristate' || (t.kind === 'enum' && t.size !== 4)) return undefined;
      return { kind: 'tristate', signed: false };
    case 'array':
      if (t.nelems === 0 || kconfigKind(btf, t.type)?.kind !== 'char') return undefined;
      return { kind: 'chars', signed: false };
    default:
      return undefined;
  }
}

/** strtoull(value, 0) as libbpf parses a number: decimal, 0x hex, 0 octal, an optional sign; all of it. */
function parseNumber(raw: string): bigint | undefined {
  const m = /^\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(raw);
  if (!m) return undefined;
  const digits = m[2]!;
  const v = /^0[0-7]+$/.test(digits) ? BigInt(`0o${digits.slice(1)}`) : BigInt(digits);
  return BigInt.asUintN(64, m[1] === '-' ? -v : v);
}

/** The kernel config's and the virtual LINUX_* values, as libbpf fills `.kconfig`. */
export interface KconfigSource {
  /** CONFIG_* values that take precedence over the kernel's (libbpf's `kconfig` option). */
  extra: Map<string, string>;
  /** The running kernel's config, read only when a CONFIG_* extern is not in `extra`. */
  config: () => Map<string, string>;
}

/** Parse `CONFIG_X=value` lines (or a record of them), as libbpf's `kconfig` option takes them. */
export function parseKconfig(text: string | Record<string, string | number | boolean>): Map<string, string> {
  const out = new Map<string, string>();
  if (typeof text !== 'string') {
    for (const [k, v] of Object.entries(text))
      out.set(k, typeof v === 'boolean' ? (v ? 'y' : 'n') : String(v));
    return out;
  }
  for (const line of text.split('\n')) {
    const l = line.trim();
    if (!l.startsWith('CONFIG_')) continue;
    const eq = l.indexOf('=');
    if (eq < 0 || eq === l.length - 1) throw new TypeError(`kconfig line '${l}' has no value`);
    out.set(l.slice(0, eq), l.slice(eq + 1));
  }
  return out;
}

function writeKconfig(obj: ObjectFile, ext: ObjectExtern, buf: Uint8Array, src: KconfigSource): void {
  const view = new DataView(buf.buffer, buf.byteOffset + ext.offset, ext.size);
  const fail = (why: string) => new ExternError(why, ext.name, '.kconfig', kconfigUsers(obj, ext));
  // Without BTF libbpf cannot type an extern; an 8-byte unsigned number is what is assumed here.
  const type = obj.btf ? kconfigKind(obj.btf, ext.typeId) : { kind: 'int' as const, signed: false };
  if (!type)
    throw fail(
      `kconfig extern '${ext.name}' has a type libbpf does not support (bool, char, int, enum libbpf_tristate or char array)`,
    );
  const num = (n: bigint, raw: string) => {
    if (type.kind === 'bool' && n > 1n) throw fail(`kconfig '${ext.name}=${raw}' is not a boolean`);
    if (type.kind !== 'int' && type.kind !== 'char' && type.kind !== 'bool')
      throw fail(`kconfig '${ext.name}=${raw}' is a number; the extern is a ${type.kind}`);
    const bits = BigInt(ext.size * 8);
    const fits =
      ext.size === 8 ||
      (type.signed ? BigInt.asUintN(64, n + (1n << (bits - 1n))) < 1n << bits : n >> bits === 0n);
    if (!fits) throw fail(`kconfig '${ext.name}=${raw}' does not fit in ${ext.size} bytes`);
    for (let i = 0; i < ext.size; i++) view.setUint8(i, Number((n >> BigInt(i * 8)) & 0xffn));
  };
  if (ext.name.startsWith('LINUX_') || !ext.name.startsWith('CONFIG_')) {
    // Virtual externs: values libbpf computes itself.
    let v: number | undefined;
    if (ext.name === 'LINUX_KERNEL_VERSION') v = linuxKernelVersion();
    else if (ext.name === 'LINUX_HAS_BPF_COOKIE')
      v = haveHelper(ProgType.TRACEPOINT, Helper.get_attach_cookie) ? 1 : 0;
    else if (ext.name === 'LINUX_HAS_SYSCALL_WRAPPER') v = haveSyscallWrapper() ? 1 : 0;
    if (v === undefined) {
      if (ext.weak && ext.name.startsWith('LINUX_')) return; // unknown but weak: zero
      throw fail(`kconfig extern '${ext.name}' is neither CONFIG_* nor a LINUX_* value libbpf provides`);
    }
    num(BigInt(v), String(v));
    return;
  }
  const raw = src.extra.get(ext.name) ?? src.config().get(ext.name);
  if (raw === undefined) {
    if (ext.weak) return; // weak and absent: zero
    throw fail(
      `kconfig extern '${ext.name}' is not set in this kernel's config (declare it __weak to default to 0)`,
    );
  }
  const c = raw[0];
  if (c === 'y' || c === 'n' || c === 'm') {
    if (type.kind === 'bool' && c !== 'm') view.setUint8(0, c === 'y' ? 1 : 0);
    else if (type.kind === 'tristate') view.setUint32(0, c === 'y' ? 1 : c === 'm' ? 2 : 0, true);
    else if (type.kind === 'char') view.setUint8(0, c.charCodeAt(0));
    else
      throw fail(
        `kconfig '${ext.name}=${raw}' is ${c === 'm' ? 'a tristate or char' : 'a bool, tristate or char'}; the extern is a ${type.kind}`,
      );
    return;
  }
  if (c === '"') {
    if (type.kind !== 'chars')
      throw fail(`kconfig '${ext.name}=${raw}' is a string; the extern is a ${type.kind}`);
    if (raw.length < 2 || !raw.endsWith('"'))
      throw fail(`kconfig '${ext.name}=${raw}' is not a valid string`);
    // truncated to fit with its NUL, as libbpf does
    const bytes = new TextEncoder().encode(raw.slice(1, -1)).subarray(0, ext.size - 1);
    new Uint8Array(view.buffer, view.byteOffset, ext.size).set(bytes);
    view.setUint8(bytes.length, 0);
    return;
  }
  const n = parseNumber(raw);
  if (n === undefined) throw fail(`kconfig '${ext.name}=${raw}' is not a valid integer`);
  if (type.kind !== 'int' && type.kind !== 'char')
    throw fail(`kconfig '${ext.name}=${raw}' is an integer; the extern is a ${type.kind}`);
  num(n, raw);
}

/** Programs whose instructions read this `.kconfig` extern. */
function kconfigUsers(obj: ObjectFile, ext: ObjectExtern): { program: string; section: string } | undefined {
  for (const p of obj.programs.values())
    for (const i of p.insns)
      if (i.ref?.kind === 'mapValue' && i.ref.name === '.kconfig' && i.ref.offset === ext.offset)
        return { program: p.name, section: p.section };
  return undefined;
}
