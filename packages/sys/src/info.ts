import { readFileSync, readlinkSync } from 'node:fs';
// Object introspection: OBJ_GET_INFO_BY_FD decoded to plain objects, ids, fds by id.
import { structLayout } from './abi.generated.js';
import { type CamelCase, readField } from './attr.js';
import {
  btfGetFdById,
  btfGetNextId,
  linkGetFdById,
  linkGetNextId,
  mapGetFdById,
  mapGetNextId,
  objGetInfoByFd,
  progGetFdById,
  progGetNextId,
} from './commands.js';
import { type Fd, fdNumber } from './fd.js';
import { linkTypes, mapTypes, progTypes } from './names.js';
import { NativeBuffer } from './native.js';

type SL = typeof structLayout;
type Decoded<L> = {
  [K in Exclude<keyof L, '$size'> as CamelCase<K & string>]: L[K] extends readonly [number, 8]
    ? bigint
    : number;
};

export type MapInfo = Omit<Decoded<SL['mapInfo']>, 'name'> & { name: string; typeName: string };
/** The kernel's pointer fields, which user space fills: read through {@link progInfo}'s options instead. */
type ProgInfoPointers =
  | 'xlatedProgInsns'
  | 'jitedProgInsns'
  | 'jitedKsyms'
  | 'jitedFuncLens'
  | 'funcInfo'
  | 'lineInfo'
  | 'jitedLineInfo'
  | 'progTags';
export type ProgInfo = Omit<Decoded<SL['progInfo']>, 'name' | 'tag' | 'mapIds' | ProgInfoPointers> & {
  name: string;
  /** The program's tag (SHA of its instructions) as 16 hex digits, as bpftool prints it. */
  tag: string;
  typeName: string;
  mapIds: number[];
};
export type BtfInfo = Omit<Decoded<SL['btfInfo']>, 'name'> & { name: string };
/** Common link fields plus the fields of the link type's own union member (e.g. `cgroupCgroupId`). */
export type LinkInfo = { type: number; id: number; progId: number; typeName: string } & Record<
  string,
  number | bigint | string
>;

const decoder = new TextDecoder();
/** The text of a NUL-terminated C string in `b` (all of `b` when it has no NUL). */
export function cString(b: Uint8Array): string {
  const end = b.indexOf(0);
  return decoder.decode(end < 0 ? b : b.subarray(0, end));
}
const camel = (s: string) => s.replace(/[_.]([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function decode(
  layout: Record<string, readonly number[]>,
  buf: NativeBuffer,
  keep: (path: string) => boolean = () => true,
): Record<string, number | bigint | string> {
  const out: Record<string, number | bigint | string> = {};
  for (const [path, field] of Object.entries(layout)) {
    if (path === '$size' || !keep(path)) continue;
    const [off = 0, size = 0] = field;
    if (path === 'tag' || (field.length === 2 && ![1, 2, 4, 8].includes(size))) {
      const bytes = buf.bytes.subarray(off, off + size);
      out[camel(path)] =
        path === 'name'
          ? cString(bytes)
          : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
    } else {
      out[camel(path)] = readField(buf.view, field);
    }
  }
  return out;
}

export type ObjectKind = 'map' | 'prog' | 'link' | 'btf';
const KINDS: Record<string, ObjectKind> = {
  'anon_inode:bpf-map': 'map',
  'anon_inode:bpf-prog': 'prog',
  'anon_inode:bpf_link': 'link', // a link as created
  'anon_inode:bpf-link': 'link', // a link reopened by id or from a pin
  'anon_inode:btf': 'btf',
};

/** What kind of BPF object an fd refers to (from the kernel's name for its anon inode), or undefined. */
export function objectKind(fd: Fd | number): ObjectKind | undefined {
  try {
    return KINDS[readlinkSync(`/proc/self/fd/${fdNumber(fd)}`)];
  } catch {
    return undefined;
  }
}

function expectKind(fd: Fd, kind: ObjectKind): void {
  const actual = objectKind(fd);
  if (actual !== kind)
    throw new TypeError(
      `fd ${fd.value} is ${actual ? `a BPF ${actual}` : 'not a BPF object'}, not a ${kind}`,
    );
}

/**
 * One OBJ_GET_INFO_BY_FD into a zeroed buffer of `size`. `kernelSize` is how much of it the
 * kernel knows (its own struct is shorter on older kernels: fields past it stay zero).
 */
function getInfo(
  fd: Fd,
  size: number,
  prepare?: (buf: NativeBuffer) => void,
): NativeBuffer & { kernelSize?: number } {
  const buf: NativeBuffer & { kernelSize?: number } = new NativeBuffer(size);
  try {
    prepare?.(buf);
    buf.kernelSize = objGetInfoByFd({ bpfFd: fd.value, infoLen: size, info: buf.ptr });
  } catch (e) {
    buf.free();
    throw e;
  }
  return buf;
}

const L = structLayout;
const off = (f: readonly number[]) => f[0]!;

export function mapInfo(fd: Fd): MapInfo {
  expectKind(fd, 'map');
  using buf = getInfo(fd, L.mapInfo.$size[1]);
  const out = decode(L.mapInfo, buf) as unknown as MapInfo;
  out.typeName = mapTypes.toName(out.type);
  return out;
}

interface ArrayField {
  /** The u32 field holding the element count (or byte length). */
  count: string;
  /** The u64 field the kernel writes the array through. */
  ptr: string;
  /** Bytes per element, or the u32 field holding the record size (func and line info). */
  elem: number | string;
  /** Extra elements to allocate (a NUL for strings). */
  extra?: number;
}

/**
 * Info with variable-length parts: a first call learns the lengths, a second passes buffers
 * for them. Returns the fixed part and one buffer per array (all freed by the caller).
 */
function infoWithArrays(fd: Fd, layout: Record<string, readonly number[]>, arrays: ArrayField[]) {
  const size = layout.$size![1]!;
  const field = (name: string) => off(layout[name]!);
  let counts: number[];
  let elems: number[];
  {
    using first = getInfo(fd, size);
    // an array the kernel's struct does not reach (an older kernel) is left out: a pointer
    // set past the kernel's size is a non-zero tail, which it refuses with E2BIG
    const known = first.kernelSize ?? size;
    const reaches = (name: string, bytes: number) => field(name) + bytes <= known;
    counts = arrays.map((a) =>
      reaches(a.ptr, 8) && reaches(a.count, 4) && (typeof a.elem === 'number' || reaches(a.elem, 4))
        ? first.view.getUint32(field(a.count), true) + (a.extra ?? 0)
        : 0,
    );
    elems = arrays.map((a) =>
      typeof a.elem === 'number' ? a.elem : first.view.getUint32(field(a.elem), true),
    );
  }
  const bufs = counts.map((n, i) => new NativeBuffer(Math.max(1, n * elems[i]!)));
  const buf = getInfo(fd, size, (b) =>
    arrays.forEach((a, i) => {
      if (counts[i] === 0) return;
      b.view.setUint32(field(a.count), counts[i]!, true);
      if (typeof a.elem === 'string') b.view.setUint32(field(a.elem), elems[i]!, true);
      b.view.setBigUint64(field(a.ptr), bufs[i]!.ptr, true);
    }),
  );
  const got = arrays.map((a, i) => Math.min(counts[i]!, buf.view.getUint32(field(a.count), true)));
  return {
    buf,
    bufs,
    got,
    elems,
    [Symbol.dispose]() {
      buf.free();
      for (const b of bufs) b.free();
    },
  };
}

/** A `bpf_func_info` record: the function starting at `insnOff` has BTF type `typeId` (a FUNC). */
export interface FuncInfo {
  insnOff: number;
  typeId: number;
}
/** A `bpf_line_info` record: offsets into the program's BTF strings, line and column. */
export interface LineInfo {
  insnOff: number;
  fileNameOff: number;
  lineOff: number;
  line: number;
  col: number;
}
export interface ProgInfoOptions {
  /** Also read the translated (post-verifier) instructions, as bytes. */
  insns?: boolean;
  /** Also read the function and line info records (what `bpftool prog dump xlated` annotates with). */
  lineInfo?: boolean;
  /** Also read the addresses of the JITed functions (their kallsyms, in subprogram order). */
  jitedKsyms?: boolean;
}
export type ProgInfoDetail = ProgInfo & {
  xlatedInsns?: Uint8Array;
  funcInfo?: FuncInfo[];
  lineInfo?: LineInfo[];
  jitedKsyms?: bigint[];
};

/**
 * Program info. With `{ insns: true }` it also returns the translated (post-verifier)
 * instructions as bytes, for disassembly; `lineInfo` and `jitedKsyms` add what annotates them.
 */
export function progInfo(fd: Fd, opts: ProgInfoOptions = {}): ProgInfoDetail {
  expectKind(fd, 'prog');
  const arrays: ArrayField[] = [{ count: 'nr_map_ids', ptr: 'map_ids', elem: 4 }];
  const at: Record<string, number> = {};
  const want = (name: string, a: ArrayField) => {
    at[name] = arrays.length;
    arrays.push(a);
  };
  if (opts.insns) want('insns', { count: 'xlated_prog_len', ptr: 'xlated_prog_insns', elem: 1 });
  if (opts.lineInfo) {
    want('func', { count: 'nr_func_info', ptr: 'func_info', elem: 'func_info_rec_size' });
    want('line', { count: 'nr_line_info', ptr: 'line_info', elem: 'line_info_rec_size' });
  }
  if (opts.jitedKsyms) want('ksyms', { count: 'nr_jited_ksyms', ptr: 'jited_ksyms', elem: 8 });
  using r = infoWithArrays(fd, L.progInfo, arrays);
  const skip = new Set([
    'map_ids',
    'xlated_prog_insns',
    'jited_prog_insns',
    'jited_ksyms',
    'jited_func_lens',
    'func_info',
    'line_info',
    'jited_line_info',
    'prog_tags',
  ]);
  const out = decode(L.progInfo, r.buf, (p) => !skip.has(p)) as unknown as ProgInfoDetail;
  const ids = r.bufs[0]!;
  out.mapIds = Array.from({ length: r.got[0]! }, (_, i) => ids.view.getUint32(i * 4, true));
  const records = <T>(name: string, read: (v: DataView, off: number) => T): T[] => {
    const i = at[name]!;
    const v = r.bufs[i]!.view;
    return Array.from({ length: r.got[i]! }, (_, n) => read(v, n * r.elems[i]!));
  };
  if (opts.insns) out.xlatedInsns = r.bufs[at.insns!]!.bytes.slice(0, r.got[at.insns!]!);
  if (opts.lineInfo) {
    out.funcInfo = records('func', (v, o) => ({
      insnOff: v.getUint32(o, true),
      typeId: v.getUint32(o + 4, true),
    }));
    out.lineInfo = records('line', (v, o) => {
      const lineCol = v.getUint32(o + 12, true);
      return {
        insnOff: v.getUint32(o, true),
        fileNameOff: v.getUint32(o + 4, true),
        lineOff: v.getUint32(o + 8, true),
        line: lineCol >>> 10,
        col: lineCol & 0x3ff,
      };
    });
  }
  if (opts.jitedKsyms) out.jitedKsyms = records('ksyms', (v, o) => v.getBigUint64(o, true));
  out.typeName = progTypes.toName(out.type);
  return out;
}

export function btfInfo(fd: Fd): BtfInfo {
  expectKind(fd, 'btf');
  using r = infoWithArrays(fd, L.btfInfo, [{ count: 'name_len', ptr: 'name', elem: 1, extra: 1 }]);
  const out = decode(L.btfInfo, r.buf, (p) => p !== 'name') as unknown as BtfInfo;
  out.name = cString(r.bufs[0]!.bytes);
  return out;
}

const COMMON_LINK = new Set(['type', 'id', 'prog_id']);

/** Link types whose info carries a name behind a pointer: [count field, pointer field]. */
const LINK_NAMES: Record<string, [string, string]> = {
  raw_tracepoint: ['raw_tracepoint.tp_name_len', 'raw_tracepoint.tp_name'],
  iter: ['iter.target_name_len', 'iter.target_name'],
};
/** A perf_event link's union member by `enum bpf_perf_event_type`, and its name field. */
const PERF_EVENT_KINDS: Record<number, [member: string, name?: string]> = {
  1: ['uprobe', 'file_name'],
  2: ['uprobe', 'file_name'],
  3: ['kprobe', 'func_name'],
  4: ['kprobe', 'func_name'],
  5: ['tracepoint', 'tp_name'],
  6: ['event'],
};

/**
 * Link info: the common fields and those of the link type's own union member (for a perf_event
 * link, of its event kind: `perfEventTracepointTpName`, `perfEventKprobeFuncName`, ...), names
 * behind pointers read as strings.
 */
export function linkInfo(fd: Fd): LinkInfo {
  expectKind(fd, 'link');
  let type: number;
  let perfType = 0;
  {
    using first = getInfo(fd, L.linkInfo.$size[1]);
    type = first.view.getUint32(off(L.linkInfo.type), true);
    if (linkTypes.toName(type) === 'perf_event')
      perfType = first.view.getUint32(off(L.linkInfo['perf_event.type']), true);
  }
  const typeName = linkTypes.toName(type);
  let prefix = `${typeName}.`;
  let named = LINK_NAMES[typeName];
  const perf = typeName === 'perf_event' ? PERF_EVENT_KINDS[perfType] : undefined;
  if (perf) {
    prefix = `perf_event.${perf[0]}.`;
    if (perf[1]) named = [`${prefix}name_len`, `${prefix}${perf[1]}`];
  }
  using r = infoWithArrays(
    fd,
    L.linkInfo,
    named ? [{ count: named[0], ptr: named[1], elem: 1, extra: 1 }] : [],
  );
  const out = decode(
    L.linkInfo,
    r.buf,
    (p) =>
      COMMON_LINK.has(p) ||
      (perf !== undefined && p === 'perf_event.type') ||
      (p.startsWith(prefix) && p !== named?.[1]),
  ) as LinkInfo;
  if (named) out[camel(named[1])] = cString(r.bufs[0]!.bytes);
  out.typeName = typeName;
  return out;
}

/** The kernel's `/proc/<pid>/fdinfo` text for a BPF object's fd, as fields (`memlock`, `owner_prog_type`, ...). */
export function fdInfo(fd: Fd | number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/self/fdinfo/${fdNumber(fd)}`, 'utf8').split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) out[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return out;
}

function ids(next: (start: number) => number | undefined): IterableIterator<number> {
  return (function* () {
    let id = 0;
    for (;;) {
      const n = next(id);
      if (n === undefined) return;
      yield n;
      id = n;
    }
  })();
}

/** Every map id on the system, ascending. */
export const mapIds = () => ids(mapGetNextId);
/** Every program id on the system, ascending. */
export const progIds = () => ids(progGetNextId);
/** Every link id on the system, ascending. */
export const linkIds = () => ids(linkGetNextId);
/** Every BTF object id (vmlinux, modules, loaded programs' BTF), ascending. */
export const btfIds = () => ids(btfGetNextId);

/** An fd for the map with this id (needs CAP_SYS_ADMIN). */
export const mapFdById = (id: number, openFlags = 0): Fd =>
  mapGetFdById({ mapId: id, openFlags }, `map id ${id}`);
export const progFdById = (id: number): Fd => progGetFdById({ progId: id }, `prog id ${id}`);
export const linkFdById = (id: number): Fd => linkGetFdById({ linkId: id }, `link id ${id}`);
export const btfFdById = (id: number): Fd => btfGetFdById({ btfId: id }, `btf id ${id}`);
