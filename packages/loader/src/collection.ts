// loadCollection: turn an ObjectFile into kernel objects the way libbpf does. The linking stage
// (linker/prepare.ts) has already resolved everything that needs no syscall; this part loads the
// fixed-up BTF, creates the maps (or reuses them through a resolveMap hook), writes global data
// and freezes .rodata, loads the programs with func/line info and fills initial program-array
// and map-in-map slots. Everything closes as one; a failure closes whatever was created.
import {
  ALL_BTF_FEATURES,
  BtfLoadError,
  CORE_POISON_IMM,
  encodeFuncInfo,
  encodeLineInfo,
  kernelBtfFeatures,
  loadBtf,
} from '@bpfkit/btf';
import {
  BpfMap,
  type Codec,
  checkCodec,
  haveMmapableArrays,
  type MapSpec,
  possibleCpus,
  takesKeyValueBtf,
  u32,
} from '@bpfkit/maps';
import { BpfError, type Fd, kernelOlderThan, MapFlags, MapType, NotSupportedError } from '@bpfkit/sys';
import { kernelBtfFdById, programFuncBtfId } from './attach-to.js';
import {
  type PreparedCollection,
  type PreparedProgram,
  type PrepareOptions,
  prepareCollection,
} from './linker/prepare.js';
import { KFUNC_POISON_BASE, MAP_POISON_BASE, poisonMapRefs } from './linker/refs.js';
import { AttachTargetError } from './linker/targets.js';
import { ObjectFile, type ObjectMap } from './object/object.js';
import { Program } from './program.js';
import { VerifierError } from './verifier.js';

export interface CollectionOptions extends PrepareOptions {
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
}

/** A struct_ops map's table, ready to register: the value with the loaded programs' fds in its slots. */
export interface CollectionStructOps {
  /** The kernel's ops type (`tcp_congestion_ops`). */
  readonly type: string;
  /** Made with BPF_F_LINK (`.struct_ops.link`): registered through a struct_ops link. */
  readonly link: boolean;
  /** The map value (`bpf_struct_ops_<type>`) to write. */
  readonly value: Uint8Array;
}

/** The first kernel with struct_ops links (`.struct_ops.link` maps are made with BPF_F_LINK). */
export const STRUCT_OPS_LINK_SINCE = '6.4';

/** The maps and programs of a loaded object, keyed by their names in the ELF; closes as one. */
export class Collection {
  readonly maps: Record<string, BpfMap<unknown, unknown>>;
  readonly programs: Record<string, Program>;
  /**
   * The struct_ops maps' tables, by map name: created, not registered — as with libbpf, a table is
   * registered when attached (@bpfkit/link's `attachStructOps`, or `attachCollection`).
   */
  readonly structOps: Readonly<Record<string, CollectionStructOps>>;
  readonly btf: Fd | undefined;
  readonly object: ObjectFile;
  readonly #owned: { close(): void }[];

  constructor(
    object: ObjectFile,
    maps: Record<string, BpfMap<unknown, unknown>>,
    programs: Record<string, Program>,
    btf: Fd | undefined,
    owned: { close(): void }[],
    structOps: Record<string, CollectionStructOps> = {},
  ) {
    this.structOps = structOps;
    this.object = object;
    this.maps = maps;
    this.programs = programs;
    this.btf = btf;
    this.#owned = owned;
  }

  /**
   * A map by name, or a clear error listing what the object has. With `codecs`, a view of it that
   * reads keys and values with those codecs — checked first against the map's BTF types where the
   * object has them (`checkCodec`: sizes, integer widths, struct field offsets), otherwise against
   * its key and value sizes. The view shares the map and closes with the collection.
   */
  map<K = unknown, V = unknown>(name: string, codecs?: { key?: Codec<K>; value?: Codec<V> }): BpfMap<K, V> {
    const m = this.maps[name];
    if (!m && this.object.maps.has(name))
      throw new TypeError(`map '${name}' was not created (mapOptions autocreate: false)`);
    if (!m) throw new TypeError(`no map '${name}' (maps: ${Object.keys(this.maps).join(', ')})`);
    if (!codecs || (!codecs.key && !codecs.value)) return m as BpfMap<K, V>;
    const def = this.object.maps.get(name);
    const btf = this.object.btf;
    if (btf && def) {
      if (codecs.key && def.btfKeyTypeId) checkCodec(codecs.key, btf, def.btfKeyTypeId, `map '${name}' key`);
      if (codecs.value && def.btfValueTypeId)
        checkCodec(codecs.value, btf, def.btfValueTypeId, `map '${name}' value`);
    }
    // one view per map and codec pair: a second call returns it, instead of dup'ing another fd
    const views = this.#views.get(name) ?? [];
    const cached = views.find((v) => v.key === codecs.key && v.value === codecs.value && !v.view.fd.closed);
    if (cached) return cached.view as BpfMap<K, V>;
    const view = BpfMap.fromFd<K, V>(m.fd.dup(), codecs);
    this.#owned.push(view);
    this.#views.set(name, [...views.filter((v) => !v.view.fd.closed), { ...codecs, view }]);
    return view;
  }
  readonly #views = new Map<
    string,
    { key?: Codec<unknown>; value?: Codec<unknown>; view: BpfMap<unknown, unknown> }[]
  >();

  program(name: string): Program {
    const p = this.programs[name];
    if (!p && this.object.programs.has(name))
      throw new TypeError(
        `program '${name}' was not loaded: it was not chosen (a '?' section, or the programs option)`,
      );
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

/**
 * Load a clang-built object: every map it defines, and the programs chosen by `programs`
 * (default: all but those in `?` sections), adjusted by `programOptions` and `mapOptions`.
 */
export function loadCollection(
  objectOrPath: ObjectFile | Uint8Array | string,
  opts: CollectionOptions = {},
): Collection {
  const obj = objectOrPath instanceof ObjectFile ? objectOrPath : ObjectFile.read(objectOrPath);
  // What the kernel's BTF loader accepts decides how the object's BTF is sanitised (probed once).
  const btfFeatures = opts.btfFeatures ?? (obj.btf ? kernelBtfFeatures() : ALL_BTF_FEATURES);
  const prepared = prepareCollection(obj, { ...opts, btfFeatures });
  const owned: { close(): void }[] = [];
  try {
    return build(prepared, { ...opts, btfFeatures }, owned);
  } catch (e) {
    for (const o of owned.reverse()) o.close();
    throw e;
  }
}

function build(prep: PreparedCollection, opts: CollectionOptions, owned: { close(): void }[]): Collection {
  const obj = prep.object;
  // Attach targets that need the kernel's objects, looked up before anything is created.
  const targets = new Map<string, TargetAttrs>();
  const targetModules = new Map<string, Fd>();
  for (const [name, pp] of prep.programs) {
    const attrs = targetAttrs(pp, targetModules, owned);
    if (attrs) targets.set(name, attrs);
  }
  const features = opts.btfFeatures ?? ALL_BTF_FEATURES;
  for (const name of prep.structOps.keys()) {
    const def = prep.maps.get(name)!;
    if (def.flags & MapFlags.LINK && kernelOlderThan(STRUCT_OPS_LINK_SINCE))
      throw new NotSupportedError(
        `struct_ops links (map '${name}' of section ${def.section})`,
        STRUCT_OPS_LINK_SINCE,
      );
    if (!prep.btf || !features.btf)
      throw new NotSupportedError(`struct_ops map '${name}' without BTF (the kernel needs the object's BTF)`);
  }
  if (prep.btf && !features.btf) warnNoBtf();
  // struct_ops maps need the object's BTF: a kernel that refuses it fails the load, as libbpf's
  // "BTF is mandatory, can't proceed"
  const needsBtf = prep.structOps.keys().next().value;
  const btfFd = prep.btf && features.btf ? loadObjectBtf(prep.btf.blob, obj.name, needsBtf) : undefined;
  if (btfFd) owned.push(btfFd);

  // Maps: inner templates first, then every map; fill global data; freeze .rodata.
  const maps: Record<string, BpfMap<unknown, unknown>> = {};
  for (const [name, def] of prep.maps) {
    const given = opts.maps?.[name];
    if (given) {
      maps[name] = given;
      continue;
    }
    const ops = prep.structOps.get(name);
    if (ops) {
      if (!btfFd)
        throw new NotSupportedError(`struct_ops map '${name}' without the object's BTF, which it needs`);
      // as libbpf creates them: the object's BTF, no key/value type, the kernel's value type
      const m = BpfMap.create({
        type: MapType.STRUCT_OPS,
        key: 4,
        value: ops.valueSize,
        maxEntries: 1,
        flags: def.flags,
        name: def.name.slice(0, 15).replace(/[^\w.]/g, '_'),
        btf: { fd: btfFd, keyTypeId: 0, valueTypeId: 0, vmlinuxValueTypeId: ops.valueTypeId },
      });
      maps[name] = m;
      owned.push(m);
      continue;
    }
    // Global data maps are typed by a DATASEC: a kernel without DATASEC gets them without BTF.
    const spec = mapSpec(
      def,
      def.kind === 'map' || features.datasec ? btfFd : undefined,
      prep.codecs.get(name),
    );
    let inner: BpfMap<unknown, unknown> | undefined;
    const givenInner = opts.mapOptions?.[name]?.innerMap;
    if (givenInner) spec.innerMap = givenInner;
    else if (def.inner) {
      inner = createMap(mapSpec(def.inner, btfFd, prep.codecs.get(`${name}.inner`)));
      spec.innerMap = inner;
    }
    try {
      const resolved = opts.resolveMap?.(name, spec, def);
      const m = resolved ?? createMap(spec);
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
  const mapIndex = [...obj.maps.keys()];
  // Module BTF objects named by kfunc calls (fd_array) and ksym loads, open while programs load.
  const moduleFds = new Map<number, Fd>();
  try {
    for (const [name, pp] of prep.programs) {
      const p = pp.object;
      const btfObjects = pp.btfObjects.map((m) => {
        let fd = moduleFds.get(m.id);
        if (!fd) {
          fd = kernelBtfFdById(m.id);
          if (!fd)
            throw new Error(
              `program '${p.name}' in section '${p.section}': the BTF object of module '${m.name}' (id ${m.id}) is gone (the module was unloaded)`,
            );
          moduleFds.set(m.id, fd);
        }
        return fd;
      });
      const filled = [...pp.insns];
      for (const { insn, object } of pp.btfObjectFds)
        filled[insn] = { ...filled[insn]!, imm64Hi: btfObjects[object]!.value };
      // references to maps not created: poisoned as libbpf does (they load only as dead code)
      const { insns, maps: poisonedMaps } = poisonMapRefs(filled, prep.notCreated, (m) =>
        mapIndex.indexOf(m),
      );
      // func/line info only where the kernel knows BTF functions (libbpf's FEAT_BTF_FUNC)
      const btf =
        btfFd && obj.btfExt && features.func
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
          instructions: insns,
          maps, // map references are filled with these maps' fds
          license: obj.license, // no license section: no license, never an assumed GPL
          name: name.slice(0, 15).replace(/[^\w.]/g, '_'),
          ...(p.attachType !== undefined ? { attachType: p.attachType } : {}),
          flags: p.flags,
          ...targets.get(name),
          kernVersion: obj.kernVersion,
          ...(btf ? { btf } : {}),
          ...(opts.logLevel ? { logLevel: opts.logLevel } : {}),
          // fd_array[0] is never named (off 0 is vmlinux): the first module's fd stands there
          ...(btfObjects.length ? { fdArray: [btfObjects[0]!, ...btfObjects] } : {}),
        });
        programs[name] = prog;
        owned.push(prog);
      } catch (e) {
        if (e instanceof VerifierError && pp.poisoned.length && e.log.includes(String(CORE_POISON_IMM)))
          e.message += `\nCO-RE relocations that could not be satisfied on this kernel:\n  ${pp.poisoned.join('\n  ')}`;
        if (
          e instanceof VerifierError &&
          pp.missingKfuncs.length &&
          e.log.includes(`unknown#${String(KFUNC_POISON_BASE).slice(0, 4)}`)
        )
          e.message += `\nweak kfuncs this kernel does not have, called where bpf_ksym_exists() does not rule it out:\n  ${pp.missingKfuncs.join('\n  ')}`;
        const log = e instanceof VerifierError ? e.log : '';
        const uncreated = poisonedMaps.filter((m) =>
          log.includes(`unknown#${MAP_POISON_BASE + mapIndex.indexOf(m)}`),
        );
        if (e instanceof VerifierError && uncreated.length) {
          e.message += `\nmaps this program uses but that were not created (mapOptions autocreate: false): ${uncreated.map((m) => `'${m}'`).join(', ')}`;
          Object.defineProperty(e, 'notCreatedMaps', { value: uncreated, enumerable: true });
        }
        throw forProgram(e, name, p.section);
      }
    }
  } finally {
    for (const fd of moduleFds.values()) fd.close();
  }

  // Initial slots of program arrays and map-in-maps (checked by prepareCollection).
  for (const [name, def] of prep.maps) {
    for (const init of def.initial) {
      const target = init.kind === 'prog' ? programs[init.name] : maps[init.name];
      if (!target)
        throw new TypeError(`map '${name}' slot ${init.slot} refers to '${init.name}', which was not loaded`);
      maps[name]!.set(init.slot as never, target as never);
    }
  }
  // struct_ops tables: the loaded programs' fds in their slots
  const structOps: Record<string, CollectionStructOps> = {};
  for (const [name, ops] of prep.structOps) {
    const value = ops.value.slice();
    const view = new DataView(value.buffer);
    for (const { offset, program } of ops.slots) {
      const prog = programs[program];
      if (!prog)
        throw new TypeError(
          `struct_ops map '${name}' needs program '${program}', which was not loaded (it was not chosen)`,
        );
      view.setBigUint64(offset, BigInt(prog.fd.value), true);
    }
    structOps[name] = { type: ops.typeName, link: (prep.maps.get(name)!.flags & MapFlags.LINK) !== 0, value };
  }
  return new Collection(obj, maps, programs, btfFd, owned, structOps);
}

/**
 * A program's load failure: the kernel's error (class, errno, log kept) naming the program and
 * its section, and the maps it uses that were not created (`autocreate: false`) where the
 * verifier stopped at one of them.
 */
export type ProgramLoadError = BpfError & {
  readonly program: string;
  readonly section: string;
  readonly notCreatedMaps?: readonly string[];
};

function forProgram(e: unknown, program: string, section: string): unknown {
  if (!(e instanceof BpfError)) return e;
  e.message = `program '${program}' (section '${section}'): ${e.message}`;
  Object.defineProperties(e, {
    program: { value: program, enumerable: true },
    section: { value: section, enumerable: true },
  });
  return e as ProgramLoadError;
}

/**
 * A map's creation spec as libbpf makes it: a perf event array without `max_entries` gets one
 * slot per possible CPU; key/value BTF is sent when the object has it, except for the map types
 * libbpf creates without it (`takesKeyValueBtf`).
 */
function mapSpec(
  def: ObjectMap,
  btfFd: Fd | undefined,
  codecs: { key?: Codec<unknown>; value?: Codec<unknown> } | undefined,
): MapSpec<unknown, unknown> {
  const withBtf = btfFd && takesKeyValueBtf(def.type) && (def.btfKeyTypeId !== 0 || def.btfValueTypeId !== 0);
  const maxEntries =
    def.type === MapType.PERF_EVENT_ARRAY && def.maxEntries === 0 ? possibleCpus() : def.maxEntries;
  return {
    type: def.type,
    key: (btfFd && codecs?.key) || (def.kind !== 'map' ? u32 : def.keySize),
    value: (btfFd && codecs?.value) || def.valueSize,
    maxEntries,
    // global data is mmap-able, as libbpf makes it, so its variables are read and written in place
    flags: def.kind !== 'map' && haveMmapableArrays() ? def.flags | MapFlags.MMAPABLE : def.flags,
    name: def.name.slice(0, 15).replace(/[^\w.]/g, '_'),
    numaNode: def.numaNode,
    mapExtra: def.mapExtra,
    ...(withBtf ? { btf: { fd: btfFd, keyTypeId: def.btfKeyTypeId, valueTypeId: def.btfValueTypeId } } : {}),
  };
}

/**
 * Create a map; when the kernel refuses it with key/value BTF, create it again without (as libbpf
 * does: kernels differ in which map types and value types they accept BTF for). A map that fails
 * without BTF too reports that failure, its own.
 */
function createMap(spec: MapSpec<unknown, unknown>): BpfMap<unknown, unknown> {
  try {
    return BpfMap.create(spec);
  } catch (e) {
    if (!spec.btf || !(e instanceof BpfError) || e.code === 'EPERM') throw e;
    const { btf: _, ...bare } = spec;
    return BpfMap.create(bare);
  }
}

type TargetAttrs = { attachBtfId: number; attachBtfObjFd?: Fd; attachProgFd?: Fd };

/**
 * The load attributes of a program's attach target: the BTF id, with the module's BTF object
 * (kept in `moduleFds`, owned by the collection) or the target program for targets outside vmlinux.
 */
function targetAttrs(
  pp: PreparedProgram,
  moduleFds: Map<string, Fd>,
  owned: { close(): void }[],
): TargetAttrs | undefined {
  const t = pp.target;
  if (!t) return undefined;
  const p = pp.object;
  if (t.kind === 'kernel') {
    if (t.module === undefined) return { attachBtfId: t.btfId };
    let fd = moduleFds.get(t.module);
    if (!fd) {
      fd = kernelBtfFdById(t.moduleId!);
      if (!fd)
        throw new AttachTargetError(
          p.name,
          p.section,
          `${t.module}:${t.typeName}`,
          `is in module '${t.module}', whose BTF object the kernel does not list`,
        );
      moduleFds.set(t.module, fd);
      owned.push(fd);
    }
    return { attachBtfId: t.btfId, attachBtfObjFd: fd };
  }
  const r = programFuncBtfId(t.program, t.func);
  if ('reason' in r) throw new AttachTargetError(p.name, p.section, t.func, r.reason);
  return { attachBtfId: r.id, attachProgFd: r.progFd };
}

/**
 * The object's (sanitised) BTF, or undefined where the kernel refuses it: then, as libbpf does
 * ("BTF is optional, ignoring"), the object loads without it — no func/line info, maps without
 * key/value BTF — and a warning says so, once per object name. Unless struct_ops map `neededBy`
 * needs it: then the kernel's refusal (a BtfLoadError) is the load's error, naming that map.
 */
function loadObjectBtf(blob: Uint8Array, name: string, neededBy: string | undefined): Fd | undefined {
  try {
    return loadBtf(blob, { name });
  } catch (e) {
    if (!(e instanceof BtfLoadError)) throw e; // EPERM: no privilege, which no fallback mends
    if (neededBy !== undefined) {
      e.message = `struct_ops map '${neededBy}' needs the object's BTF, which the kernel refused: ${e.message}`;
      throw e;
    }
    if (!warnedBtfRefused.has(name)) {
      warnedBtfRefused.add(name);
      const log = e.log.trim().split('\n').at(-1);
      process.emitWarning(
        `the kernel refused the BTF of ${name} (BPF_BTF_LOAD: ${e.code}${log ? `, ${log}` : ''}): it loads without it, so without func/line info in verifier logs and without BTF-typed maps`,
        { code: 'BPFKIT_BTF_REFUSED' },
      );
    }
    return undefined;
  }
}
const warnedBtfRefused = new Set<string>();

let warnedNoBtf = false;
/** Said once per process: the kernel takes no BTF, so programs load without func/line info. */
function warnNoBtf(): void {
  if (warnedNoBtf) return;
  warnedNoBtf = true;
  process.emitWarning(
    'this kernel does not support BTF (BPF_BTF_LOAD): objects load without their BTF, so without func/line info in verifier logs and without BTF-typed maps',
    { code: 'BPFKIT_NO_BTF' },
  );
}
