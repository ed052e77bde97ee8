// loadCollection: turn an ObjectFile into kernel objects the way libbpf does — BTF fixed up and
// loaded, maps created (or reused through a resolveMap hook), global data written and .rodata
// frozen, externs resolved, CO-RE relocations applied, programs loaded with func/line info,
// initial program-array and map-in-map slots filled. Everything closes as one; a failure
// closes whatever was created.
import { encode, type Insn, Pseudo } from '@bpfkit/asm';
import {
  Btf,
  BtfLookupError,
  type BtfType,
  CORE_POISON_IMM,
  type CoreRelo,
  type CoreResolution,
  encodeBtf,
  encodeFuncInfo,
  encodeLineInfo,
  loadBtf,
  patchCoreRelo,
  resolveCoreRelo,
} from '@bpfkit/btf';
import { BpfMap, type Codec, type MapSpec, u32 } from '@bpfkit/maps';
import { type Fd, NotSupportedError } from '@bpfkit/sys';
import { btfCodec } from './btfcodec.js';
import { kernelConfig, linuxKernelVersion } from './kconfig.js';
import { type ObjectExtern, ObjectFile, type ObjectMap, type ObjectProgram } from './object/object.js';
import { Program } from './program.js';
import { VerifierError } from './verifier.js';

export type ConstantValue = number | bigint | boolean | string | Uint8Array;

export interface CollectionOptions {
  /** Values for `const volatile` globals (and other .rodata/.data/.bss variables), by name, set before load. */
  constants?: Record<string, ConstantValue>;
  /** Use these maps instead of creating the object's maps of the same name. */
  maps?: Record<string, BpfMap<unknown, unknown>>;
  /**
   * Called for every map the object defines (`def.pinning` tells libbpf's pin-by-name intent).
   * Return a map to use it, or undefined to have one created from `spec`.
   */
  resolveMap?: (
    name: string,
    spec: MapSpec<unknown, unknown>,
    def: ObjectMap,
  ) => BpfMap<unknown, unknown> | undefined;
  /** Verifier log level for every program (see ProgramSpec.logLevel). */
  logLevel?: number;
  /** The BTF to relocate against (default: the running kernel's). */
  kernelBtf?: Btf;
}

/** The maps and programs of a loaded object, keyed by their names in the ELF; closes as one. */
export class Collection {
  readonly maps: Record<string, BpfMap<unknown, unknown>>;
  readonly programs: Record<string, Program>;
  readonly btf: Fd | undefined;
  readonly object: ObjectFile;
  readonly #owned: { close(): void }[];

  constructor(
    object: ObjectFile,
    maps: Record<string, BpfMap<unknown, unknown>>,
    programs: Record<string, Program>,
    btf: Fd | undefined,
    owned: { close(): void }[],
  ) {
    this.object = object;
    this.maps = maps;
    this.programs = programs;
    this.btf = btf;
    this.#owned = owned;
  }

  /** A map by name, or a clear error listing what the object has. */
  map<K = unknown, V = unknown>(name: string): BpfMap<K, V> {
    const m = this.maps[name];
    if (!m) throw new TypeError(`no map '${name}' (maps: ${Object.keys(this.maps).join(', ')})`);
    return m as BpfMap<K, V>;
  }

  program(name: string): Program {
    const p = this.programs[name];
    if (!p) throw new TypeError(`no program '${name}' (programs: ${Object.keys(this.programs).join(', ')})`);
    return p;
  }

  close(): void {
    for (const o of [...this.#owned].reverse()) o.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** A program of a {@link PreparedCollection}: instructions with externs resolved and CO-RE applied. */
export interface PreparedProgram {
  readonly object: ObjectProgram;
  /** Map references still symbolic (they need the maps' fds); everything else resolved. */
  readonly insns: readonly Insn[];
  /** CO-RE resolutions to patch into the encoded instructions, checked against them already. */
  readonly core: readonly { slot: number; relo: CoreRelo; res: CoreResolution }[];
  /** Why some instructions were poisoned (unsatisfiable CO-RE relocations). */
  readonly poisoned: readonly string[];
}

/**
 * Every pure stage of {@link loadCollection}, done and validated: global data with `constants`
 * applied, the object's BTF fixed up for the kernel, map codecs, externs and CO-RE relocations
 * resolved against the kernel's BTF. No syscall is made and nothing needs closing: malformed or
 * unsatisfiable input fails here with a typed error.
 */
export interface PreparedCollection {
  readonly object: ObjectFile;
  readonly kernel: Btf;
  /** Initial contents of global data maps; `.bss` sections appear only when `constants` set one of their variables. */
  readonly data: ReadonlyMap<string, Uint8Array>;
  /** The BTF blob to load and its parse (undefined when the object has no BTF). */
  readonly btf: { blob: Uint8Array; btf: Btf } | undefined;
  readonly codecs: ReadonlyMap<string, { key?: Codec<unknown>; value?: Codec<unknown> }>;
  readonly programs: ReadonlyMap<string, PreparedProgram>;
}

/** Run the pure stages of loading an object (see {@link PreparedCollection}); no syscalls. */
export function prepareCollection(
  objectOrPath: ObjectFile | Uint8Array | string,
  opts: CollectionOptions = {},
): PreparedCollection {
  const obj = objectOrPath instanceof ObjectFile ? objectOrPath : ObjectFile.read(objectOrPath);
  const kernel = opts.kernelBtf ?? Btf.kernel();
  const data = dataContents(obj, opts.constants ?? {});
  const btf = obj.btf ? fixObjectBtf(obj) : undefined;
  const codecs = new Map<string, { key?: Codec<unknown>; value?: Codec<unknown> }>();
  for (const [name, def] of obj.maps) {
    if (opts.maps?.[name]) continue;
    for (const d of def.inner ? [def.inner, def] : [def]) {
      const key = d.kind === 'map' ? d.btfKeyTypeId : 0;
      codecs.set(d === def ? name : `${name}.inner`, {
        ...(btf && key ? { key: typedCodec(btf.btf, key, name, 'key') } : {}),
        ...(btf && d.btfValueTypeId ? { value: typedCodec(btf.btf, d.btfValueTypeId, name, 'value') } : {}),
      });
    }
    for (const init of def.initial)
      if (!(init.kind === 'prog' ? obj.programs.has(init.name) : obj.maps.has(init.name)))
        throw new TypeError(
          `map '${name}' slot ${init.slot} refers to ${init.kind} '${init.name}', which the object does not define`,
        );
  }
  const known = (name: string) => obj.maps.has(name) || opts.maps?.[name] !== undefined;
  const programs = new Map<string, PreparedProgram>();
  for (const [name, p] of obj.programs) {
    if (obj.btf)
      for (const fi of p.funcInfo) {
        const t = fi.typeId > 0 && fi.typeId < obj.btf.typeCount ? obj.btf.typeById(fi.typeId) : undefined;
        if (t?.kind !== 'func')
          throw new BtfLookupError(
            `program '${name}': func_info at instruction ${fi.insnOff} names BTF type ${fi.typeId}, ${t ? `a ${t.kind}` : 'which does not exist'}, not a func`,
          );
      }
    const insns = resolveExterns(p.insns, kernel, obj, known);
    const placeholder = encode(withMapFds(insns, () => 0));
    const { core, poisoned } = relocate(obj, p, placeholder, kernel);
    programs.set(name, { object: p, insns, core, poisoned });
  }
  return { object: obj, kernel, data, btf, codecs, programs };
}

/** Load every map and program of a clang-built object. */
export function loadCollection(
  objectOrPath: ObjectFile | Uint8Array | string,
  opts: CollectionOptions = {},
): Collection {
  const prepared = prepareCollection(objectOrPath, opts);
  const owned: { close(): void }[] = [];
  try {
    return build(prepared, opts, owned);
  } catch (e) {
    for (const o of owned.reverse()) o.close();
    throw e;
  }
}

function build(prep: PreparedCollection, opts: CollectionOptions, owned: { close(): void }[]): Collection {
  const obj = prep.object;
  const btfFd = prep.btf ? loadBtf(prep.btf.blob, { name: obj.name }) : undefined;
  if (btfFd) owned.push(btfFd);
  const loaded = btfFd && prep.btf ? { fd: btfFd, btf: prep.btf.btf } : undefined;

  // Maps: inner templates first, then every map; fill global data; freeze .rodata.
  const maps: Record<string, BpfMap<unknown, unknown>> = {};
  for (const [name, def] of obj.maps) {
    const given = opts.maps?.[name];
    if (given) {
      maps[name] = given;
      continue;
    }
    const spec = mapSpec(def, loaded, prep.codecs.get(name));
    let inner: BpfMap<unknown, unknown> | undefined;
    if (def.inner) {
      inner = BpfMap.create(mapSpec(def.inner, loaded, prep.codecs.get(`${name}.inner`)));
      spec.innerMap = inner;
    }
    try {
      const resolved = opts.resolveMap?.(name, spec, def);
      const m = resolved ?? BpfMap.create(spec);
      maps[name] = m;
      owned.push(m);
    } finally {
      inner?.close();
    }
    const contents = prep.data.get(name);
    if (contents) maps[name]!.setBytes(new Uint8Array(4), contents);
    if (def.readonly && def.kind !== 'map') maps[name]!.freeze();
  }

  // Programs.
  const programs: Record<string, Program> = {};
  for (const [name, pp] of prep.programs) {
    const p = pp.object;
    const bytes = encode(
      withMapFds(pp.insns, (ref, i) => {
        const m = maps[ref];
        if (!m) throw new TypeError(`instruction ${i}: map '${ref}' was not created`);
        return m.fd.value;
      }),
    );
    for (const { slot, relo, res } of pp.core) patchCoreRelo(bytes, slot * 8, relo, res);
    const btf =
      btfFd && obj.btfExt
        ? {
            fd: btfFd,
            funcInfo: encodeFuncInfo(p.funcInfo),
            funcInfoRecSize: 8,
            lineInfo: p.lineInfo.length ? encodeLineInfo(p.lineInfo) : undefined,
            lineInfoRecSize: 16,
          }
        : undefined;
    try {
      const prog = Program.load({
        type: p.type,
        instructions: bytes,
        license: obj.license, // no license section: no license, never an assumed GPL
        name: name.slice(0, 15).replace(/[^\w.]/g, '_'),
        ...(p.attachType !== undefined ? { attachType: p.attachType } : {}),
        flags: p.flags,
        kernVersion: obj.kernVersion,
        ...(btf ? { btf } : {}),
        ...(opts.logLevel ? { logLevel: opts.logLevel } : {}),
      });
      programs[name] = prog;
      owned.push(prog);
    } catch (e) {
      if (e instanceof VerifierError && pp.poisoned.length && e.log.includes(String(CORE_POISON_IMM)))
        e.message += `\nCO-RE relocations that could not be satisfied on this kernel:\n  ${pp.poisoned.join('\n  ')}`;
      throw e;
    }
  }

  // Initial slots of program arrays and map-in-maps (checked by prepareCollection).
  for (const [name, def] of obj.maps) {
    for (const init of def.initial) {
      const target = init.kind === 'prog' ? programs[init.name] : maps[init.name];
      if (!target)
        throw new TypeError(`map '${name}' slot ${init.slot} refers to '${init.name}', which was not loaded`);
      maps[name]!.set(init.slot as never, target as never);
    }
  }
  return new Collection(obj, maps, programs, btfFd, owned);
}

/** A codec for a map's key or value type, or a typed error naming the map. */
function typedCodec(btf: Btf, id: number, map: string, what: string): Codec<unknown> {
  try {
    return btfCodec(btf, id);
  } catch (e) {
    if (e instanceof BtfLookupError)
      throw new BtfLookupError(`map '${map}' ${what} (BTF type ${id}): ${e.message}`);
    throw e;
  }
}

function mapSpec(
  def: ObjectMap,
  loaded: { fd: Fd; btf: Btf } | undefined,
  codecs: { key?: Codec<unknown>; value?: Codec<unknown> } | undefined,
): MapSpec<unknown, unknown> {
  const btfFd = loaded?.fd;
  const withBtf = btfFd && def.btfValueTypeId && (def.kind !== 'map' || def.btfKeyTypeId);
  return {
    type: def.type,
    key: (btfFd && codecs?.key) || (def.kind !== 'map' ? u32 : def.keySize),
    value: (btfFd && codecs?.value) || def.valueSize,
    maxEntries: def.maxEntries,
    flags: def.flags,
    name: def.name.slice(0, 15).replace(/[^\w.]/g, '_'),
    numaNode: def.numaNode,
    mapExtra: def.mapExtra,
    ...(withBtf ? { btf: { fd: btfFd, keyTypeId: def.btfKeyTypeId, valueTypeId: def.btfValueTypeId } } : {}),
  };
}

/** Global data contents with `constants` applied, and the `.kconfig` values. */
function dataContents(obj: ObjectFile, constants: Record<string, ConstantValue>): Map<string, Uint8Array> {
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

function writeTyped(btf: Btf, typeId: number, view: DataView, value: ConstantValue, name: string): void {
  const t = btf.resolve(typeId);
  const size = view.byteLength;
  if (value instanceof Uint8Array) {
    if (value.length !== size) throw new RangeError(`'${name}' is ${size} bytes, got ${value.length}`);
    new Uint8Array(view.buffer, view.byteOffset, size).set(value);
    return;
  }
  if (typeof value === 'string') {
    const bytes = new TextEncoder().encode(value);
    if (t.kind !== 'array' || bytes.length >= size)
      throw new TypeError(`'${name}' is not a char[${size}] that can hold '${value}'`);
    new Uint8Array(view.buffer, view.byteOffset, size).fill(0).set(bytes);
    return;
  }
  if (t.kind !== 'int' && t.kind !== 'enum' && t.kind !== 'enum64')
    throw new TypeError(`'${name}' is a ${t.kind}; pass its bytes as a Uint8Array`);
  const signed = t.kind === 'int' ? t.signed : t.signed;
  const n = typeof value === 'boolean' ? (value ? 1n : 0n) : BigInt(value);
  const bits = BigInt(size * 8);
  const min = signed ? -(1n << (bits - 1n)) : 0n;
  const max = signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
  if (n < min || n > max)
    throw new RangeError(`'${name}' (${size * 8}-bit ${signed ? 'signed' : 'unsigned'}) cannot hold ${n}`);
  const u = BigInt.asUintN(size * 8, n);
  for (let i = 0; i < size; i++) view.setUint8(i, Number((u >> BigInt(8 * i)) & 0xffn));
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

/** The object's BTF made acceptable to the kernel (datasec sizes and offsets, externs): the blob and its parse. */
function fixObjectBtf(obj: ObjectFile): { blob: Uint8Array; btf: Btf } {
  const btf = obj.btf!;
  const types = structuredClone([...btf.types()]) as BtfType[];
  let intId = types.find((t) => t.kind === 'int' && t.name === 'int' && t.size === 4)?.id;
  if (intId === undefined) {
    intId = types.length + 1;
    types.push({
      kind: 'int',
      id: intId,
      name: 'int',
      size: 4,
      signed: true,
      char: false,
      bool: false,
      bits: 32,
      offset: 0,
    });
  }
  const byId = (id: number, what: () => string): BtfType => {
    const t = types[id - 1];
    if (!t || id === 0) throw new BtfLookupError(`${what()} refers to BTF type ${id}, which does not exist`);
    return t;
  };
  // Kernel-function externs become global functions with named parameters; their .ksyms slots
  // point at a dummy variable (as libbpf does).
  const dummyId = types.length + 1;
  types.push({ kind: 'var', id: dummyId, name: '__bpfkit_ksym', type: intId, linkage: 1 });
  for (const t of types) {
    if (t.kind !== 'func' || t.linkage !== 2) continue;
    t.linkage = 1;
    const proto = byId(t.type, () => `extern function '${t.name}' (BTF type ${t.id})`);
    if (proto.kind === 'func_proto')
      for (const p of proto.params) if (p.type && !p.name) p.name = '__bpfkit_arg';
  }
  for (const t of types) {
    if (t.kind !== 'datasec') continue;
    if (t.name === '.ksyms') {
      t.vars.forEach((v, i) => {
        const vt = byId(v.type, () => `.ksyms variable #${i}`);
        if (vt.kind === 'func') v.type = dummyId;
        else if (vt.kind === 'var') {
          vt.linkage = 1;
          vt.type = intId!;
        }
        v.offset = i * 4;
        v.size = 4;
      });
      t.size = t.vars.length * 4;
      continue;
    }
    if (t.name === '.kconfig') {
      for (const v of t.vars) {
        const vt = byId(v.type, () => 'a .kconfig variable');
        if (vt.kind !== 'var') continue;
        vt.linkage = 1;
        v.offset = obj.externs.get(vt.name)?.offset ?? v.offset;
      }
      t.vars.sort((a, b) => a.offset - b.offset);
      t.size = obj.maps.get('.kconfig')?.valueSize ?? t.size;
      continue;
    }
    const sec = obj.elf.section(t.name);
    if (!sec) continue;
    t.size = sec.size;
    for (const v of t.vars) {
      const vt = byId(v.type, () => `a variable of datasec '${t.name}'`);
      if (vt.kind !== 'var') continue;
      const sym = obj.elf.symbols.find((s) => s.name === vt.name && s.shndx === sec.index);
      if (sym) v.offset = sym.value;
      if (vt.linkage === 2) vt.linkage = 1;
    }
    t.vars.sort((a, b) => a.offset - b.offset);
  }
  const blob = encodeBtf(types, btf.raw.strings);
  return { blob, btf: Btf.parse(blob) };
}

/** Resolve ksym and kfunc references against the kernel's BTF; map references stay symbolic (checked by `known`). */
function resolveExterns(
  insns: readonly Insn[],
  kernel: Btf,
  obj: ObjectFile,
  known: (map: string) => boolean,
): Insn[] {
  return insns.map((insn, i) => {
    const ref = insn.ref;
    if (!ref) return insn;
    switch (ref.kind) {
      case 'map':
      case 'mapValue':
        if (!known(ref.name)) throw new TypeError(`instruction ${i}: map '${ref.name}' is not in the object`);
        return insn;
      case 'ksym': {
        const v = kernel.findAll(ref.name, 'var')[0];
        if (!v) {
          if (obj.externs.get(ref.name)?.weak) return { ...insn, src: 0, imm: 0, imm64Hi: 0, ref: undefined };
          throw new TypeError(`__ksym '${ref.name}' is not a variable in the kernel's BTF`);
        }
        return { ...insn, src: Pseudo.BTF_ID, imm: v.id, imm64Hi: 0, ref: undefined };
      }
      case 'kfunc': {
        const f = kernel.findAll(ref.name, 'func')[0];
        if (!f) throw new NotSupportedError(`kfunc ${ref.name} (not in this kernel's BTF)`);
        return { ...insn, src: Pseudo.KFUNC_CALL, imm: f.id, off: 0, ref: undefined };
      }
      default:
        return insn;
    }
  });
}

/** Map and map-value references with the maps' fds. */
function withMapFds(insns: readonly Insn[], fdOf: (name: string, i: number) => number): Insn[] {
  return insns.map((insn, i) => {
    const ref = insn.ref;
    if (ref?.kind === 'map') return { ...insn, src: Pseudo.MAP_FD, imm: fdOf(ref.name, i), ref: undefined };
    if (ref?.kind === 'mapValue')
      return {
        ...insn,
        src: Pseudo.MAP_VALUE,
        imm: fdOf(ref.name, i),
        imm64Hi: ref.offset,
        ref: undefined,
      };
    return insn;
  });
}

/**
 * Resolve CO-RE relocations and patch them into `bytes` (which checks each against its
 * instruction); returns the resolutions and the reasons for any poisoned ones.
 */
function relocate(
  obj: ObjectFile,
  p: ObjectProgram,
  bytes: Uint8Array,
  kernel: Btf,
): { core: { slot: number; relo: CoreRelo; res: CoreResolution }[]; poisoned: string[] } {
  const poisoned: string[] = [];
  const core: { slot: number; relo: CoreRelo; res: CoreResolution }[] = [];
  if (!obj.btf) return { core, poisoned };
  for (const { slot, relo } of p.coreRelos) {
    const res = resolveCoreRelo(obj.btf, kernel, relo);
    patchCoreRelo(bytes, slot * 8, relo, res);
    core.push({ slot, relo, res });
    if (res.poison) poisoned.push(`instruction ${slot}: ${res.reason}`);
  }
  return { core, poisoned };
}
