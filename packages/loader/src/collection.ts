// loadCollection: turn an ObjectFile into kernel objects the way libbpf does. The linking stage
// (linker/prepare.ts) has already resolved everything that needs no syscall; this part loads the
// fixed-up BTF, creates the maps (or reuses them through a resolveMap hook), writes global data
// and freezes .rodata, loads the programs with func/line info and fills initial program-array
// and map-in-map slots. Everything closes as one; a failure closes whatever was created.
import { CORE_POISON_IMM, encodeFuncInfo, encodeLineInfo, loadBtf } from '@bpfkit/btf';
import { BpfMap, type Codec, haveMmapableArrays, type MapSpec, u32 } from '@bpfkit/maps';
import { type Fd, MapFlags } from '@bpfkit/sys';
import { type PreparedCollection, type PrepareOptions, prepareCollection } from './linker/prepare.js';
import type { ObjectFile, ObjectMap } from './object/object.js';
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

  // Maps: inner templates first, then every map; fill global data; freeze .rodata.
  const maps: Record<string, BpfMap<unknown, unknown>> = {};
  for (const [name, def] of obj.maps) {
    const given = opts.maps?.[name];
    if (given) {
      maps[name] = given;
      continue;
    }
    const spec = mapSpec(def, btfFd, prep.codecs.get(name));
    let inner: BpfMap<unknown, unknown> | undefined;
    if (def.inner) {
      inner = BpfMap.create(mapSpec(def.inner, btfFd, prep.codecs.get(`${name}.inner`)));
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
        instructions: [...pp.insns],
        maps, // map references are filled with these maps' fds
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

function mapSpec(
  def: ObjectMap,
  btfFd: Fd | undefined,
  codecs: { key?: Codec<unknown>; value?: Codec<unknown> } | undefined,
): MapSpec<unknown, unknown> {
  const withBtf = btfFd && def.btfValueTypeId && (def.kind !== 'map' || def.btfKeyTypeId);
  return {
    type: def.type,
    key: (btfFd && codecs?.key) || (def.kind !== 'map' ? u32 : def.keySize),
    value: (btfFd && codecs?.value) || def.valueSize,
    maxEntries: def.maxEntries,
    // global data is mmap-able, as libbpf makes it, so its variables are read and written in place
    flags: def.kind === 'data' && haveMmapableArrays() ? def.flags | MapFlags.MMAPABLE : def.flags,
    name: def.name.slice(0, 15).replace(/[^\w.]/g, '_'),
    numaNode: def.numaNode,
    mapExtra: def.mapExtra,
    ...(withBtf ? { btf: { fd: btfFd, keyTypeId: def.btfKeyTypeId, valueTypeId: def.btfValueTypeId } } : {}),
  };
}
