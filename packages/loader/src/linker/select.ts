// Choosing and adjusting before load, as libbpf's bpf_program__set_autoload/set_type/
// set_expected_attach_type/set_flags and bpf_map__set_max_entries/set_value_size/set_type/
// set_map_flags/set_inner_map_fd/set_autocreate do between opening an object and loading it. Pure: the object is
// never changed; adjusted copies are what the rest of loading sees.
import type { BpfMap } from '@bpfkit/maps';
import {
  type AttachType,
  type AttachTypeName,
  attachTypes,
  type MapType,
  type MapTypeName,
  mapTypes,
  type ProgType,
  type ProgTypeName,
  progTypes,
} from '@bpfkit/sys';
import type { ObjectFile, ObjectMap, ObjectProgram, PinningKind } from '../object/object.js';
import { UnknownSectionError } from '../object/sections.js';

/** A program chosen to load: it has a type. */
export type TypedProgram = ObjectProgram & { type: ProgType };

/** What to change of a program before it is loaded (default: what its section says). */
export interface ProgramOptions {
  type?: ProgType | ProgTypeName;
  attachType?: AttachType | AttachTypeName;
  /** `BPF_F_*` program flags, replacing the section's (e.g. `BPF_F_SLEEPABLE` of `.s` sections). */
  flags?: number;
}

/** What to change of a map before it is created (default: what the object defines). */
export interface MapOptions {
  type?: MapType | MapTypeName;
  maxEntries?: number;
  /** A key or value size other than the BTF type's drops that BTF type from the map. */
  keySize?: number;
  valueSize?: number;
  /** `BPF_F_*` map flags, replacing the object's. */
  flags?: number;
  /** Tells a `resolveMap` hook (such as @bpfkit/pin's) whether to pin the map by name. */
  pinning?: PinningKind;
  /** The map every inner map must match, for a map-in-map (libbpf's set_inner_map_fd); not owned. */
  innerMap?: BpfMap<unknown, unknown>;
  /**
   * `false`: the map is not created (libbpf's bpf_map__set_autocreate). As with libbpf, a program
   * that uses it loads only where that use is dead code (its references are poisoned, and a
   * reachable one fails verification with an error naming the map); a struct_ops map not
   * created registers nothing, and its programs are not loaded by default unless a created
   * struct_ops map uses them too. Default true.
   */
  autocreate?: boolean;
}

export interface SelectOptions {
  /**
   * The programs to load: names, or a predicate over every program. Default: every program
   * but those in `?`-prefixed sections (libbpf's autoload). Maps are created either way.
   */
  programs?: readonly string[] | ((program: ObjectProgram) => boolean);
  /** Per program, by name: type, attach type or flags other than its section's. */
  programOptions?: Record<string, ProgramOptions>;
  /** Per map, by name: type, sizes, flags, pinning or inner map other than the object's. */
  mapOptions?: Record<string, MapOptions>;
}

function unknownName(option: string, kind: string, name: string, known: Iterable<string>): TypeError {
  return new TypeError(`${option}: the object has no ${kind} '${name}' (${kind}s: ${[...known].join(', ')})`);
}

/**
 * The programs to load with their options applied, in object order. A chosen program whose
 * section names no program type, and that no option gives one, is an UnknownSectionError.
 */
export function selectPrograms(obj: ObjectFile, opts: SelectOptions): TypedProgram[] {
  const off = structOpsProgramsOff(obj, opts);
  for (const name of Object.keys(opts.programOptions ?? {}))
    if (!obj.programs.has(name)) throw unknownName('programOptions', 'program', name, obj.programs.keys());
  const wanted = opts.programs;
  if (Array.isArray(wanted))
    for (const name of wanted)
      if (!obj.programs.has(name)) throw unknownName('programs', 'program', name, obj.programs.keys());
  const chosen = (p: ObjectProgram) =>
    wanted === undefined
      ? p.autoload && !off.has(p.name)
      : typeof wanted === 'function'
        ? wanted(p)
        : wanted.includes(p.name);
  const out: TypedProgram[] = [];
  for (const p of obj.programs.values()) {
    if (!chosen(p)) continue;
    const maps = off.get(p.name);
    if (maps)
      throw new TypeError(
        `program '${p.name}' (section '${p.section}') serves struct_ops map${maps.length > 1 ? 's' : ''} ${maps.map((m) => `'${m}'`).join(', ')} only, which ${maps.length > 1 ? 'are' : 'is'} not created (mapOptions autocreate: false): it has no ops member to load for`,
      );
    const o = opts.programOptions?.[p.name];
    const type = o?.type !== undefined ? progTypes.toValue(o.type) : p.type;
    if (type === undefined) throw new UnknownSectionError(p.name, p.section);
    out.push({
      ...p,
      type,
      attachType: o?.attachType !== undefined ? attachTypes.toValue(o.attachType) : p.attachType,
      flags: o?.flags ?? p.flags,
    });
  }
  return out;
}

/** The maps not to create: those whose `mapOptions` say `autocreate: false`. */
export function mapsNotCreated(opts: SelectOptions): Set<string> {
  const out = new Set<string>();
  for (const [name, o] of Object.entries(opts.mapOptions ?? {})) {
    if (o.autocreate !== undefined && typeof o.autocreate !== 'boolean')
      throw new TypeError(`mapOptions.${name}.autocreate: expected a boolean, got ${String(o.autocreate)}`);
    if (o.autocreate === false) out.add(name);
  }
  return out;
}

/**
 * struct_ops programs that only struct_ops maps not created use, with those maps: as libbpf
 * (1.4+) syncs a struct_ops program's autoload with its maps' autocreate, they are not loaded.
 */
function structOpsProgramsOff(obj: ObjectFile, opts: SelectOptions): Map<string, string[]> {
  const notCreated = mapsNotCreated(opts);
  const users = new Map<string, { created: boolean; maps: string[] }>();
  for (const [name, def] of obj.maps)
    for (const prog of Object.values(def.structOps?.programs ?? {})) {
      const u = users.get(prog) ?? { created: false, maps: [] };
      if (notCreated.has(name)) u.maps.push(name);
      else u.created = true;
      users.set(prog, u);
    }
  const out = new Map<string, string[]>();
  for (const [prog, u] of users) if (!u.created) out.set(prog, u.maps);
  return out;
}

/** Every map the object defines, with its options applied (`autocreate: false` ones too). */
export function adjustMaps(
  obj: ObjectFile,
  opts: SelectOptions & { maps?: Record<string, unknown> },
): Map<string, ObjectMap> {
  for (const name of Object.keys(opts.mapOptions ?? {})) {
    if (!obj.maps.has(name)) throw unknownName('mapOptions', 'map', name, obj.maps.keys());
    if (opts.maps?.[name] !== undefined)
      throw new TypeError(
        `mapOptions.${name}: the map is given in maps, so it is not created and cannot be changed`,
      );
  }
  const out = new Map<string, ObjectMap>();
  for (const [name, def] of obj.maps) {
    const o = opts.mapOptions?.[name];
    out.set(name, o ? adjustMap(name, def, o) : def);
  }
  return out;
}

function adjustMap(name: string, def: ObjectMap, o: MapOptions): ObjectMap {
  const shape = (['type', 'maxEntries', 'keySize', 'valueSize', 'innerMap'] as const).filter(
    (k) => o[k] !== undefined,
  );
  if (def.kind !== 'map' && shape.length)
    throw new TypeError(
      `mapOptions.${name}: '${name}' holds the object's ${def.section} and has its shape (${shape.join(', ')} cannot change); only flags and pinning can`,
    );
  for (const k of ['maxEntries', 'keySize', 'valueSize', 'flags'] as const) {
    const v = o[k];
    if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v <= 0xffffffff))
      throw new RangeError(`mapOptions.${name}.${k}: expected an unsigned 32-bit integer, got ${v}`);
  }
  const keySize = o.keySize ?? def.keySize;
  const valueSize = o.valueSize ?? def.valueSize;
  return {
    ...def,
    type: o.type !== undefined ? mapTypes.toValue(o.type) : def.type,
    maxEntries: o.maxEntries ?? def.maxEntries,
    keySize,
    valueSize,
    flags: o.flags ?? def.flags,
    pinning: o.pinning ?? def.pinning,
    // A size the BTF type does not have: the map is created without that type (as libbpf's retry
    // without BTF ends up).
    btfKeyTypeId: keySize === def.keySize ? def.btfKeyTypeId : 0,
    btfValueTypeId: valueSize === def.valueSize ? def.btfValueTypeId : 0,
  };
}
