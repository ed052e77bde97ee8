// prog / map / link / pin listings: what bpftool shows, through the public packages.
import { existsSync } from 'node:fs';
import { btfFromKernel, decodeValue } from '@bpfkit/btf';
import { BpfMap, bytes, perCpu, possibleCpus } from '@bpfkit/maps';
import { DEFAULT_BPFFS, listPins, openPinnedMap } from '@bpfkit/pin';
import {
  type Fd,
  linkFdById,
  linkIds,
  linkInfo,
  mapFdById,
  mapIds,
  mapInfo,
  progFdById,
  progIds,
  progInfo,
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
      loaded_at: i.loadTime,
    };
  });
  printRows(rows, opts, ['id', 'type', 'name', 'tag', 'maps']);
}

export function progShow(id: number, opts: OutputOptions & { disasm?: boolean }): void {
  using fd = progFdById(id);
  const i = progInfo(fd, { insns: !!opts.disasm, lineInfo: !!opts.disasm, jitedKsyms: !!opts.disasm });
  const { xlatedInsns: _x, funcInfo: _f, lineInfo: _l, jitedKsyms: _k, ...info } = i;
  printObject(info as Record<string, unknown>, opts);
  if (opts.disasm && !opts.json) console.log(`\n${xlatedText(i)}`);
}

export function linkList(opts: OutputOptions): void {
  const rows = each(linkIds(), linkFdById, (fd) => {
    const { id, typeName, progId, type: _t, ...rest } = linkInfo(fd);
    return { id, type: typeName, prog: progId, details: rest };
  });
  printRows(rows, opts, ['id', 'type', 'prog', 'details']);
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
      flags: i.mapFlags,
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

export function mapShow(target: string, opts: OutputOptions): void {
  using m = openMap(target);
  printObject(m.info as unknown as Record<string, unknown>, opts);
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
