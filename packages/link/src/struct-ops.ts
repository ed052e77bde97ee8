// struct_ops: a kernel ops table (a TCP congestion control's `tcp_congestion_ops`, say) whose
// function pointers are `struct_ops` programs. Registered by writing a struct_ops map's value —
// the kernel's `bpf_struct_ops_<name>` type, its `data` member the ops table with program fds in
// the function slots — and then, for a map made with BPF_F_LINK, a struct_ops bpf_link
// (BPF_LINK_CREATE with the map, 6.4+), or, the legacy way, by the map update itself.

import { Btf, encodeBtf, intType, loadBtf } from '@bpfkit/btf';
import {
  type Collection,
  type Program,
  STRUCT_OPS_LINK_SINCE,
  type StructOpsLayout,
  structOpsLayout,
  structOpsMemberTarget,
} from '@bpfkit/loader';
import {
  AttachType,
  ClosedError,
  Defines,
  type Fd,
  kernelOlderThan,
  linkCreate,
  linkUpdate,
  MapFlags,
  MapType,
  mapCreate,
  mapDeleteElem,
  mapUpdateElem,
  NativeBuffer,
  NotSupportedError,
  oneOf,
} from '@bpfkit/sys';
import { type AttachMode, type Attachment, detachUnlessGone, Link } from './link.js';

/** What goes into the ops table: a program for each function slot, and values for the other fields. */
export interface StructOpsSpec {
  /** Programs by member name (`ssthresh`, `cong_avoid`, …), loaded as `struct_ops` for this type and member. */
  programs: Record<string, Program>;
  /** Other members by name: numbers for integers, strings for char arrays (`name`). */
  fields?: Record<string, number | bigint | string>;
}

/** The BTF ids a `struct_ops` program for member `member` of ops type `type` is loaded with. */
export function structOpsTarget(type: string, member: string): { attachBtfId: number; attachType: number } {
  return structOpsMemberTarget(Btf.kernel(), type, member);
}

/** The map value: the ops table at `data` with program fds in its function slots and the given fields. */
function encodeValue(type: string, l: StructOpsLayout, spec: StructOpsSpec): NativeBuffer {
  const btf = Btf.kernel();
  const buf = new NativeBuffer(l.value.size);
  buf.bytes.fill(0);
  const names = new Set([...Object.keys(spec.programs), ...Object.keys(spec.fields ?? {})]);
  for (const m of l.ops.members) {
    if (!names.delete(m.name)) continue;
    const off = l.dataOffset + m.bitOffset / 8;
    const t = btf.resolve(m.type);
    const prog = spec.programs[m.name];
    const field = spec.fields?.[m.name];
    if (prog) {
      if (t.kind !== 'ptr' || btf.resolve(t.type).kind !== 'func_proto')
        throw new TypeError(`${type}.${m.name} is not a function pointer: give it in fields`);
      buf.view.setBigUint64(off, BigInt(prog.fd.value), true);
    } else if (typeof field === 'string') {
      const size = btf.sizeof(m.type);
      const bytes = new TextEncoder().encode(field);
      if (t.kind !== 'array' || bytes.length >= size)
        throw new TypeError(`${type}.${m.name} takes a string of at most ${size - 1} bytes`);
      buf.bytes.set(bytes, off);
    } else if (field !== undefined) {
      const size = btf.sizeof(m.type);
      if (t.kind !== 'int' && t.kind !== 'enum') throw new TypeError(`${type}.${m.name} is not an integer`);
      const v = BigInt.asUintN(size * 8, BigInt(field));
      if (size === 8) buf.view.setBigUint64(off, v, true);
      else if (size === 4) buf.view.setUint32(off, Number(v), true);
      else if (size === 2) buf.view.setUint16(off, Number(v), true);
      else buf.view.setUint8(off, Number(v));
    }
  }
  if (names.size) {
    buf.free();
    throw new TypeError(`struct ${type} has no member ${[...names].map((n) => `'${n}'`).join(', ')}`);
  }
  return buf;
}

/** Create a struct_ops map for `type` and write its value (which, without BPF_F_LINK, registers it). */
function makeMap(type: string, spec: StructOpsSpec, link: boolean): Fd {
  const l = structOpsLayout(Btf.kernel(), type);
  // The kernel asks for a BTF of the object's own beside the vmlinux value type (libbpf passes the
  // object's); one int is enough.
  using btf = loadBtf(encodeBtf([intType()]), { name: `struct_ops ${type}` });
  const fd = mapCreate(
    {
      btfFd: btf.value,
      mapType: MapType.STRUCT_OPS,
      keySize: 4,
      valueSize: l.value.size,
      maxEntries: 1,
      mapFlags: link ? MapFlags.LINK : 0,
      btfVmlinuxValueTypeId: l.value.id,
    },
    `struct_ops ${type}`,
  );
  try {
    using value = encodeValue(type, l, spec);
    using key = new NativeBuffer(4);
    key.view.setUint32(0, 0, true);
    mapUpdateElem({ mapFd: fd.value, key: key.ptr, value: value.ptr }, `struct_ops ${type}`);
    return fd;
  } catch (e) {
    fd.close();
    throw e;
  }
}

/**
 * A registered struct_ops table. Through a link (`link` set): closing it unregisters, and
 * `update()` swaps in a new table atomically. The legacy way (no link): registered while the map
 * holds its value; `close()` deletes it, which unregisters.
 */
export class StructOps implements Attachment {
  readonly type: string;
  /** The bpf_link, where it was registered through one. */
  readonly link: Link | undefined;
  #map: Fd | undefined;

  private constructor(type: string, map: Fd, link: Link | undefined) {
    this.type = type;
    this.#map = map;
    this.link = link;
  }

  /**
   * Register ops table `type` (the kernel's `struct <type>`, e.g. `tcp_congestion_ops`) with the
   * given programs and fields. `mode`: `auto` (a link on 6.4+, the legacy map update before),
   * `link` or `legacy`.
   */
  static register(type: string, spec: StructOpsSpec, opts: { mode?: AttachMode } = {}): StructOps {
    const mode = opts.mode ?? 'auto';
    oneOf(mode, ['auto', 'link', 'legacy'] as const, 'attach mode');
    const viaLink = mode === 'link' || (mode === 'auto' && !kernelOlderThan(STRUCT_OPS_LINK_SINCE));
    if (viaLink && kernelOlderThan(STRUCT_OPS_LINK_SINCE))
      throw new NotSupportedError('struct_ops links', STRUCT_OPS_LINK_SINCE);
    const map = makeMap(type, spec, viaLink);
    if (!viaLink) return new StructOps(type, map, undefined);
    try {
      const link = new Link(
        linkCreate({ mapFd: map.value, attachType: AttachType.STRUCT_OPS }, `struct_ops ${type}`),
      );
      return new StructOps(type, map, link);
    } catch (e) {
      map.close();
      throw e;
    }
  }

  /**
   * Register struct_ops map `map` of a loaded collection (a `.struct_ops` or `.struct_ops.link`
   * variable), as libbpf's bpf_map__attach_struct_ops does: its value is written (which registers
   * a `.struct_ops` map) and, for a `.struct_ops.link` map, a struct_ops link is made. The map
   * stays the collection's; closing this unregisters.
   */
  static fromCollection(collection: Collection, map: string): StructOps {
    const ops = collection.structOps[map];
    if (!ops)
      throw new TypeError(
        `no struct_ops map '${map}' (struct_ops maps: ${Object.keys(collection.structOps).join(', ') || 'none'})`,
      );
    if (ops.link && kernelOlderThan(STRUCT_OPS_LINK_SINCE))
      throw new NotSupportedError('struct_ops links', STRUCT_OPS_LINK_SINCE);
    const fd = collection.map(map).fd.dup();
    try {
      using value = NativeBuffer.from(ops.value);
      using key = new NativeBuffer(4);
      key.view.setUint32(0, 0, true);
      mapUpdateElem({ mapFd: fd.value, key: key.ptr, value: value.ptr }, `struct_ops '${map}'`);
      if (!ops.link) return new StructOps(ops.type, fd, undefined);
      const link = new Link(
        linkCreate({ mapFd: fd.value, attachType: AttachType.STRUCT_OPS }, `struct_ops '${map}'`),
      );
      return new StructOps(ops.type, fd, link);
    } catch (e) {
      fd.close();
      throw e;
    }
  }

  /** Replace the table of a linked registration with a new one (BPF_LINK_UPDATE with the new map, 6.4+). */
  update(spec: StructOpsSpec): void {
    const old = this.#map;
    if (!old || old.closed) throw new ClosedError('struct_ops registration');
    if (!this.link)
      throw new TypeError('only a struct_ops registered through a link is updated; register anew');
    const next = makeMap(this.type, spec, true);
    try {
      linkUpdate(
        {
          linkFd: this.link.fd.value,
          newMapFd: next.value,
          oldMapFd: old.value,
          flags: Defines.BPF_F_REPLACE,
        },
        `struct_ops ${this.type}`,
      );
    } catch (e) {
      next.close();
      throw e;
    }
    old.close();
    this.#map = next;
  }

  /** Unregister now. */
  detach(): void {
    const map = this.#map;
    if (!map || map.closed) throw new ClosedError('struct_ops registration');
    if (this.link) this.link.close();
    else {
      using key = new NativeBuffer(4);
      key.view.setUint32(0, 0, true);
      mapDeleteElem({ mapFd: map.value, key: key.ptr });
    }
    map.close();
    this.#map = undefined;
  }

  close(): void {
    if (!this.#map) return;
    // ENOENT: the map's value was deleted already (unregistered)
    detachUnlessGone(
      () => this.detach(),
      ['ENOENT'],
      () => {
        this.#map?.close();
        this.#map = undefined;
      },
    );
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
