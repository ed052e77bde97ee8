// Global data: the initial contents of .data/.rodata/.bss maps with the user's constants
// written in by their BTF types, and the .kconfig values from the running kernel's config.
import { type Btf, encodeValue } from '@bpfkit/btf';
import { kernelConfig, linuxKernelVersion } from '../kconfig.js';
import type { ObjectExtern, ObjectFile } from '../object/object.js';

export type ConstantValue = number | bigint | boolean | string | Uint8Array;

/** Global data contents with `constants` applied, and the `.kconfig` values. */
export function dataContents(
  obj: ObjectFile,
  constants: Record<string, ConstantValue>,
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
    const config = kernelConfig();
    for (const ext of obj.externs.values()) if (ext.kind === 'kconfig') writeKconfig(obj, ext, buf, config);
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

function writeKconfig(
  obj: ObjectFile,
  ext: ObjectExtern,
  buf: Uint8Array,
  config: Map<string, string>,
): void {
  const view = new DataView(buf.buffer, buf.byteOffset + ext.offset, ext.size);
  let raw: string | undefined;
  if (ext.name === 'LINUX_KERNEL_VERSION') raw = String(linuxKernelVersion());
  else if (ext.name === 'LINUX_HAS_SYSCALL_WRAPPER') raw = '1';
  else raw = config.get(ext.name);
  if (raw === undefined) {
    if (ext.weak) return; // weak and absent: zero
    throw new TypeError(
      `kconfig extern '${ext.name}' is not set in this kernel's config (declare it __weak to default to 0)`,
    );
  }
  if (!obj.btf) {
    // No BTF to type the extern: an 8-byte value, as libbpf assumes.
    if (ext.size !== 8) throw new TypeError(`kconfig extern '${ext.name}' has no BTF type`);
  }
  const t = obj.btf?.resolve(ext.typeId);
  if (t?.kind === 'array') {
    const s = raw.replace(/^"|"$/g, '');
    writeTyped(obj.btf!, ext.typeId, view, s.slice(0, ext.size - 1), ext.name);
    return;
  }
  const n =
    raw === 'y'
      ? 1n
      : raw === 'm'
        ? 2n
        : raw === 'n'
          ? 0n
          : /^-?(0x[0-9a-f]+|\d+)$/i.test(raw)
            ? BigInt(raw)
            : undefined;
  if (n === undefined) throw new TypeError(`kconfig '${ext.name}=${raw}' is not a number or y/m/n`);
  if (!obj.btf) view.setBigUint64(0, BigInt.asUintN(64, n), true);
  else writeTyped(obj.btf, ext.typeId, view, n, ext.name);
}
