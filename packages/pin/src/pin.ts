import { lstatSync, readdirSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Link } from '@bpfkit/link';
import { Program } from '@bpfkit/loader';
import { BpfMap, type Codec } from '@bpfkit/maps';
import {
  BpfError,
  type Fd,
  fdNumber,
  linkInfo,
  MapFlags,
  mapInfo,
  NativeBuffer,
  type ObjectKind,
  objectKind,
  objGet,
  objPin,
  oneOf,
  progInfo,
} from '@bpfkit/sys';
import { isBpffs } from './bpffs.js';

/** A pinning problem, naming the path. */
export class PinError extends Error {
  override name = 'PinError';
  constructor(
    message: string,
    readonly path: string,
    options?: ErrorOptions,
  ) {
    super(`${path}: ${message}`, options);
  }
}

type Pinnable = { fd: Fd } | Fd;

function onBpffs(path: string, what: string): void {
  if (!path.startsWith('/')) throw new PinError(`${what} needs an absolute path`, path);
  if (!isBpffs(dirname(path)))
    throw new PinError(`${what}: ${dirname(path)} is not on a bpffs mount (see ensureBpffs)`, path);
}

/** Pin a map, program or link (or a raw fd) at `path` on bpffs. */
export function pin(obj: Pinnable, path: string): void {
  onBpffs(path, 'pin');
  using p = NativeBuffer.from(path);
  try {
    objPin({ pathname: p.ptr, bpfFd: fdNumber(obj) }, path);
  } catch (e) {
    if (e instanceof BpfError && e.code === 'EEXIST')
      throw new PinError('something is already pinned here', path, { cause: e });
    if (e instanceof BpfError && e.code === 'ENOENT')
      throw new PinError('the directory does not exist', path, { cause: e });
    throw e;
  }
}

export type OpenFlag = 'rdonly' | 'wronly';
const FILE_FLAGS: Record<OpenFlag, number> = { rdonly: MapFlags.RDONLY, wronly: MapFlags.WRONLY };
const OPEN_FLAGS = Object.keys(FILE_FLAGS) as OpenFlag[];

function openFd(path: string, flag?: OpenFlag): Fd {
  if (flag !== undefined) oneOf(flag, OPEN_FLAGS, 'flag');
  onBpffs(path, 'open');
  using p = NativeBuffer.from(path);
  try {
    return objGet({ pathname: p.ptr, fileFlags: flag ? FILE_FLAGS[flag] : 0 }, path);
  } catch (e) {
    if (e instanceof BpfError && e.code === 'ENOENT')
      throw new PinError('nothing is pinned here', path, { cause: e });
    throw e;
  }
}

export type Pinned = BpfMap<unknown, unknown> | Program | Link;

/** Open what is pinned at `path` as the right object: a BpfMap (with its info), a Program or a Link. */
export function openPinned(path: string, opts: { flag?: OpenFlag } = {}): Pinned {
  const fd = openFd(path, opts.flag);
  try {
    switch (objectKind(fd)) {
      case 'map':
        return BpfMap.fromFd(fd);
      case 'prog':
        return Program.fromFd(fd);
      case 'link':
        return Link.fromFd(fd);
      default:
        throw new PinError('the pinned object is not a map, program or link', path);
    }
  } catch (e) {
    if (!fd.closed) fd.close();
    throw e;
  }
}

function expectKind(path: string, fd: Fd, kind: ObjectKind): void {
  const actual = objectKind(fd);
  if (actual !== kind) {
    fd.close();
    throw new PinError(`a ${actual ?? 'non-BPF object'} is pinned here, not a ${kind}`, path);
  }
}

/** Open a pinned map, typed by codecs that must match its key and value sizes. */
export function openPinnedMap<K = Uint8Array, V = Uint8Array>(
  path: string,
  opts: { key?: Codec<K>; value?: Codec<V>; flag?: OpenFlag } = {},
): BpfMap<K, V> {
  const fd = openFd(path, opts.flag);
  expectKind(path, fd, 'map');
  try {
    return BpfMap.fromFd(fd, {
      ...(opts.key ? { key: opts.key } : {}),
      ...(opts.value ? { value: opts.value } : {}),
    });
  } catch (e) {
    fd.close();
    throw new PinError((e as Error).message, path, { cause: e });
  }
}

export function openPinnedProgram(path: string): Program {
  const fd = openFd(path);
  expectKind(path, fd, 'prog');
  return Program.fromFd(fd);
}

export function openPinnedLink(path: string): Link {
  const fd = openFd(path);
  expectKind(path, fd, 'link');
  return new Link(fd);
}

/** Remove a pin (the object lives on while something else holds it). */
export function unpin(path: string): void {
  onBpffs(path, 'unpin');
  try {
    unlinkSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new PinError('nothing is pinned here', path, { cause: e });
    throw new PinError(`cannot unpin (${code})`, path, { cause: e });
  }
}

export interface PinEntry {
  path: string;
  kind: ObjectKind | 'dir';
  id: number;
  name: string;
  /** Map, program or link type name. */
  type: string;
}

/** What is pinned under `dir` (recursively), with each pin's kind, id and name. */
export function listPins(dir: string, opts: { recursive?: boolean } = {}): PinEntry[] {
  if (!isBpffs(dir)) throw new PinError('not on a bpffs mount', dir);
  const out: PinEntry[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (lstatSync(path).isDirectory()) {
      out.push({ path, kind: 'dir', id: 0, name, type: '' });
      if (opts.recursive !== false) out.push(...listPins(path, opts));
      continue;
    }
    let fd: Fd;
    try {
      fd = openFd(path);
    } catch {
      continue; // not a pin (e.g. the kernel's maps.debug / progs.debug iterator files)
    }
    using _owned = fd;
    const kind = objectKind(fd);
    if (kind === 'map') {
      const i = mapInfo(fd);
      out.push({ path, kind, id: i.id, name: i.name, type: i.typeName });
    } else if (kind === 'prog') {
      const i = progInfo(fd);
      out.push({ path, kind, id: i.id, name: i.name, type: i.typeName });
    } else if (kind === 'link') {
      const i = linkInfo(fd);
      out.push({ path, kind, id: i.id, name: '', type: i.typeName });
    }
  }
  return out;
}
