import { openSync, statSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import type { Program } from '@bpfkit/loader';
import {
  AttachType,
  type AttachTypeName,
  attachTypes,
  CGROUP2_SUPER_MAGIC,
  cgroup2Mount,
  Defines,
  Fd,
  intOption,
  linkCreate,
  NativeBuffer,
  oneOf,
  ProgType,
  progAttach,
  progDetach,
  progQuery,
  statfsType,
} from '@bpfkit/sys';
import { type AttachMode, type Attachment, Link, linkOrLegacy, requireProgramType } from './link.js';

/** The attach types that target a cgroup. */
export const CGROUP_ATTACH_TYPES = new Set<number>(
  Object.entries(AttachType)
    .filter(([k]) => k.startsWith('CGROUP_') || k === 'LSM_CGROUP')
    .map(([, v]) => v),
);

/** The program type each cgroup attach type takes (the kernel's attach_type_to_prog_type). */
export function cgroupProgType(attachType: number): ProgType | undefined {
  const name = Object.entries(AttachType).find(([, v]) => v === attachType)?.[0];
  if (!name || !CGROUP_ATTACH_TYPES.has(attachType)) return undefined;
  if (name === 'LSM_CGROUP') return ProgType.LSM;
  const what = name.slice('CGROUP_'.length);
  if (what === 'INET_INGRESS' || what === 'INET_EGRESS') return ProgType.CGROUP_SKB;
  if (/^(INET_SOCK_(CREATE|RELEASE)|INET[46]_POST_BIND)$/.test(what)) return ProgType.CGROUP_SOCK;
  if (what === 'SOCK_OPS') return ProgType.SOCK_OPS;
  if (what === 'DEVICE') return ProgType.CGROUP_DEVICE;
  if (what === 'SYSCTL') return ProgType.CGROUP_SYSCTL;
  if (what === 'GETSOCKOPT' || what === 'SETSOCKOPT') return ProgType.CGROUP_SOCKOPT;
  if (/(BIND|CONNECT|SENDMSG|RECVMSG|GETPEERNAME|GETSOCKNAME)$/.test(what)) return ProgType.CGROUP_SOCK_ADDR;
  return undefined;
}

export type CgroupAttachMode = AttachMode;
export type LegacyFlag = 'none' | 'override' | 'multi';
const LEGACY_FLAGS: Record<LegacyFlag, number> = {
  none: 0,
  override: Defines.BPF_F_ALLOW_OVERRIDE,
  multi: Defines.BPF_F_ALLOW_MULTI,
};
const LEGACY_FLAG_NAMES = Object.keys(LEGACY_FLAGS) as LegacyFlag[];

export interface CgroupAttachOptions {
  /** `auto` (default): a bpf_link where possible, else BPF_PROG_ATTACH. */
  mode?: CgroupAttachMode;
  /** Legacy attach flags: none, override (BPF_F_ALLOW_OVERRIDE), multi (BPF_F_ALLOW_MULTI), or the number. */
  flags?: LegacyFlag | number;
  /** Legacy multi attach: atomically replace this program (BPF_F_REPLACE). */
  replace?: Program;
}

/**
 * A cgroup v2 directory to attach to: its path (absolute, or relative to the v2 root), or an object
 * with one (`@bpfkit/cgroup`'s `Cgroup`).
 */
export type CgroupTarget = string | { readonly path: string };

const O_DIRECTORY = 0o200000;

/** The absolute path of a cgroup v2 directory; a TypeError when `path` is not one. */
export function cgroupPath(target: CgroupTarget): string {
  const path = typeof target === 'string' ? target : target.path;
  const abs = isAbsolute(path) ? path : join(cgroup2Mount(), path);
  if (!statSync(abs, { throwIfNoEntry: false })?.isDirectory() || statfsType(abs) !== CGROUP2_SUPER_MAGIC)
    throw new TypeError(`${abs} is not a cgroup v2 directory`);
  return abs;
}

/** An fd for a cgroup directory, as BPF attach and query take it. */
export function openCgroup(target: CgroupTarget): Fd {
  return new Fd(openSync(cgroupPath(target), O_DIRECTORY), 'cgroup');
}

/** The cgroup's name as /proc/<pid>/cgroup shows it (path relative to the v2 root). */
const cgroupName = (path: string) => `/${relative(cgroup2Mount(), path)}`;

function attachTypeOf(t: AttachType | AttachTypeName): AttachType {
  const v = attachTypes.toValue(t);
  if (!CGROUP_ATTACH_TYPES.has(v))
    throw new TypeError(`attach type ${attachTypes.toName(v)} does not target a cgroup`);
  return v;
}

/** A program attached with BPF_PROG_ATTACH; `detach()` (or dispose) runs BPF_PROG_DETACH. */
export class CgroupAttachment implements Attachment {
  /** The cgroup directory's absolute path. */
  readonly cgroup: string;
  readonly attachType: AttachType;
  readonly #cgroupFd: Fd;
  readonly #prog: Fd;

  constructor(cgroup: string, attachType: AttachType, cgroupFd: Fd, prog: Fd) {
    this.cgroup = cgroup;
    this.attachType = attachType;
    this.#cgroupFd = cgroupFd.persistent();
    this.#prog = prog.persistent();
  }

  get detached(): boolean {
    return this.#prog.closed;
  }

  detach(): void {
    if (this.#prog.closed) return;
    try {
      progDetach({
        targetFd: this.#cgroupFd.value,
        attachBpfFd: this.#prog.value,
        attachType: this.attachType,
      });
    } finally {
      this.#prog.close();
      this.#cgroupFd.close();
    }
  }

  [Symbol.dispose](): void {
    this.detach();
  }
}

/**
 * Attach `program` to a cgroup. In link mode (and `auto` where the kernel has cgroup links)
 * the result is a {@link Link}: pinnable, atomically updatable, detached on close. In legacy mode
 * it is a {@link CgroupAttachment} with the classic flags and replace.
 */
export function attachCgroup(
  program: Program,
  cgroup: CgroupTarget,
  attachType: AttachType | AttachTypeName,
  opts: CgroupAttachOptions = {},
): Link | CgroupAttachment {
  const path = cgroupPath(cgroup);
  const type = attachTypeOf(attachType);
  const wanted = cgroupProgType(type);
  if (wanted !== undefined) requireProgramType(program, [wanted], `attach type ${attachTypes.toName(type)}`);
  if (typeof opts.flags === 'number') intOption(opts.flags, 'flags', 0, 0xffffffff);
  else if (opts.flags !== undefined) oneOf(opts.flags, LEGACY_FLAG_NAMES, 'flags');
  const mode = opts.mode ?? (opts.flags !== undefined || opts.replace ? 'legacy' : 'auto');
  if (
    mode !== 'legacy' &&
    (opts.replace || (opts.flags !== undefined && opts.flags !== 'none' && opts.flags !== 0))
  )
    throw new TypeError(
      'flags and replace are for legacy attach; links are always multi and are updated with link.update()',
    );
  const fd = openCgroup(path);
  try {
    return linkOrLegacy<Link | CgroupAttachment>(
      mode,
      () =>
        new Link(
          linkCreate(
            { progFd: program.fd.value, targetFd: fd.value, attachType: type },
            `cgroup ${cgroupName(path)}`,
          ),
        ),
      () => {
        let flags = typeof opts.flags === 'number' ? opts.flags : LEGACY_FLAGS[opts.flags ?? 'none'];
        if (opts.replace) flags |= Defines.BPF_F_REPLACE;
        progAttach(
          {
            targetFd: fd.value,
            attachBpfFd: program.fd.value,
            attachType: type,
            attachFlags: flags,
            replaceBpfFd: opts.replace?.fd.value ?? 0,
          },
          `cgroup ${cgroupName(path)}`,
        );
        return new CgroupAttachment(path, type, fd.dup(), program.fd.dup());
      },
    );
  } finally {
    fd.close();
  }
}

export interface CgroupQuery {
  /** Programs attached (or in effect, with `effective`), in run order. */
  progIds: number[];
  /** The legacy attach flags of the cgroup for this attach type. */
  attachFlags: number;
  /** Bumped by every change (6.6+), for race-free replace. */
  revision: bigint;
}

/** BPF_PROG_QUERY: what runs for `attachType` on `cgroup` (with `effective`, inherited programs too). */
export function queryCgroup(
  cgroup: CgroupTarget,
  attachType: AttachType | AttachTypeName,
  opts: { effective?: boolean } = {},
): CgroupQuery {
  const type = attachTypeOf(attachType);
  using fd = openCgroup(cgroup);
  const queryFlags = opts.effective ? 1 : 0; // BPF_F_QUERY_EFFECTIVE
  const first = progQuery({ targetFd: fd.value, attachType: type, queryFlags });
  using ids = new NativeBuffer(4 * Math.max(first.progCnt, 1));
  const q = progQuery({
    targetFd: fd.value,
    attachType: type,
    queryFlags,
    progIds: ids.ptr,
    progCnt: first.progCnt,
  });
  return {
    progIds: Array.from({ length: q.progCnt }, (_, i) => ids.view.getUint32(i * 4, true)),
    attachFlags: q.attachFlags,
    revision: q.revision,
  };
}
