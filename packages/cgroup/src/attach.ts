import { type AttachMode, type Attachment, Link, linkOrLegacy, type Program } from '@bpfkit/loader';
import {
  AttachType,
  type AttachTypeName,
  attachTypes,
  Defines,
  type Fd,
  intOption,
  linkCreate,
  NativeBuffer,
  oneOf,
  ProgType,
  progAttach,
  progDetach,
  progQuery,
  progTypes,
} from '@bpfkit/sys';
import { Cgroup } from './cgroup.js';

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

function cgroupOf(c: Cgroup | string): Cgroup {
  return typeof c === 'string' ? Cgroup.open(c) : c;
}

function attachTypeOf(t: AttachType | AttachTypeName): AttachType {
  const v = attachTypes.toValue(t);
  if (!CGROUP_ATTACH_TYPES.has(v))
    throw new TypeError(`attach type ${attachTypes.toName(v)} does not target a cgroup`);
  return v;
}

/** A program attached with BPF_PROG_ATTACH; `detach()` (or dispose) runs BPF_PROG_DETACH. */
export class CgroupAttachment implements Attachment {
  readonly cgroup: Cgroup;
  readonly attachType: AttachType;
  readonly #cgroupFd: Fd;
  readonly #prog: Fd;

  constructor(cgroup: Cgroup, attachType: AttachType, cgroupFd: Fd, prog: Fd) {
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
  cgroup: Cgroup | string,
  attachType: AttachType | AttachTypeName,
  opts: CgroupAttachOptions = {},
): Link | CgroupAttachment {
  const cg = cgroupOf(cgroup);
  const type = attachTypeOf(attachType);
  const wanted = cgroupProgType(type);
  if (wanted !== undefined && program.type !== wanted)
    throw new TypeError(
      `attach type ${attachTypes.toName(type)} takes ${progTypes.toName(wanted)} programs, not ${progTypes.toName(program.type)}${program.name ? ` ('${program.name}')` : ''}`,
    );
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
  const fd = cg.open();
  try {
    return linkOrLegacy<Link | CgroupAttachment>(
      mode,
      () =>
        new Link(
          linkCreate({ progFd: program.fd.value, targetFd: fd.value, attachType: type }, `cgroup ${cg.name}`),
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
          `cgroup ${cg.name}`,
        );
        return new CgroupAttachment(cg, type, fd.dup(), program.fd.dup());
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
  cgroup: Cgroup | string,
  attachType: AttachType | AttachTypeName,
  opts: { effective?: boolean } = {},
): CgroupQuery {
  const cg = cgroupOf(cgroup);
  const type = attachTypeOf(attachType);
  using fd = cg.open();
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
