import { type Assembled, Builder, decode, encode, type Insn, Pseudo, slots, validate } from '@bpfkit/asm';
import {
  type AttachType,
  type AttachTypeName,
  AttachType as AttachTypes,
  attachTypes,
  attrLayout,
  BpfError,
  ClosedError,
  cString,
  Defines,
  type Fd,
  fdNumber,
  type HasFd,
  intOption,
  NativeBuffer,
  NotSupportedError,
  type ProgInfo,
  type ProgType,
  type ProgTypeName,
  progFdById,
  progInfo,
  progLoad,
  progTestRun,
  progTypes,
  readLastAttr,
} from '@bpfkit/sys';
import { attachToAttrs } from './attach-to.js';
import { kernelConfig } from './kconfig.js';
import { requireProgType } from './probes.js';
import { VerifierError } from './verifier.js';

/** Kernel limit for the verifier log (UINT_MAX >> 2 since 5.2). */
const MAX_LOG = 2 ** 30 - 1;
const FIRST_LOG = 64 * 1024;

/** BTF func/line info that makes verifier errors point at C source lines. */
export interface ProgramBtf {
  fd: Fd;
  funcInfo?: Uint8Array;
  funcInfoRecSize?: number;
  lineInfo?: Uint8Array;
  lineInfoRecSize?: number;
}

export interface ProgramSpec {
  type: ProgType | ProgTypeName;
  /** Builder, its assembled output, decoded instructions or encoded bytes (8 per slot). */
  instructions: Builder | Assembled | Insn[] | Uint8Array;
  /** `'GPL'` (or compatible) unlocks GPL-only helpers. */
  license: string;
  /** Up to 15 characters of [A-Za-z0-9_.]. */
  name?: string;
  /** Expected attach type (cgroup programs, tracing, ...). */
  attachType?: AttachType | AttachTypeName;
  attachBtfId?: number;
  attachBtfObjFd?: Fd;
  attachProgFd?: Fd;
  /**
   * The attach target by name, resolved to `attachBtfId` as a section's target is: a kernel
   * function for fentry/fexit/fmod_ret (`bpf_fentry_test1`, `module:func`), a hook for lsm
   * (`file_open`), a tracepoint for tp_btf (`sched_switch`), an iterator (`task`); with
   * `attachProgFd`, a function of that program (freplace).
   */
  attachTo?: string;
  /** Load as sleepable (BPF_F_SLEEPABLE: fentry.s, lsm.s, iter.s, uprobe.s). */
  sleepable?: boolean;
  /** `BPF_F_*` load flags (sleepable, any alignment, ...). */
  flags?: number;
  /** Ask for the verifier log even on success: 1 (basic), 2 (verbose), 4 (stats), or a sum. */
  logLevel?: number;
  /** First log buffer size; grown on ENOSPC. */
  logSize?: number;
  /** Maps referenced by name in the instructions (`ldMap`/`ldMapValue`). */
  maps?: Record<string, HasFd | Fd>;
  btf?: ProgramBtf;
  kernVersion?: number;
  ifindex?: number;
  /** For kfunc calls into module BTF. */
  fdArray?: Fd[];
}

export interface TestRunOptions {
  /** Packet or input bytes. */
  data?: Uint8Array;
  /** Context (e.g. `struct __sk_buff`) in. */
  ctx?: Uint8Array;
  repeat?: number;
  /** Room for output data (default: input + 256). */
  dataOutSize?: number;
  ctxOutSize?: number;
  flags?: number;
  cpu?: number;
}
export interface TestRunResult {
  retval: number;
  /** Data out, as the program left it. */
  data: Uint8Array;
  ctx: Uint8Array | undefined;
  /** Average ns per run, measured by the kernel. */
  duration: number;
}

function toInsns(instructions: ProgramSpec['instructions']): Insn[] {
  if (instructions instanceof Builder) return instructions.assemble().insns;
  if (instructions instanceof Uint8Array) return decode(instructions);
  if (Array.isArray(instructions)) return instructions;
  return instructions.insns;
}

/** Fill map references (symbolic names) with the fds of `maps`. Throws naming the instruction. */
function resolveMaps(insns: Insn[], maps: ProgramSpec['maps']): Insn[] {
  let slot = 0;
  return insns.map((insn) => {
    const here = slot;
    slot += slots(insn);
    const ref = insn.ref;
    if (!ref || (ref.kind !== 'map' && ref.kind !== 'mapValue')) return insn;
    const m = maps?.[ref.name];
    if (!m)
      throw new TypeError(
        `instruction ${here}: map '${ref.name}' is not given (maps: ${Object.keys(maps ?? {}).join(', ') || 'none'})`,
      );
    if (ref.kind === 'map') return { ...insn, src: Pseudo.MAP_FD, imm: fdNumber(m) };
    return { ...insn, src: Pseudo.MAP_VALUE, imm: fdNumber(m), imm64Hi: ref.offset };
  });
}

/**
 * A loaded eBPF program. Load from instructions with {@link Program.load}; the verifier log is
 * fetched (and grown until it fits) when the kernel rejects the program.
 */
export class Program implements HasFd {
  readonly fd: Fd;
  readonly type: ProgType;
  readonly name: string;
  /** The verifier log, when `logLevel` asked for it. */
  readonly verifierLog: string | undefined;
  /** The instructions as loaded (with map fds filled in), when loaded by this process. */
  readonly instructions: readonly Insn[] | undefined;
  /** The expected attach type it was loaded with, when loaded by this process. */
  readonly attachType: AttachType | undefined;

  private constructor(
    fd: Fd,
    type: ProgType,
    name: string,
    log?: string,
    insns?: Insn[],
    attachType?: AttachType,
  ) {
    this.fd = fd;
    this.type = type;
    this.name = name;
    this.verifierLog = log;
    this.instructions = insns;
    this.attachType = attachType;
  }

  static load(spec: ProgramSpec): Program {
    if (spec.attachTo !== undefined && spec.attachBtfId === undefined) {
      const type = progTypes.toValue(spec.type);
      const attachType = spec.attachType === undefined ? undefined : attachTypes.toValue(spec.attachType);
      const t = attachToAttrs(
        type,
        attachType,
        spec.attachTo,
        spec.attachProgFd,
        spec.name ?? progTypes.toName(type),
      );
      try {
        return Program.load({
          ...spec,
          attachBtfId: t.attachBtfId,
          ...(t.moduleFd ? { attachBtfObjFd: t.moduleFd } : {}),
          ...(t.attachProgFd ? { attachProgFd: t.attachProgFd } : {}),
        });
      } catch (e) {
        throw fmodRetUnsupported(e, attachType, spec.attachTo) ?? e;
      } finally {
        t.moduleFd?.close(); // the loaded program holds the kernel's own reference
      }
    }
    const type = progTypes.toValue(spec.type);
    const typeName = progTypes.toName(type);
    // '' is no license (an ELF object without a license section, as libbpf loads it): the kernel
    // then refuses GPL-only helpers in the verifier
    if (typeof spec.license !== 'string')
      throw new TypeError('license is required (for example "GPL", or "" for none)');
    if (spec.name !== undefined && (Buffer.byteLength(spec.name) > 15 || !/^[\w.]*$/.test(spec.name)))
      throw new RangeError(`program name '${spec.name}' must be at most 15 characters of [A-Za-z0-9_.]`);
    const insns = resolveMaps(toInsns(spec.instructions), spec.maps);
    if (insns.length === 0) throw new RangeError('a program needs at least one instruction');
    validate(insns);
    const detail = `${typeName}${spec.name ? ` '${spec.name}'` : ''}`;
    const attachType = spec.attachType === undefined ? undefined : attachTypes.toValue(spec.attachType);

    using code = NativeBuffer.from(encode(insns));
    using license = NativeBuffer.from(spec.license);
    using funcInfo = NativeBuffer.from(spec.btf?.funcInfo ?? new Uint8Array());
    using lineInfo = NativeBuffer.from(spec.btf?.lineInfo ?? new Uint8Array());
    using fdArray = new NativeBuffer(4 * (spec.fdArray?.length ?? 0));
    spec.fdArray?.forEach((f, i) => {
      fdArray.view.setInt32(i * 4, f.value, true);
    });
    const base = {
      progType: type,
      insns: code.ptr,
      insnCnt: code.size / 8,
      license: license.ptr,
      progName: spec.name ?? '',
      expectedAttachType: attachType ?? 0,
      attachBtfId: spec.attachBtfId ?? 0,
      attachBtfObjFd: spec.attachBtfObjFd?.value ?? spec.attachProgFd?.value ?? 0,
      progFlags: (spec.flags ?? 0) | (spec.sleepable ? Defines.BPF_F_SLEEPABLE : 0),
      kernVersion: spec.kernVersion ?? 0,
      progIfindex: spec.ifindex ?? 0,
      progBtfFd: spec.btf?.fd.value ?? 0,
      funcInfo: spec.btf?.funcInfo ? funcInfo.ptr : 0n,
      funcInfoCnt: spec.btf?.funcInfo ? spec.btf.funcInfo.length / (spec.btf.funcInfoRecSize ?? 8) : 0,
      funcInfoRecSize: spec.btf?.funcInfo ? (spec.btf.funcInfoRecSize ?? 8) : 0,
      lineInfo: spec.btf?.lineInfo ? lineInfo.ptr : 0n,
      lineInfoCnt: spec.btf?.lineInfo ? spec.btf.lineInfo.length / (spec.btf.lineInfoRecSize ?? 16) : 0,
      lineInfoRecSize: spec.btf?.lineInfo ? (spec.btf.lineInfoRecSize ?? 16) : 0,
      fdArray: spec.fdArray?.length ? fdArray.ptr : 0n,
    };

    const withLog = (
      level: number,
      size: number,
    ): { fd?: Fd; log: string; err?: BpfError; needed: number } => {
      using log = new NativeBuffer(size);
      try {
        const fd = progLoad({ ...base, logLevel: level, logBuf: log.ptr, logSize: size }, detail);
        return { fd, log: cString(log.bytes), needed: 0 };
      } catch (e) {
        if (!(e instanceof BpfError)) throw e;
        return { err: e, log: cString(log.bytes), needed: lastLogTrueSize() };
      }
    };

    const wanted = spec.logLevel ?? 0;
    let first: { fd?: Fd; err?: BpfError; log: string; needed: number };
    if (wanted === 0) {
      try {
        return new Program(
          progLoad({ ...base }, detail),
          type,
          spec.name ?? '',
          undefined,
          insns,
          attachType,
        );
      } catch (e) {
        if (!(e instanceof BpfError)) throw e;
        if (e.code === 'EPERM') throw e;
        if (e.code === 'EINVAL') {
          const unsupported = unsupportedType(type, e);
          if (unsupported) throw unsupported;
        }
        first = { err: e, log: '', needed: 0 };
      }
    } else first = { log: '', needed: 0 };

    // Load (again) with a log, growing the buffer on ENOSPC until the whole log fits.
    let size = Math.min(spec.logSize ?? FIRST_LOG, MAX_LOG);
    let truncated = false;
    for (;;) {
      const r = withLog(wanted || 1, size);
      if (r.fd)
        return new Program(r.fd, type, spec.name ?? '', wanted ? r.log : undefined, insns, attachType);
      const err = r.err ?? first.err!;
      if (err.code === 'ENOSPC' && size < MAX_LOG) {
        size = Math.min(MAX_LOG, Math.max(size * 2, r.needed));
        continue;
      }
      if (err.code === 'ENOSPC') truncated = true;
      if (!r.log) throw err;
      // ENOSPC at the maximum: the real error is the first load's.
      const cause = err.code === 'ENOSPC' && first.err ? first.err : err;
      throw new VerifierError(cause, detail, r.log, insns, truncated);
    }
  }

  /** Wrap a program fd (ownership moves here). */
  static fromFd(fd: Fd): Program {
    const info = progInfo(fd);
    return new Program(fd, info.type as ProgType, info.name);
  }

  /** Open the program with this id (needs CAP_SYS_ADMIN). */
  static fromId(id: number): Program {
    return Program.fromFd(progFdById(id));
  }

  get info(): ProgInfo {
    return progInfo(this.#live());
  }

  get typeName(): string {
    return progTypes.toName(this.type);
  }

  #live(): Fd {
    if (this.fd.closed) throw new ClosedError(`program '${this.name || this.typeName}'`);
    return this.fd;
  }

  /**
   * Run the program in the kernel on `data` (BPF_PROG_TEST_RUN) — for unit tests of XDP, tc,
   * socket filter, raw tracepoint and other testable types.
   */
  testRun(opts: TestRunOptions = {}): TestRunResult {
    const fd = this.#live();
    // Checked before the syscall: the kernel reads these as u32, so -1 would mean 2^32-1 runs.
    for (const k of ['repeat', 'dataOutSize', 'ctxOutSize', 'flags', 'cpu'] as const) {
      if (opts[k] !== undefined) intOption(opts[k], `testRun ${k}`, 0, 0xffffffff);
    }
    const data = opts.data ?? new Uint8Array();
    using dataIn = NativeBuffer.from(data);
    let outSize = opts.dataOutSize ?? data.length + 256;
    for (let attempt = 0; ; attempt++) {
      using dataOut = new NativeBuffer(outSize);
      using ctxIn = NativeBuffer.from(opts.ctx ?? new Uint8Array());
      using ctxOut = new NativeBuffer(opts.ctxOutSize ?? opts.ctx?.length ?? 0);
      try {
        const r = progTestRun({
          progFd: fd.value,
          dataIn: data.length ? dataIn.ptr : 0n,
          dataSizeIn: data.length,
          dataOut: outSize ? dataOut.ptr : 0n,
          dataSizeOut: outSize,
          ctxIn: opts.ctx ? ctxIn.ptr : 0n,
          ctxSizeIn: opts.ctx?.length ?? 0,
          ctxOut: ctxOut.size ? ctxOut.ptr : 0n,
          ctxSizeOut: ctxOut.size,
          repeat: opts.repeat ?? 1,
          flags: opts.flags ?? 0,
          cpu: opts.cpu ?? 0,
        });
        return {
          retval: r.retval,
          data: dataOut.bytes.slice(0, Math.min(r.dataSizeOut, outSize)),
          ctx: ctxOut.size ? ctxOut.bytes.slice(0, Math.min(r.ctxSizeOut, ctxOut.size)) : undefined,
          duration: r.duration,
        };
      } catch (e) {
        if (e instanceof BpfError && e.code === 'ENOSPC' && attempt < 4) {
          outSize = Math.max(outSize * 2, 4096);
          continue;
        }
        throw e;
      }
    }
  }

  close(): void {
    this.fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * A NotSupportedError for a load that failed with EINVAL, when the program-type probe clearly
 * says this kernel lacks the type; otherwise undefined, and the load's own error stands. A probe
 * that cannot answer (EPERM, or any other failure of its own) never replaces that error.
 */
function unsupportedType(type: ProgType, cause: BpfError): NotSupportedError | undefined {
  try {
    requireProgType(type);
  } catch (ns) {
    if (ns instanceof NotSupportedError) return new NotSupportedError(ns.feature, ns.since, { cause });
  }
  return undefined;
}

/** Kernels 6.4+ report the size the log needed (`log_true_size`), also when the load failed. */
function lastLogTrueSize(): number {
  return 'log_true_size' in attrLayout.progLoad ? Number(readLastAttr('progLoad', 'log_true_size')) : 0;
}

/**
 * fmod_ret may attach only to functions marked for error injection (or to security_ hooks); a
 * kernel built without CONFIG_FUNCTION_ERROR_INJECTION marks none, and the verifier refuses the
 * load with EINVAL. Then the answer is a NotSupportedError naming the option.
 */
function fmodRetUnsupported(
  e: unknown,
  attachType: AttachType | undefined,
  target: string,
): NotSupportedError | undefined {
  if (attachType !== AttachTypes.MODIFY_RETURN || !(e instanceof BpfError) || e.code !== 'EINVAL')
    return undefined;
  if (target.replace(/^.*:/, '').startsWith('security_')) return undefined;
  let option: string | undefined;
  try {
    option = kernelConfig().get('CONFIG_FUNCTION_ERROR_INJECTION');
  } catch {
    return undefined; // no config to read: the kernel's error stands
  }
  if (option === 'y') return undefined;
  return new NotSupportedError(
    `fmod_ret on '${target}' (error-injectable functions: CONFIG_FUNCTION_ERROR_INJECTION)`,
    undefined,
    {
      cause: e,
    },
  );
}
