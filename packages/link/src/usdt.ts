// USDT probes (<sys/sdt.h>, DTRACE_PROBE*) the way libbpf attaches them: the `.note.stapsdt`
// notes of an executable or library give each call site's address, semaphore and argument
// string; every site becomes a uprobe (its semaphore's file offset as ref_ctr_offset) whose BPF
// cookie is the id of a slot in the `__bpf_usdt_specs` array, which holds the decoded argument
// specs in the layout of libbpf's usdt.bpf.h — so a C program using BPF_USDT()/bpf_usdt_arg()
// from the system headers runs unmodified.
import { readFileSync } from 'node:fs';
import { type Collection, type Program, parseElf } from '@bpfkit/loader';
import type { BpfMap } from '@bpfkit/maps';
import { fileOffset, resolveBinary } from './binaries.js';
import type { Attachment } from './link.js';
import { PERF_HOOK_PROG_TYPES, requireProgramType } from './link.js';
import { attachUprobe, type PerfEventLink } from './perf-event.js';

const EM_X86_64 = 62;
const EM_AARCH64 = 183;
const NT_STAPSDT = 3;

/** One USDT call site of a binary, as its note describes it. */
export interface UsdtProbe {
  provider: string;
  name: string;
  /** The call site's address (adjusted for prelinking through `.stapsdt.base`). */
  pc: bigint;
  /** The `.stapsdt.base` address the note was written against. */
  base: bigint;
  /** The semaphore's address (0: none). */
  semaphore: bigint;
  /** The argument string, e.g. `-4@%edi 8@-16(%rbp)`. */
  args: string;
  /** The call site's file offset (what the uprobe takes). */
  offset: number;
  /** The semaphore's file offset (0: none), the uprobe's ref_ctr_offset. */
  semaphoreOffset: number;
}

/** No probe `provider:name` in a binary; `available` lists the ones it has. */
export class UsdtProbeNotFoundError extends Error {
  override name = 'UsdtProbeNotFoundError';
  constructor(
    readonly binary: string,
    readonly probe: string,
    readonly available: readonly string[],
  ) {
    super(
      `no USDT probe '${probe}' in ${binary} (it has ${available.length ? [...new Set(available)].join(', ') : 'no USDT probes'})`,
    );
  }
}

/** Every USDT probe of an ELF executable or shared library (path, program name or library name). */
export function usdtProbes(binaryName: string): UsdtProbe[] {
  const binary = resolveBinary(binaryName);
  const elf = parseElf(readFileSync(binary), { anyMachine: true });
  const note = elf.sections.find((s) => s.name === '.note.stapsdt');
  if (!note) return [];
  const baseSec = elf.sections.find((s) => s.name === '.stapsdt.base');
  const d = Buffer.from(note.data.buffer, note.data.byteOffset, note.data.byteLength);
  const out: UsdtProbe[] = [];
  const align4 = (n: number) => (n + 3) & ~3;
  for (let at = 0; at + 12 <= d.length; ) {
    const namesz = d.readUInt32LE(at);
    const descsz = d.readUInt32LE(at + 4);
    const type = d.readUInt32LE(at + 8);
    const nameAt = at + 12;
    const descAt = nameAt + align4(namesz);
    at = descAt + align4(descsz);
    if (type !== NT_STAPSDT || d.toString('latin1', nameAt, nameAt + namesz) !== 'stapsdt\0') continue;
    if (descsz < 27) continue;
    let pc = d.readBigUInt64LE(descAt);
    const base = d.readBigUInt64LE(descAt + 8);
    let semaphore = d.readBigUInt64LE(descAt + 16);
    const strs = d.toString('utf8', descAt + 24, descAt + descsz).split('\0');
    // prelink moved the file: shift by how far .stapsdt.base moved from what the note recorded
    if (baseSec && base !== 0n) {
      const delta = BigInt(baseSec.addr) - base;
      pc += delta;
      if (semaphore) semaphore += delta;
    }
    out.push({
      provider: strs[0] ?? '',
      name: strs[1] ?? '',
      pc,
      base,
      semaphore,
      args: strs[2] ?? '',
      offset: fileOffset(elf.sections, pc),
      semaphoreOffset: semaphore ? fileOffset(elf.sections, semaphore) : 0,
    });
  }
  return out;
}

/** enum __bpf_usdt_arg_type of usdt.bpf.h. */
export const UsdtArgType = { CONST: 0, REG: 1, REG_DEREF: 2 } as const;

/** struct __bpf_usdt_arg_spec: how bpf_usdt_arg() finds one argument. */
export interface UsdtArgSpec {
  type: (typeof UsdtArgType)[keyof typeof UsdtArgType];
  /** The constant, or the offset added to the register for a memory operand. */
  valOff: bigint;
  /** The register's offset in struct pt_regs (0 for a constant). */
  regOff: number;
  signed: boolean;
  /** 64 minus the argument's size in bits: how far bpf_usdt_arg shifts to cut and extend it. */
  bitshift: number;
}

/** x86-64 struct pt_regs offsets, under every name of each register. */
const X86_REGS: Record<string, number> = {};
for (const [off, names] of [
  [0, 'r15'],
  [8, 'r14'],
  [16, 'r13'],
  [24, 'r12'],
  [32, 'rbp ebp bp bpl'],
  [40, 'rbx ebx bx bl'],
  [48, 'r11'],
  [56, 'r10'],
  [64, 'r9'],
  [72, 'r8'],
  [80, 'rax eax ax al'],
  [88, 'rcx ecx cx cl'],
  [96, 'rdx edx dx dl'],
  [104, 'rsi esi si sil'],
  [112, 'rdi edi di dil'],
  [128, 'rip eip ip'],
  [152, 'rsp esp sp spl'],
] as [number, string][]) {
  for (const n of names.split(' ')) {
    X86_REGS[n] = off;
    if (/^r\d+$/.test(n)) for (const s of ['d', 'w', 'b']) X86_REGS[n + s] = off;
  }
}

function arm64Reg(name: string): number | undefined {
  if (name === 'sp') return 31 * 8; // user_pt_regs: regs[31], sp, pc, pstate
  const m = /^x(\d+)$/.exec(name);
  return m && Number(m[1]) <= 30 ? Number(m[1]) * 8 : undefined;
}

/** A decimal or hex integer, possibly negative, as the u64 bits of its two's complement. */
function int64(text: string): bigint {
  const neg = text.startsWith('-');
  const v = BigInt(neg ? text.slice(1) : text);
  return BigInt.asUintN(64, neg ? -v : v);
}

/** Decode one argument of a note's argument string (`-4@%eax`, `8@-16(%rbp)`, `-4@$5`; arm64 `-4@[x0, 8]`, `8@x1`, `4@5`). */
export function parseUsdtArg(arg: string, arch: 'x86_64' | 'arm64' = 'x86_64'): UsdtArgSpec {
  const bad = (why: string) => new TypeError(`USDT argument '${arg}' (${arch}): ${why}`);
  const m = /^\s*(-?\d+)\s*@\s*(.+?)\s*$/.exec(arg);
  if (!m) throw bad('not SIZE@LOCATION');
  const size = Number(m[1]);
  const abs = Math.abs(size);
  if (![1, 2, 4, 8].includes(abs)) throw bad(`size ${abs} is not 1, 2, 4 or 8`);
  const loc = m[2]!;
  const common = { signed: size < 0, bitshift: 64 - abs * 8 };
  const reg = (name: string) => {
    const off = arch === 'x86_64' ? X86_REGS[name] : arm64Reg(name);
    if (off === undefined) throw bad(`unknown register '${name}'`);
    return off;
  };
  let r: RegExpExecArray | null;
  if (arch === 'x86_64') {
    r = /^\$(-?(?:0x[0-9a-fA-F]+|\d+))$/.exec(loc);
    if (r) return { type: UsdtArgType.CONST, valOff: int64(r[1]!), regOff: 0, ...common };
    r = /^%(\w+)$/.exec(loc);
    if (r) return { type: UsdtArgType.REG, valOff: 0n, regOff: reg(r[1]!), ...common };
    r = /^(-?\d+)?\s*\(\s*%(\w+)\s*\)$/.exec(loc);
    if (r) return { type: UsdtArgType.REG_DEREF, valOff: int64(r[1] ?? '0'), regOff: reg(r[2]!), ...common };
    throw bad('not a constant ($N), register (%reg) or memory operand (OFF(%reg))');
  }
  r = /^\[\s*(\w+)\s*(?:,\s*(-?\d+)\s*)?\]$/.exec(loc);
  if (r) return { type: UsdtArgType.REG_DEREF, valOff: int64(r[2] ?? '0'), regOff: reg(r[1]!), ...common };
  r = /^(-?\d+)$/.exec(loc);
  if (r) return { type: UsdtArgType.CONST, valOff: int64(r[1]!), regOff: 0, ...common };
  r = /^(\w+)$/.exec(loc);
  if (r) return { type: UsdtArgType.REG, valOff: 0n, regOff: reg(r[1]!), ...common };
  throw bad('not a constant (N), register (xN) or memory operand ([xN, OFF])');
}

/** BPF_USDT_MAX_ARG_CNT of usdt.bpf.h. */
export const USDT_MAX_ARGS = 12;
/** sizeof(struct __bpf_usdt_spec): 12 arg specs of 16 bytes, usdt_cookie, arg_cnt, padding. */
export const USDT_SPEC_SIZE = 208;

/** A note's argument string as the bytes of struct __bpf_usdt_spec. */
export function encodeUsdtSpec(args: string, cookie: bigint, arch: 'x86_64' | 'arm64' = 'x86_64'): Buffer {
  const list = args.trim() === '' ? [] : args.trim().split(/\s+(?=-?\d+@)/);
  if (list.length > USDT_MAX_ARGS)
    throw new RangeError(
      `USDT probe has ${list.length} arguments; usdt.bpf.h takes at most ${USDT_MAX_ARGS}`,
    );
  const b = Buffer.alloc(USDT_SPEC_SIZE);
  list.forEach((a, i) => {
    const s = parseUsdtArg(a, arch);
    const at = i * 16;
    b.writeBigUInt64LE(s.valOff, at);
    b.writeUInt32LE(s.type, at + 8);
    b.writeInt16LE(s.regOff, at + 12);
    b.writeUInt8(s.signed ? 1 : 0, at + 14);
    b.writeInt8(s.bitshift, at + 15);
  });
  b.writeBigUInt64LE(BigInt.asUintN(64, cookie), 192);
  b.writeInt16LE(list.length, 200);
  return b;
}

/** Spec slots in use, per `__bpf_usdt_specs` map (shared by every attachment of a collection). */
const usedSlots = new WeakMap<object, Set<number>>();

export interface UsdtOptions {
  /** The loaded collection the program belongs to: its `__bpf_usdt_specs` map gets the specs. */
  collection: Collection;
  /** Only this process (default: every process running the binary). */
  pid?: number;
  /** The value bpf_usdt_cookie() returns (default 0). */
  cookie?: bigint;
}

/** Every call site of one USDT probe, attached; `detach()` detaches them all and frees their spec slots. */
export class UsdtAttachment implements Attachment {
  readonly sites: readonly PerfEventLink[];
  readonly #free: () => void;
  #done = false;
  constructor(sites: PerfEventLink[], free: () => void) {
    this.sites = sites;
    this.#free = free;
  }
  detach(): void {
    if (this.#done) return;
    this.#done = true;
    let first: unknown;
    for (const s of [...this.sites].reverse()) {
      try {
        s.detach();
      } catch (e) {
        first ??= e;
      }
    }
    this.#free();
    if (first) throw first;
  }
  close(): void {
    this.detach();
  }
  [Symbol.dispose](): void {
    this.detach();
  }
}

/**
 * Attach a `usdt`/kprobe-type program to every call site of USDT probe `provider:name` in
 * `binary` (a path, a program on PATH, a library in the ld.so cache), as libbpf's
 * bpf_program__attach_usdt does. Needs BPF cookies (Linux 5.15).
 */
export function attachUsdt(
  program: Program,
  binaryName: string,
  provider: string,
  name: string,
  opts: UsdtOptions,
): UsdtAttachment {
  requireProgramType(program, PERF_HOOK_PROG_TYPES.probe, `USDT ${binaryName}:${provider}:${name}`);
  const binary = resolveBinary(binaryName);
  const specs = opts.collection.maps.__bpf_usdt_specs as BpfMap<unknown, unknown> | undefined;
  if (!specs)
    throw new TypeError(
      `program '${program.name}' has no __bpf_usdt_specs map: a USDT program must include <bpf/usdt.bpf.h> and read its arguments through it`,
    );
  if (specs.valueSize !== USDT_SPEC_SIZE)
    throw new TypeError(
      `__bpf_usdt_specs has ${specs.valueSize}-byte values; usdt.bpf.h's struct __bpf_usdt_spec is ${USDT_SPEC_SIZE}`,
    );
  const machine = parseElf(readFileSync(binary), { anyMachine: true }).machine;
  if (machine !== EM_X86_64 && machine !== EM_AARCH64)
    throw new TypeError(`${binary}: USDT arguments are decoded for x86-64 and arm64 only`);
  const arch = machine === EM_X86_64 ? 'x86_64' : 'arm64';
  const all = usdtProbes(binary);
  const sites = all.filter((p) => p.provider === provider && p.name === name);
  if (sites.length === 0)
    throw new UsdtProbeNotFoundError(
      binary,
      `${provider}:${name}`,
      all.map((p) => `${p.provider}:${p.name}`),
    );
  const cookie = opts.cookie ?? 0n;
  // decode every site before touching the kernel: a bad argument string leaves nothing behind
  const encoded = sites.map((s) => encodeUsdtSpec(s.args, cookie, arch));
  const slots = usedSlots.get(specs) ?? new Set<number>();
  usedSlots.set(specs, slots);
  const mine: number[] = [];
  const free = () => {
    for (const id of mine) {
      slots.delete(id);
      try {
        specs.setBytes(key(id), Buffer.alloc(USDT_SPEC_SIZE));
      } catch {
        // the collection is closed already: its map went with it
      }
    }
  };
  const key = (id: number) => {
    const k = Buffer.alloc(4);
    k.writeInt32LE(id);
    return k;
  };
  const links: PerfEventLink[] = [];
  try {
    const byArgs = new Map<string, number>(); // sites with the same spec share a slot, as in libbpf
    for (const [i, site] of sites.entries()) {
      const spec = encoded[i]!;
      let id = byArgs.get(spec.toString('hex'));
      if (id === undefined) {
        id = 0;
        while (slots.has(id)) id++;
        if (id >= specs.maxEntries)
          throw new RangeError(
            `__bpf_usdt_specs is full (${specs.maxEntries} specs; raise BPF_USDT_MAX_SPEC_CNT)`,
          );
        slots.add(id);
        mine.push(id);
        specs.setBytes(key(id), spec);
        byArgs.set(spec.toString('hex'), id);
      }
      links.push(
        attachUprobe(program, binary, undefined, {
          offset: site.offset,
          refCtrOffset: site.semaphoreOffset,
          cookie: BigInt(id),
          mode: 'link',
          ...(opts.pid !== undefined ? { pid: opts.pid } : {}),
        }),
      );
    }
  } catch (e) {
    for (const l of links.reverse()) l.detach();
    free();
    throw e;
  }
  return new UsdtAttachment(links, free);
}
