// TC: a `sched_cls` program on an interface's ingress or egress path. Attached with a tcx link
// (BPF_LINK_CREATE with BPF_TCX_INGRESS/EGRESS, 6.6+), ordered among the others, or as a cls_bpf
// filter in direct-action mode under a clsact qdisc over rtnetlink, the way older kernels (and
// `tc filter add … bpf da`) do it. netkit devices (6.7+) run the same programs through the same
// kind of link (BPF_NETKIT_PRIMARY/PEER), placed and guarded the same way: `attachNetkit`.

import { fstatSync } from 'node:fs';
import { kernelConfig, kernelConfigSource, type Program } from '@bpfkit/loader';
import {
  AttachType,
  addBpfFilter,
  addClsact,
  BpfError,
  bpfFilterOptions,
  ClosedError,
  Defines,
  deleteClsact,
  deleteFilter,
  hasClsact,
  InterfaceNotFoundError,
  ifIndex,
  kernelOlderThan,
  linkCreate,
  listFilters,
  MapFlags,
  NativeBuffer,
  NetkitAction,
  Netns,
  NotSupportedError,
  oneOf,
  ProgType,
  progQuery,
  type TcObject,
  TcxAction,
  tcHandle,
} from '@bpfkit/sys';
import { type Attachment, Link, linkUnsupported, requireProgramType } from './link.js';

export { NetkitAction, TcxAction };

/** Which path of the interface: packets received (`ingress`) or sent (`egress`). */
export type TcDirection = 'ingress' | 'egress';
const DIRECTIONS: readonly TcDirection[] = ['ingress', 'egress'];
/** How to attach: a tcx link (`tcx`), a cls_bpf filter over rtnetlink (`netlink`), or tcx where the kernel has it (`auto`). */
export type TcAttachVia = 'auto' | 'tcx' | 'netlink';
const VIAS: readonly TcAttachVia[] = ['auto', 'tcx', 'netlink'];
/** The first kernel with tcx links. */
const TCX_SINCE = '6.6';

const TCX_TYPE: Record<TcDirection, number> = {
  ingress: AttachType.TCX_INGRESS,
  egress: AttachType.TCX_EGRESS,
};
/** The clsact qdisc's parent for each direction's filters (ffff:fff2, ffff:fff3). */
const CLSACT_PARENT: Record<TcDirection, number> = {
  ingress: tcHandle(Defines.TC_H_CLSACT, Defines.TC_H_MIN_INGRESS),
  egress: tcHandle(Defines.TC_H_CLSACT, Defines.TC_H_MIN_EGRESS),
};

/** A program or link already attached on the same hook, to place a tcx program next to: the object itself or its id. */
export type TcAnchor = Program | Link | { programId: number } | { linkId: number };

export interface TcOptions {
  direction: TcDirection;
  /** `auto` (the default): a tcx link; a cls_bpf filter on kernels before 6.6, or when `priority`/`handle` is given. */
  via?: TcAttachVia;
  /** tcx: run before this program or link (BPF_F_BEFORE), or with `'all'` before every other (first). */
  before?: TcAnchor | 'all';
  /** tcx: run after this program or link (BPF_F_AFTER), or with `'all'` after every other (last). */
  after?: TcAnchor | 'all';
  /** tcx: attach only if the hook's revision (see {@link queryTc}) is still this one; ESTALE otherwise. */
  expectedRevision?: number | bigint;
  /** cls_bpf: the filter's priority, 1-65535 (lower runs first); the kernel picks one when not given. */
  priority?: number;
  /** cls_bpf: the filter's handle; the kernel picks one when not given. */
  handle?: number;
  /** cls_bpf: the filter's name as `tc filter show` prints it (the program's name by default). */
  name?: string;
}

const NETLINK_ONLY = ['priority', 'handle', 'name'] as const;
const TCX_ONLY = ['before', 'after', 'expectedRevision'] as const;

/** The relative_fd/relative_id and flags that place a program on a multi-program hook (tcx, netkit). */
export function placement(opts: Pick<TcOptions, 'before' | 'after'>): {
  flags: number;
  fd?: number;
  id?: number;
} {
  if (opts.before !== undefined && opts.after !== undefined)
    throw new TypeError('a tcx or netkit program goes either before or after another, not both');
  const anchor = opts.before ?? opts.after;
  if (anchor === undefined) return { flags: 0 };
  const flags = opts.before !== undefined ? Defines.BPF_F_BEFORE : Defines.BPF_F_AFTER;
  if (anchor === 'all') return { flags };
  if (anchor instanceof Link) return { flags: flags | MapFlags.LINK, fd: anchor.fd.value };
  if ('linkId' in anchor)
    return { flags: flags | MapFlags.LINK | Defines.BPF_F_ID, id: checkedId(anchor.linkId) };
  if ('programId' in anchor) return { flags: flags | Defines.BPF_F_ID, id: checkedId(anchor.programId) };
  if ('fd' in anchor) return { flags, fd: anchor.fd.value };
  throw new TypeError('a tcx or netkit anchor is a Program, a Link, { programId } or { linkId }');
}

/** A bpf_link on a multi-program hook of an interface (tcx, netkit), placed by before/after and guarded by the expected revision. */
export function multiProgLink(
  program: Program,
  ifindex: number,
  attachType: number,
  family: 'tcx' | 'netkit',
  opts: Pick<TcOptions, 'before' | 'after' | 'expectedRevision'>,
  what: string,
): Link {
  const place = placement(opts);
  return new Link(
    linkCreate(
      {
        progFd: program.fd.value,
        targetIfindex: ifindex,
        attachType,
        flags: place.flags,
        ...(place.fd !== undefined ? { [`${family}.relativeFd`]: place.fd } : {}),
        ...(place.id !== undefined ? { [`${family}.relativeId`]: place.id } : {}),
        ...(opts.expectedRevision !== undefined
          ? { [`${family}.expectedRevision`]: BigInt(opts.expectedRevision) }
          : {}),
      } as Parameters<typeof linkCreate>[0],
      what,
    ),
  );
}

function checkedId(id: number): number {
  if (!Number.isInteger(id) || id < 1 || id > 0xffffffff)
    throw new RangeError(`an id is a whole number ≥ 1, got ${id}`);
  return id;
}

/**
 * Attach a `sched_cls` program to an interface's ingress or egress (a name or an index, in the
 * calling thread's network namespace). On 6.6+ a tcx link by default: closing the link (and any
 * pin) detaches; it runs in the order `before`/`after` give among the hook's programs, and
 * returns `TcxAction.NEXT` to let the next one run. With `via: 'netlink'`, on older kernels, or
 * given a `priority`/`handle`, a cls_bpf filter in direct-action mode under the interface's
 * clsact qdisc (made if missing): a {@link TcFilterAttachment}.
 */
export function attachTc(program: Program, iface: string | number, opts: TcOptions & { via: 'tcx' }): Link;
export function attachTc(
  program: Program,
  iface: string | number,
  opts: TcOptions & { via: 'netlink' },
): TcFilterAttachment;
export function attachTc(
  program: Program,
  iface: string | number,
  opts: TcOptions,
): Link | TcFilterAttachment;
export function attachTc(
  program: Program,
  iface: string | number,
  opts: TcOptions,
): Link | TcFilterAttachment {
  const via = opts.via ?? 'auto';
  oneOf(via, VIAS, 'TC attach via');
  oneOf(opts.direction, DIRECTIONS, 'TC direction');
  const netlinkOnly = NETLINK_ONLY.filter((k) => opts[k] !== undefined);
  const tcxOnly = TCX_ONLY.filter((k) => opts[k] !== undefined);
  if (via === 'tcx' && netlinkOnly.length)
    throw new TypeError(`${netlinkOnly.join(', ')} place a cls_bpf filter (via 'netlink'), not a tcx link`);
  if (via === 'netlink' && tcxOnly.length)
    throw new TypeError(`${tcxOnly.join(', ')} order tcx links (via 'tcx'); a cls_bpf filter has a priority`);
  if (netlinkOnly.length && tcxOnly.length)
    throw new TypeError(
      `${[...netlinkOnly, ...tcxOnly].join(', ')}: options of a filter and of a tcx link at once`,
    );
  if (
    opts.priority !== undefined &&
    (!Number.isInteger(opts.priority) || opts.priority < 1 || opts.priority > 0xffff)
  )
    throw new RangeError(`a filter priority is 1-65535, got ${opts.priority}`);
  if (
    opts.handle !== undefined &&
    (!Number.isInteger(opts.handle) || opts.handle < 1 || opts.handle > 0xffffffff)
  )
    throw new RangeError(`a filter handle is 1-4294967295, got ${opts.handle}`);
  const ifindex = ifIndex(iface);
  if (via === 'tcx' || (via === 'auto' && !netlinkOnly.length)) {
    try {
      return multiProgLink(
        program,
        ifindex,
        TCX_TYPE[opts.direction],
        'tcx',
        opts,
        `tcx ${opts.direction} on interface ${iface}`,
      );
    } catch (e) {
      // Only a kernel without tcx falls back: on 6.6+ the link's error is the answer.
      if (!linkUnsupported(e) || !kernelOlderThan(TCX_SINCE)) throw e;
      if (via === 'tcx' || tcxOnly.length) throw new NotSupportedError('tcx links', TCX_SINCE, { cause: e });
    }
  }
  return TcFilterAttachment.attach(program, ifindex, opts);
}

/** The clsact qdiscs this process made, by namespace and interface: only those are ever removed. */
const madeClsact = new Set<string>();
const qdiscKey = (ns: Netns, ifindex: number): string => {
  const st = fstatSync(ns.fd.value);
  return `${st.dev}:${st.ino}:${ifindex}`;
};

/**
 * A cls_bpf filter in direct-action mode under an interface's clsact qdisc, added over
 * rtnetlink. It remembers the network namespace it was added in and acts there later. `detach()`
 * removes the filter only if it still holds our program (and throws otherwise); `close()` does
 * the same but leaves alone a filter or interface that is gone or was replaced. The clsact qdisc
 * goes too when this process made it and no filter is left under it. Not tied to an fd: a process
 * that exits without closing leaves the filter attached.
 */
export class TcFilterAttachment implements Attachment {
  readonly ifindex: number;
  readonly direction: TcDirection;
  /** The filter's place, as the kernel made it: parent (ffff:fff2 ingress, ffff:fff3 egress), priority, handle, protocol. */
  readonly parent: number;
  readonly priority: number;
  readonly handle: number;
  readonly protocol: number;
  /** The program's id. */
  readonly programId: number;
  readonly #ns: Netns;
  #live = true;

  private constructor(ifindex: number, direction: TcDirection, made: TcObject, programId: number, ns: Netns) {
    this.ifindex = ifindex;
    this.direction = direction;
    this.parent = made.parent;
    this.priority = made.priority;
    this.handle = made.handle;
    this.protocol = made.protocol;
    this.programId = programId;
    this.#ns = ns;
  }

  /** Add the filter (and the clsact qdisc if the interface has none) in the calling thread's namespace. */
  static attach(program: Program, ifindex: number, opts: TcOptions): TcFilterAttachment {
    const info = program.info;
    const ns = Netns.current();
    try {
      const key = qdiscKey(ns, ifindex);
      if (addClsact(ifindex)) madeClsact.add(key);
      let made: TcObject;
      try {
        made = addBpfFilter(ifindex, {
          parent: CLSACT_PARENT[opts.direction],
          ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
          ...(opts.handle !== undefined ? { handle: opts.handle } : {}),
          progFd: program.fd.value,
          name: opts.name ?? (info.name || 'bpfkit'),
          flags: Defines.TCA_BPF_FLAG_ACT_DIRECT,
        });
      } catch (e) {
        removeClsactIfUnused(ns, ifindex);
        throw e;
      }
      return new TcFilterAttachment(ifindex, opts.direction, made, info.id, ns);
    } catch (e) {
      ns.close();
      throw e;
    }
  }

  /** The filter as the kernel holds it now, or undefined when it is gone. */
  #find(): TcObject | undefined {
    return listFilters(this.ifindex, this.parent).find(
      (f) => f.priority === this.priority && f.handle === this.handle && f.protocol === this.protocol,
    );
  }

  /** Whether the filter is still there and still holds our program. */
  get attached(): boolean {
    if (!this.#live) return false;
    return this.#ns.run(() => {
      try {
        const f = this.#find();
        return f !== undefined && bpfFilterOptions(f)?.progId === this.programId;
      } catch (e) {
        if (e instanceof BpfError && e.code === 'ENODEV') return false;
        throw e;
      }
    });
  }

  /** Remove the filter, only if it still holds our program; throws when it is gone or was replaced. */
  detach(): void {
    if (!this.#live) throw new ClosedError('TC filter attachment');
    this.#ns.run(() => {
      const f = this.#find();
      const progId = f && bpfFilterOptions(f)?.progId;
      if (progId !== this.programId)
        throw new Error(
          f
            ? `the TC filter ${this.priority}:${this.handle.toString(16)} on interface ${this.ifindex} now holds program ${progId}, not ours (${this.programId})`
            : `the TC filter ${this.priority}:${this.handle.toString(16)} on interface ${this.ifindex} is gone`,
        );
      deleteFilter(this.ifindex, { ...this, kind: 'bpf' });
      removeClsactIfUnused(this.#ns, this.ifindex);
    });
    this.#live = false;
    this.#ns.close();
  }

  close(): void {
    if (!this.#live) return;
    try {
      this.detach();
    } catch (e) {
      // gone, or no longer ours: nothing of ours left to remove
      if (e instanceof BpfError && !['ENOENT', 'ENODEV', 'EINVAL'].includes(e.code)) throw e;
      this.#ns.run(() => forgetClsactIfGone(this.#ns, this.ifindex));
    } finally {
      if (this.#live) {
        this.#live = false;
        this.#ns.close();
      }
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Remove a clsact qdisc this process made once no filter is left under it (in the calling thread's namespace). */
function removeClsactIfUnused(ns: Netns, ifindex: number): void {
  const key = qdiscKey(ns, ifindex);
  if (!madeClsact.has(key)) return;
  try {
    if (
      listFilters(ifindex, CLSACT_PARENT.ingress).length ||
      listFilters(ifindex, CLSACT_PARENT.egress).length
    )
      return;
    deleteClsact(ifindex);
  } catch (e) {
    if (!(e instanceof BpfError && ['ENOENT', 'ENODEV', 'EINVAL'].includes(e.code))) throw e;
  }
  madeClsact.delete(key);
}

/** Forget a clsact qdisc this process made that someone removed (so one made later is never taken for ours). */
function forgetClsactIfGone(ns: Netns, ifindex: number): void {
  try {
    if (hasClsact(ifindex)) return;
  } catch (e) {
    if (!(e instanceof BpfError && e.code === 'ENODEV') && !(e instanceof InterfaceNotFoundError)) throw e;
  }
  madeClsact.delete(qdiscKey(ns, ifindex));
}

/** One cls_bpf filter as {@link queryTc} reports it. */
export interface TcFilterInfo {
  priority: number;
  handle: number;
  protocol: number;
  programId: number;
  name: string;
  directAction: boolean;
}

/** What runs on one direction of an interface. */
export interface TcQuery {
  /**
   * tcx: the programs in the order they run, each with the id of the link that holds it, and the
   * hook's revision (it changes with every attach and detach); undefined on kernels without tcx.
   */
  tcx: { revision: bigint; programs: { programId: number; linkId: number }[] } | undefined;
  /** The cls_bpf filters under the clsact qdisc, in the order the kernel lists them (priority first). */
  filters: TcFilterInfo[];
}

/** The tcx programs (BPF_PROG_QUERY) and cls_bpf filters (RTM_GETTFILTER) on one direction of an interface. */
export function queryTc(iface: string | number, direction: TcDirection): TcQuery {
  oneOf(direction, DIRECTIONS, 'TC direction');
  const ifindex = ifIndex(iface);
  const filters = listFilters(ifindex, CLSACT_PARENT[direction]).flatMap((f) => {
    const b = bpfFilterOptions(f);
    return b
      ? [
          {
            priority: f.priority,
            handle: f.handle,
            protocol: f.protocol,
            programId: b.progId,
            name: b.name,
            directAction: (b.flags & Defines.TCA_BPF_FLAG_ACT_DIRECT) !== 0,
          },
        ]
      : [];
  });
  return { tcx: queryTcx(ifindex, TCX_TYPE[direction]), filters };
}

/**
 * The programs on a multi-program hook of an interface (tcx, netkit) in run order, with their
 * links, and its revision; undefined on kernels before `since`, which lack the hook.
 */
export function queryTcx(ifindex: number, attachType: number, since = TCX_SINCE): TcQuery['tcx'] {
  for (let room = 8; ; room *= 4) {
    using ids = new NativeBuffer(8 * room);
    let q: ReturnType<typeof progQuery>;
    try {
      q = progQuery({
        targetIfindex: ifindex,
        attachType,
        progIds: ids.ptr,
        linkIds: ids.at(4 * room),
        count: room,
      });
    } catch (e) {
      if (e instanceof BpfError && e.code === 'ENOSPC') continue;
      if (linkUnsupported(e) && kernelOlderThan(since)) return undefined;
      throw e;
    }
    const programs = Array.from({ length: q.progCnt }, (_, i) => ({
      programId: ids.view.getUint32(4 * i, true),
      linkId: ids.view.getUint32(4 * (room + i), true),
    }));
    return { revision: q.revision, programs };
  }
}

// ---- netkit ---------------------------------------------------------------------------------

/**
 * Which device of a netkit pair runs the program: `primary` runs on what the primary sends
 * (towards the peer), `peer` on what the peer sends. Both attach through the primary.
 */
export type NetkitSide = 'primary' | 'peer';
const SIDES: readonly NetkitSide[] = ['primary', 'peer'];
const NETKIT_TYPE: Record<NetkitSide, number> = {
  primary: AttachType.NETKIT_PRIMARY,
  peer: AttachType.NETKIT_PEER,
};
/** The first kernel with netkit devices and links. */
const NETKIT_SINCE = '6.7';

export interface NetkitOptions extends Pick<TcOptions, 'before' | 'after' | 'expectedRevision'> {
  /** `primary` (the default) or `peer`. */
  side?: NetkitSide;
}

/** A kernel of 6.7+ without netkit (CONFIG_NETKIT is a bool) answers EINVAL; its config shows why. */
function netkitMissing(): string | undefined {
  let config: Map<string, string>;
  try {
    config = kernelConfig();
  } catch {
    return undefined; // no config to read: it demonstrates nothing
  }
  return config.get('CONFIG_NETKIT') === 'y'
    ? undefined
    : `CONFIG_NETKIT is not set in ${kernelConfigSource()}`;
}

/** The kernel's answer to a netkit attach or query, said in netkit's terms. */
function netkitError(e: unknown, iface: string | number, what: string): unknown {
  if (!(e instanceof BpfError)) return e;
  if (linkUnsupported(e)) {
    if (kernelOlderThan(NETKIT_SINCE))
      return new NotSupportedError('netkit links (BPF_NETKIT_PRIMARY/PEER)', NETKIT_SINCE, { cause: e });
    const missing = netkitMissing();
    if (missing) return new NotSupportedError(`netkit links (${missing})`, NETKIT_SINCE, { cause: e });
  }
  if (e.code === 'ENXIO')
    return new BpfError(e.cmd, e.errno, what, `interface ${iface} is not a netkit device`);
  if (e.code === 'EACCES')
    return new BpfError(
      e.cmd,
      e.errno,
      what,
      `interface ${iface} is the peer of a netkit pair: programs attach through the primary (side 'peer' runs on the peer's traffic)`,
    );
  return e;
}

/**
 * Attach a `sched_cls` program to a netkit device (a name or an index of the pair's primary, in
 * the calling thread's network namespace) with a bpf_link (6.7+): on the primary's side (what
 * it sends towards the peer) or, with `side: 'peer'`, on the peer's. It runs in the order
 * `before`/`after` give, like a tcx link, and answers with `NetkitAction` (NEXT lets the next
 * program run; with none left the device's policy applies). Closing the link (and any pin)
 * detaches. A kernel before 6.7, or one built without CONFIG_NETKIT, gets a NotSupportedError.
 */
export function attachNetkit(program: Program, iface: string | number, opts: NetkitOptions = {}): Link {
  requireProgramType(program, [ProgType.SCHED_CLS], 'netkit');
  const side = opts.side ?? 'primary';
  oneOf(side, SIDES, 'netkit side');
  const ifindex = ifIndex(iface);
  const what = `netkit ${side} on interface ${iface}`;
  try {
    return multiProgLink(program, ifindex, NETKIT_TYPE[side], 'netkit', opts, what);
  } catch (e) {
    throw netkitError(e, iface, what);
  }
}

/**
 * The programs on one side of a netkit device (its primary, by name or index) in run order, with
 * the id of the link that holds each, and the side's revision (see `expectedRevision`).
 */
export function queryNetkit(
  iface: string | number,
  side: NetkitSide = 'primary',
): { revision: bigint; programs: { programId: number; linkId: number }[] } {
  oneOf(side, SIDES, 'netkit side');
  const ifindex = ifIndex(iface);
  let q: TcQuery['tcx'];
  try {
    q = queryTcx(ifindex, NETKIT_TYPE[side], NETKIT_SINCE);
  } catch (e) {
    throw netkitError(e, iface, `netkit ${side} query on interface ${iface}`);
  }
  if (!q) throw new NotSupportedError('netkit links (BPF_NETKIT_PRIMARY/PEER)', NETKIT_SINCE);
  return q;
}
