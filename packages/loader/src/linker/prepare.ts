// The linking stage: everything between reading an object and making syscalls, done and
// validated up front — global data with constants applied, the object's BTF fixed up for the
// kernel, map codecs from BTF, externs resolved and CO-RE relocations applied to each program's
// instructions. Pure but for reads of kernel facts it cannot do without, each once: the kernel
// config, /proc/kallsyms and the cached probe behind LINUX_HAS_BPF_COOKIE when an object names
// them, module BTFs when vmlinux lacks an extern; nothing needs closing.
import type { Insn } from '@bpfkit/asm';
import {
  applyCoreRelos,
  Btf,
  type BtfFeatures,
  BtfLookupError,
  type CoreRelo,
  type CoreResolution,
  kernelModuleBtfs,
  type ModuleBtf,
} from '@bpfkit/btf';
import { btfCodec, type Codec } from '@bpfkit/maps';
import { kallsyms } from '../kallsyms.js';
import { ObjectFile, type ObjectMap } from '../object/object.js';
import { fixObjectBtf, sanitizeBtf } from './btf.js';
import { type ConstantValue, dataContents, parseKconfig } from './data.js';
import { resolveExterns, typelessKsyms } from './refs.js';
import {
  adjustMaps,
  mapsNotCreated,
  type SelectOptions,
  selectPrograms,
  type TypedProgram,
} from './select.js';
import { type PreparedStructOps, prepareStructOps } from './struct-ops.js';
import { type AttachTarget, type AttachTargetOption, resolveAttachTarget } from './targets.js';

export interface PrepareOptions extends SelectOptions {
  /** Values for `const volatile` globals (and other .rodata/.data/.bss variables), by name, set before load. */
  constants?: Record<string, ConstantValue>;
  /** Maps the caller provides by name: they are not created, so they need no codecs or checks here. */
  maps?: Record<string, unknown>;
  /** The kernel's BTF: CO-RE relocations and typed externs resolve against it (default: the running kernel's). */
  kernelBtf?: Btf;
  /**
   * Attach targets by program name (libbpf's `bpf_program__set_attach_target`): a loaded program
   * whose function a freplace/ (or fentry/fexit) program attaches to, and/or the target's name
   * instead of the one after the section prefix.
   */
  attachTargets?: Record<string, AttachTargetOption>;
  /**
   * A BTF file to apply CO-RE relocations against instead (libbpf's `btf_custom_path`), for
   * kernels without `/sys/kernel/btf/vmlinux`; typed `__ksym` externs and kfuncs still resolve
   * against the kernel's BTF.
   */
  btfPath?: string;
  /**
   * CONFIG_* values for `.kconfig` externs that take precedence over the kernel's config
   * (libbpf's `kconfig` option): `"CONFIG_A=y\nCONFIG_B=42"` lines, or a record of them.
   */
  kconfig?: string | Record<string, string | number | boolean>;
  /**
   * Module BTFs to look kfuncs, ksyms and attach targets up in when vmlinux lacks them (default:
   * every loaded module's, read once per process and only when needed; none when `kernelBtf` is given).
   */
  kernelModules?: readonly ModuleBtf[];
  /**
   * What the kernel's BTF loader accepts; the object's BTF is rewritten for what it lacks, as
   * libbpf sanitises it (default: all of it; `loadCollection` probes the kernel).
   */
  btfFeatures?: BtfFeatures;
}

/** A program of a {@link PreparedCollection}: load-ready but for the maps' fds. */
export interface PreparedProgram {
  /** The object's program with `programOptions` applied (type, attach type, flags). */
  readonly object: TypedProgram;
  /** Externs resolved and CO-RE relocations applied; map references still symbolic (they need the maps' fds). */
  readonly insns: readonly Insn[];
  /** The CO-RE resolution of every relocation, by instruction slot. */
  readonly core: readonly { slot: number; relo: CoreRelo; res: CoreResolution }[];
  /** Why some instructions were poisoned (unsatisfiable CO-RE relocations). */
  readonly poisoned: readonly string[];
  /** The BTF attach target (tp_btf/, fentry/, fexit/, fmod_ret/, lsm/, iter/, freplace/), resolved. */
  readonly target: AttachTarget | undefined;
  /** Module BTF objects the program's kfuncs and ksyms are in: fd_array[i + 1] is btfObjects[i]'s fd. */
  readonly btfObjects: readonly ModuleBtf[];
  /** ld_imm64 instructions (by index into `insns`) whose high word is the fd of `btfObjects[object]`. */
  readonly btfObjectFds: readonly { insn: number; object: number }[];
  /** Weak kfuncs this kernel lacks: their calls load only as dead code. */
  readonly missingKfuncs: readonly string[];
}

/**
 * Every pure stage of loading an object (see `loadCollection`), done and validated: malformed or
 * unsatisfiable input fails here with a typed error.
 */
export interface PreparedCollection {
  readonly object: ObjectFile;
  /** The kernel's BTF (read on first use: an object without CO-RE or typed externs never needs it). */
  readonly kernel: Btf;
  /** Initial contents of global data maps; `.bss` sections appear only when `constants` set one of their variables. */
  readonly data: ReadonlyMap<string, Uint8Array>;
  /** The object's BTF fixed up for the kernel: the blob to load and its (lazy) parse; undefined without BTF. */
  readonly btf: { blob: Uint8Array; btf: Btf } | undefined;
  /** Every map to create (all the object defines but `autocreate: false` ones), with `mapOptions` applied, used or not. */
  readonly maps: ReadonlyMap<string, ObjectMap>;
  /** The maps not created (`mapOptions` `autocreate: false`): references to them are poisoned at load. */
  readonly notCreated: ReadonlySet<string>;
  readonly codecs: ReadonlyMap<string, { key?: Codec<unknown>; value?: Codec<unknown> }>;
  /** The programs chosen to load (`programs`; default: all but `?` sections), in object order. */
  readonly programs: ReadonlyMap<string, PreparedProgram>;
  /** struct_ops maps (`.struct_ops`, `.struct_ops.link` variables) laid out for the kernel, by map name. */
  readonly structOps: ReadonlyMap<string, PreparedStructOps>;
}

/** Run the linking stage of loading an object (see {@link PreparedCollection}); no syscalls. */
export function prepareCollection(
  objectOrPath: ObjectFile | Uint8Array | string,
  opts: PrepareOptions = {},
): PreparedCollection {
  const obj = objectOrPath instanceof ObjectFile ? objectOrPath : ObjectFile.read(objectOrPath);
  let kernelBtf = opts.kernelBtf;
  const kernel = () => {
    kernelBtf ??= Btf.kernel();
    return kernelBtf;
  };
  let coreBtf: Btf | undefined;
  const coreTarget = () => {
    coreBtf ??= opts.btfPath ? Btf.fromFile(opts.btfPath, undefined, { lazy: true }) : kernel();
    return coreBtf;
  };
  // A kernel BTF of the caller's has no modules of the running kernel's to go with it.
  let modules = opts.kernelModules ?? (opts.kernelBtf ? [] : undefined);
  let addresses: Map<string, bigint> | undefined;
  const data = dataContents(obj, opts.constants ?? {}, opts.kconfig ? parseKconfig(opts.kconfig) : undefined);
  const fixed = obj.btf ? fixObjectBtf(obj) : undefined;
  // Sanitised for the kernel's BTF loader; with no BTF support at all nothing is loaded (collection.ts).
  const btf = fixed && opts.btfFeatures?.btf ? sanitizeBtf(fixed, opts.btfFeatures) : fixed;
  const notCreated = mapsNotCreated(opts);
  const maps = adjustMaps(obj, opts);
  for (const name of notCreated) maps.delete(name);
  const chosen = selectPrograms(obj, opts);
  const codecs = new Map<string, { key?: Codec<unknown>; value?: Codec<unknown> }>();
  for (const [name, def] of maps) {
    if (opts.maps?.[name]) continue;
    for (const d of def.inner ? [def.inner, def] : [def]) {
      const key = d.kind === 'map' ? d.btfKeyTypeId : 0;
      codecs.set(d === def ? name : `${name}.inner`, {
        ...(fixed && key ? { key: typedCodec(fixed.btf, key, name, 'key') } : {}),
        ...(fixed && d.btfValueTypeId
          ? { value: typedCodec(fixed.btf, d.btfValueTypeId, name, 'value') }
          : {}),
      });
    }
    for (const init of def.initial) {
      if (!(init.kind === 'prog' ? obj.programs.has(init.name) : obj.maps.has(init.name)))
        throw new TypeError(
          `map '${name}' slot ${init.slot} refers to ${init.kind} '${init.name}', which the object does not define`,
        );
      if (init.kind === 'map' && notCreated.has(init.name))
        throw new TypeError(
          `map '${name}' slot ${init.slot} refers to map '${init.name}', which is not created (mapOptions autocreate: false)`,
        );
    }
  }
  for (const name of Object.keys(opts.attachTargets ?? {}))
    if (!obj.programs.has(name))
      throw new TypeError(
        `attachTargets names program '${name}', which the object does not define (programs: ${[...obj.programs.keys()].join(', ')})`,
      );
  // struct_ops tables: their programs attach to the kernel struct, at their member's index
  const structOps = new Map<string, PreparedStructOps>();
  const opsTargets = new Map<string, { attachBtfId: number; attachType: number; map: string }>();
  for (const [name, def] of maps)
    if (def.structOps && !opts.maps?.[name])
      structOps.set(name, prepareStructOps(name, def, obj.btf!, kernel(), opsTargets));
  const known = (name: string) => obj.maps.has(name) || opts.maps?.[name] !== undefined;
  const programs = new Map<string, PreparedProgram>();
  for (const chosenProgram of chosen) {
    const ops = opsTargets.get(chosenProgram.name);
    const p: TypedProgram = ops
      ? { ...chosenProgram, attachType: ops.attachType as TypedProgram['attachType'] }
      : chosenProgram;
    const name = p.name;
    if (obj.btf)
      for (const fi of p.funcInfo) {
        const t = fi.typeId > 0 && fi.typeId < obj.btf.typeCount ? obj.btf.typeById(fi.typeId) : undefined;
        if (t?.kind !== 'func')
          throw new BtfLookupError(
            `program '${name}': func_info at instruction ${fi.insnOff} names BTF type ${fi.typeId}, ${t ? `a ${t.kind}` : 'which does not exist'}, not a func`,
          );
      }
    const linked = resolveExterns(p.insns, {
      obj,
      program: { name, section: p.section },
      kernel,
      modules: () => {
        modules ??= kernelModuleBtfs(kernel());
        return modules ?? [];
      },
      addresses: () => {
        addresses ??= kallsyms(typelessKsyms(obj));
        return addresses;
      },
      known,
    });
    const core =
      obj.btf && p.coreRelos.length
        ? applyCoreRelos(
            linked.insns,
            p.coreRelos,
            obj.btf,
            coreTarget(),
            // types vmlinux lacks come from the modules' BTF; not with a BTF file given (libbpf)
            opts.btfPath
              ? undefined
              : () => {
                  modules ??= kernelModuleBtfs(kernel());
                  return modules.map((m) => m.btf);
                },
          )
        : { insns: linked.insns, resolutions: [], poisoned: [] };
    const target: AttachTarget | undefined = ops
      ? {
          kind: 'kernel',
          btfId: ops.attachBtfId,
          module: undefined,
          typeName: structOps.get(ops.map)!.typeName,
        }
      : resolveAttachTarget(p, {
          kernel: kernel(),
          modules: () => {
            modules ??= kernelModuleBtfs(kernel());
            return modules ?? [];
          },
          ...(opts.attachTargets?.[name] ? { target: opts.attachTargets[name] } : {}),
        });
    programs.set(name, {
      object: p,
      insns: core.insns,
      core: core.resolutions,
      poisoned: core.poisoned,
      target,
      btfObjects: linked.btfObjects,
      btfObjectFds: linked.btfObjectFds,
      missingKfuncs: linked.missingKfuncs,
    });
  }
  return {
    object: obj,
    get kernel() {
      return kernel();
    },
    data,
    btf,
    maps,
    notCreated,
    codecs,
    programs,
    structOps,
  };
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
