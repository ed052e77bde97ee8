// prog / map / link / pin listings: what bpftool shows, through the public packages.
import { existsSync, readFileSync } from 'node:fs';
import { btfFromKernel, decodeValue } from '@bpfkit/btf';
import { BpfMap, bytes, perCpu, possibleCpus } from '@bpfkit/maps';
import { DEFAULT_BPFFS, listPins, openPinnedMap } from '@bpfkit/pin';
import {
  attachTypes,
  type Fd,
  fdInfo,
  ifName,
  type LinkInfo,
  linkFdById,
  linkIds,
  linkInfo,
  mapFdById,
  mapIds,
  mapInfo,
  type ProgInfo,
  progFdById,
  progIds,
  progInfo,
  progTypes,
} from '@bpfkit/sys';
import { hex, jsonReplacer, type OutputOptions, printObject, printRows } from '../output.js';
import { xlatedText } from './xlated.js';

function each<T>(ids: Iterable<number>, open: (id: number) => Fd, read: (fd: Fd) => T): T[] {
  const out: T[] = [];
  for (const id of ids) {
    let fd: Fd;
    try {
      fd = open(id);
    } catch {
      continue; // gone between listing and opening
    }
    try {
      out.push(read(fd));
    } finally {
      fd.close();
    }
  }
  return out;
}

/** When a program was loaded (its `load_time` counts nanoseconds since boot), as wall-clock time. */
export function loadedAt(loadTimeNs: bigint | number): Date {
  const uptimeMs = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;
  return new Date(Date.now() - uptimeMs + Number(loadTimeNs) / 1e6);
}

/** A time as bpftool prints it (strftime `%FT%T%z`, local time): `2026-12-02T17:00:19+0000`. */
export function bootTime(d: Date): string {
  const p = (n: number, w = 2) => String(Math.trunc(Math.abs(n))).padStart(w, '0');
  const tz = -d.getTimezoneOffset();
  return (
    `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}` +
    `${tz < 0 ? '-' : '+'}${p(tz / 60)}${p(tz % 60)}`
  );
}

const memlock = (fd: Fd): number | undefined => {
  const m = fdInfo(fd).memlock;
  return m === undefined ? undefined : Number(m);
};

export function progList(opts: OutputOptions): void {
  const rows = each(progIds(), progFdById, (fd) => {
    const i = progInfo(fd);
    return {
      id: i.id,
      type: i.typeName,
      name: i.name,
      tag: i.tag,
      maps: i.mapIds.join(','),
      btf: i.btfId,
      loaded_at: opts.json ? i.loadTime : bootTime(loadedAt(i.loadTime)),
    };
  });
  printRows(rows, opts, ['id', 'type', 'name', 'tag', 'loaded_at', 'maps']);
}

/** A program as `bpftool prog show` prints it. */
export function progText(i: ProgInfo, memlockBytes?: number): string {
  let head = `${i.id}: ${i.typeName}  `;
  if (i.name) head += `name ${i.name}  `;
  head += `tag ${i.tag}`;
  if (i.gplCompatible) head += '  gpl';
  if (i.runTimeNs) head += ` run_time_ns ${i.runTimeNs} run_cnt ${i.runCnt}`;
  if (i.recursionMisses) head += ` recursion_misses ${i.recursionMisses}`;
  const out = [head];
  if (i.loadTime) out.push(`\tloaded_at ${bootTime(loadedAt(i.loadTime))}  uid ${i.createdByUid}`);
  let sizes = `\txlated ${i.xlatedProgLen}B${i.jitedProgLen ? `  jited ${i.jitedProgLen}B` : '  not jited'}`;
  if (memlockBytes !== undefined) sizes += `  memlock ${memlockBytes}B`;
  if (i.mapIds.length) sizes += `  map_ids ${i.mapIds.join(',')}`;
  out.push(sizes);
  if (i.btfId) out.push(`\tbtf_id ${i.btfId}`);
  return out.join('\n');
}

export function progShow(id: number, opts: OutputOptions & { disasm?: boolean }): void {
  using fd = progFdById(id);
  const i = progInfo(fd, { insns: !!opts.disasm, lineInfo: !!opts.disasm, jitedKsyms: !!opts.disasm });
  const { xlatedInsns: _x, funcInfo: _f, lineInfo: _l, jitedKsyms: _k, ...info } = i;
  if (opts.json) {
    printObject(
      { ...info, loadedAt: loadedAt(info.loadTime).toISOString(), memlock: memlock(fd) } as Record<
        string,
        unknown
      >,
      opts,
    );
    return;
  }
  console.log(progText(info, memlock(fd)));
  if (opts.disasm) console.log(`\n${xlatedText(i)}`);
}

const attachName = (t: number | bigint | string | undefined) => {
  try {
    return attachTypes.toName(Number(t));
  } catch {
    return `type ${t}`;
  }
};
const ifaceName = (index: number) => {
  if (!index) return '(detached)';
  try {
    return `${ifName(index)}(${index})`;
  } catch {
    return '(unknown)';
  }
};

/** What a link is attached to, as bpftool's `link list` prints it after the link's header. */
export function linkTarget(i: LinkInfo): string {
  const f = (name: string) => i[name];
  switch (i.typeName) {
    case 'raw_tracepoint':
      return `\n\ttp '${f('rawTracepointTpName')}'  `;
    case 'tracing': {
      let prog = '';
      try {
        using p = progFdById(i.progId);
        prog = `prog_type ${progTypes.toName(progInfo(p).type)}  `;
      } catch {
        // the program went away between listing and opening
      }
      const target =
        f('tracingTargetObjId') || f('tracingTargetBtfId')
          ? `\n\ttarget_obj_id ${f('tracingTargetObjId')}  target_btf_id ${f('tracingTargetBtfId')}  `
          : '';
      return `\n\t${prog}attach_type ${attachName(f('tracingAttachType'))}  ${target}`;
    }
    case 'cgroup':
      return `\n\tcgroup_id ${f('cgroupCgroupId')}  attach_type ${attachName(f('cgroupAttachType'))}  `;
    case 'iter': {
      const map = f('iterMapMapId') ? `map_id ${f('iterMapMapId')}  ` : '';
      return `\n\ttarget_name ${f('iterTargetName')}  ${map}`;
    }
    case 'netns':
      return `\n\tnetns_ino ${f('netnsNetnsIno')}  attach_type ${attachName(f('netnsAttachType'))}  `;
    case 'xdp':
      return `\n\tifindex ${ifaceName(Number(f('xdpIfindex')))}  `;
    case 'tcx':
    case 'netkit': {
      const k = i.typeName;
      return `\n\tifindex ${ifaceName(Number(f(`${k}Ifindex`)))}  attach_type ${attachName(f(`${k}AttachType`))}  `;
    }
    case 'struct_ops':
      return `\n\tmap_id ${f('structOpsMapId')}  `;
    case 'sockmap':
      return `\n\tmap_id ${f('sockmapMapId')}  attach_type ${attachName(f('sockmapAttachType'))}  `;
    case 'netfilter':
      return `\n\tpf ${f('netfilterPf')}  hooknum ${f('netfilterHooknum')}  prio ${f('netfilterPriority')}  flags 0x${Number(f('netfilterFlags')).toString(16)}  `;
    case 'kprobe_multi':
      return `\n\tkprobe.multi  func_cnt ${f('kprobeMultiCount')}  `;
    case 'uprobe_multi':
      return `\n\tuprobe.multi  func_cnt ${f('uprobeMultiCount')}  `;
    case 'perf_event': {
      const cookie = (c: unknown) => (c ? `cookie ${c}  ` : '');
      switch (Number(f('perfEventType'))) {
        case 1:
        case 2:
          return `\n\t${Number(f('perfEventType')) === 2 ? 'uretprobe' : 'uprobe'} ${f('perfEventUprobeFileName')}+0x${Number(f('perfEventUprobeOffset')).toString(16)}  ${cookie(f('perfEventUprobeCookie'))}`;
        case 3:
        case 4:
          return `\n\t${Number(f('perfEventType')) === 4 ? 'kretprobe' : 'kprobe'} ${f('perfEventKprobeFuncName')}+0x${Number(f('perfEventKprobeOffset')).toString(16)}  ${cookie(f('perfEventKprobeCookie'))}`;
        case 5:
          return `\n\ttracepoint ${f('perfEventTracepointTpName')}  ${cookie(f('perfEventTracepointCookie'))}`;
        case 6:
          return `\n\tevent ${f('perfEventEventType')}:${f('perfEventEventConfig')}  ${cookie(f('perfEventEventCookie'))}`;
        default:
          return '';
      }
    }
    default:
      return '';
  }
}

/** A link as `bpftool link list` prints it. */
export function linkText(i: LinkInfo): string {
  return `${i.id}: ${i.typeName}  prog ${i.progId}  ${linkTarget(i)}`;
}

export function linkList(opts: OutputOptions): void {
  const links = each(linkIds(), linkFdById, (fd) => linkInfo(fd));
  if (opts.json) {
    const rows = links.map((l) => {
      const { id, typeName, progId, type: _t, ...rest } = l;
      return { id, type: typeName, prog: progId, details: rest };
    });
    printRows(rows, opts);
    return;
  }
  if (links.length === 0) console.log('(none)');
  for (const l of links) console.log(linkText(l));
}

export function mapList(opts: OutputOptions): void {
  const rows = each(mapIds(), mapFdById, (fd) => {
    const i = mapInfo(fd);
    return {
      id: i.id,
      type: i.typeName,
      name: i.name,
      key: i.keySize,
      value: i.valueSize,
      max: i.maxEntries,
      flags: opts.json ? i.mapFlags : `0x${i.mapFlags.toString(16)}`,
      btf: i.btfId,
    };
  });
  printRows(rows, opts, ['id', 'type', 'name', 'key', 'value', 'max', 'flags', 'btf']);
}

/** A map by id or by pinned path. */
export function openMap(target: string): BpfMap<Uint8Array, Uint8Array> {
  if (/^\d+$/.test(target)) return BpfMap.fromId(Number(target));
  if (existsSync(target)) return openPinnedMap(target);
  throw new CliError(`no map '${target}': give a map id or a pinned path`, 2);
}

/** A map as `bpftool map show` prints it. */
export function mapText(m: BpfMap<Uint8Array, Uint8Array>): string {
  const i = m.info;
  const fi = fdInfo(m.fd);
  let head = `${i.id}: ${i.typeName}  `;
  if (i.name) head += `name ${i.name}  `;
  head += `flags 0x${i.mapFlags.toString(16)}`;
  const out = [head];
  let sizes = `\tkey ${i.keySize}B  value ${i.valueSize}B  max_entries ${i.maxEntries}`;
  if (fi.memlock !== undefined) sizes += `  memlock ${fi.memlock}B`;
  out.push(sizes);
  if (i.typeName === 'prog_array' && (fi.owner_prog_type !== undefined || fi.owner_jited !== undefined)) {
    let owner = '\t';
    if (fi.owner_prog_type !== undefined) {
      let t = `type ${fi.owner_prog_type}`;
      try {
        t = progTypes.toName(Number(fi.owner_prog_type));
      } catch {}
      owner += `owner_prog_type ${t}  `;
    }
    if (fi.owner_jited !== undefined) owner += `owner${Number(fi.owner_jited) ? '' : ' not'} jited`;
    out.push(owner);
  }
  if (Number(fi.frozen ?? 0)) out.push('\tfrozen');
  if (i.btfId) out.push(`\tbtf_id ${i.btfId}`);
  return out.join('\n');
}

export function mapShow(target: string, opts: OutputOptions): void {
  using m = openMap(target);
  if (opts.json) {
    const fi = fdInfo(m.fd);
    const extra = {
      memlock: fi.memlock === undefined ? undefined : Number(fi.memlock),
      frozen: Number(fi.frozen ?? 0) === 1,
    };
    printObject({ ...(m.info as unknown as Record<string, unknown>), ...extra }, opts);
    return;
  }
  console.log(mapText(m));
}

/** Dump a map: values formatted through the map's BTF when it has one, raw hex otherwise. */
export function mapDump(target: string, opts: OutputOptions): void {
  using m = openMap(target);
  const info = m.info;
  const btf = info.btfId ? btfFromKernel(info.btfId) : undefined;
  const fmt = (bytes: Uint8Array, typeId: number) =>
    btf && typeId
      ? decodeValue(btf, typeId, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength))
      : hex(bytes);
  const rows: Record<string, unknown>[] = [];
  const cpus = m.perCpu ? perCpu(bytes(info.valueSize), possibleCpus()) : undefined;
  for (const key of m.keys()) {
    const value = m.getBytes(key);
    if (!value) continue;
    const shown = cpus
      ? cpus
          .decode(new DataView(value.buffer, value.byteOffset, value.byteLength), 0)
          .map((v) => fmt(v, info.btfValueTypeId))
      : fmt(value, info.btfValueTypeId);
    rows.push({ key: fmt(key, info.btfKeyTypeId), value: shown });
  }
  if (opts.json) printRows(rows, opts);
  else if (rows.length === 0) console.log('(empty)');
  else
    for (const r of rows)
      console.log(`${JSON.stringify(r.key, jsonReplacer)}: ${JSON.stringify(r.value, jsonReplacer)}`);
  if (!opts.json) console.log(`${rows.length} entr${rows.length === 1 ? 'y' : 'ies'}${btf ? ' (BTF)' : ''}`);
}

export function pinList(dir: string | undefined, opts: OutputOptions): void {
  const root = dir ?? DEFAULT_BPFFS;
  printRows(
    listPins(root).map((p) => ({ path: p.path, kind: p.kind, id: p.id || '', name: p.name, type: p.type })),
    opts,
    ['path', 'kind', 'id', 'name', 'type'],
  );
}

/** An error with an exit code scripts can rely on: 1 runtime failure, 2 usage. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}
